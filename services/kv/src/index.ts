export { KV_SCHEMA, KV_SERVICE_NAME, createKvComponent } from "./component.js";
export type { KvComponentOptions } from "./component.js";
export { KV_GRPC_PORT, KV_HTTP_PORT, readKvServiceConfig } from "./config.js";
export type { KvServiceConfig } from "./config.js";
