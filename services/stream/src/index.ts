export { STREAM_SERVICE_NAME, createStreamComponent } from "./component.js";
export type { StreamComponentOptions } from "./component.js";
export { STREAM_GRPC_PORT, STREAM_HTTP_PORT, readStreamServiceConfig } from "./config.js";
export type { StreamServiceConfig } from "./config.js";
