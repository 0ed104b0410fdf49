// The generated TypeScript for every annals protobuf contract, in one place.
// Each domain is a namespace so that same-named messages never collide.
export * as diagV1 from "./gen/annals/diag/v1/diag_service_pb.js";
export * as federationV1 from "./gen/annals/federation/v1/federation_service_pb.js";
export * as kvV1 from "./gen/annals/kv/v1/kv_service_pb.js";
export * as logV1 from "./log-v1.js";
export * as streamV1 from "./gen/annals/stream/v1/stream_service_pb.js";
export * as healthV1 from "./gen/grpc/health/v1/health_pb.js";
export * as rpcDetails from "./gen/google/rpc/error_details_pb.js";
export * as googleApi from "./gen/google/api/field_behavior_pb.js";
export { allFiles } from "./files.js";
