// The generated TypeScript for every annals protobuf contract, in one place.
// Each domain is a namespace so that same-named messages never collide.
export * as diagV1 from "./gen/annals/diag/v1/diag_service_pb.js";
export * as healthV1 from "./gen/grpc/health/v1/health_pb.js";
export * as rpcDetails from "./gen/google/rpc/error_details_pb.js";
export { allFiles } from "./files.js";
