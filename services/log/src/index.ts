export { LOG_SCHEMA, LOG_SERVICE_NAME, createLogComponent } from "./component.js";
export type { LogComponentOptions } from "./component.js";
export { LOG_GRPC_PORT, LOG_HTTP_PORT, readLogOptions, readLogServiceConfig } from "./config.js";
export type { LogOptions, LogServiceConfig } from "./config.js";
export { DEFAULT_LOG_LIMITS } from "./entry-input.js";
export type { LogLimits } from "./entry-input.js";
export { DEFAULT_GROUP_COMMIT } from "./append-batcher.js";
export type { GroupCommitOptions } from "./append-batcher.js";
export { LOG_READ, LOG_REPLICATE, LOG_WRITE } from "./service.js";
