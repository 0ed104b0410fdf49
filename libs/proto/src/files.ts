import type { DescFile } from "@bufbuild/protobuf";
import { file_annals_diag_v1_diag_service } from "./gen/annals/diag/v1/diag_service_pb.js";
import { file_google_rpc_error_details } from "./gen/google/rpc/error_details_pb.js";
import { file_grpc_health_v1_health } from "./gen/grpc/health/v1/health_pb.js";

/** Every generated file descriptor, for reflection and type registries. */
export const allFiles: readonly DescFile[] = [
  file_annals_diag_v1_diag_service,
  file_google_rpc_error_details,
  file_grpc_health_v1_health,
];
