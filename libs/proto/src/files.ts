import type { DescFile } from "@bufbuild/protobuf";
import { file_annals_diag_v1_diag_service } from "./gen/annals/diag/v1/diag_service_pb.js";
import { file_annals_federation_v1_federation_service } from "./gen/annals/federation/v1/federation_service_pb.js";
import { file_annals_kv_v1_kv_service } from "./gen/annals/kv/v1/kv_service_pb.js";
import { file_annals_log_v1_entry } from "./gen/annals/log/v1/entry_pb.js";
import { file_annals_log_v1_log_service } from "./gen/annals/log/v1/log_service_pb.js";
import { file_annals_stream_v1_stream_service } from "./gen/annals/stream/v1/stream_service_pb.js";
import { file_google_rpc_error_details } from "./gen/google/rpc/error_details_pb.js";
import { file_grpc_health_v1_health } from "./gen/grpc/health/v1/health_pb.js";

/** Every generated file descriptor, for reflection and type registries (their imports are reached through `dependencies`). */
export const allFiles: readonly DescFile[] = [
  file_annals_diag_v1_diag_service,
  file_annals_federation_v1_federation_service,
  file_annals_kv_v1_kv_service,
  file_annals_log_v1_entry,
  file_annals_log_v1_log_service,
  file_annals_stream_v1_stream_service,
  file_google_rpc_error_details,
  file_grpc_health_v1_health,
];
