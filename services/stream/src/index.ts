export { STREAM_SERVICE_NAME, createStreamComponent } from "./component.js";
export type { StreamComponentOptions } from "./component.js";
export { DEFAULT_STREAM_SETTINGS, STREAM_GRPC_PORT, STREAM_HTTP_PORT, readStreamServiceConfig, readStreamSettings } from "./config.js";
export type { StreamServiceConfig } from "./config.js";
export type { HubSettings } from "./hub.js";
export { STREAM_PUBLISH, STREAM_VIEW } from "./service.js";
