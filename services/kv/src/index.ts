export { KV_SCHEMA, KV_SERVICE_NAME, createKvComponent } from "./component.js";
export type { KvComponentOptions } from "./component.js";
export { DEFAULT_SWEEP_INTERVAL_MS, KV_GRPC_PORT, KV_HTTP_PORT, readKvOptions, readKvServiceConfig } from "./config.js";
export type { KvBackendConfig, KvOptions, KvServiceConfig } from "./config.js";
export { DEFAULT_KV_LIMITS, KV_READ, KV_WRITE, MAX_KEY_BYTES } from "./service.js";
export type { KvLimits } from "./service.js";
