// annals.log.v1 spans two files; one namespace holds both.
export * from "./gen/annals/log/v1/entry_pb.js";
export * from "./gen/annals/log/v1/log_service_pb.js";
