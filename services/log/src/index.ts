export { LOG_SCHEMA, LOG_SERVICE_NAME, createLogComponent } from "./component.js";
export type { LogComponentOptions } from "./component.js";
export { LOG_GRPC_PORT, LOG_HTTP_PORT, readLogServiceConfig } from "./config.js";
export type { LogServiceConfig } from "./config.js";
