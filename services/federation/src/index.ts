export { FEDERATION_SCHEMA, FEDERATION_SERVICE_NAME, createFederationComponent } from "./component.js";
export type { FederationComponentOptions } from "./component.js";
export { FEDERATION_GRPC_PORT, FEDERATION_HTTP_PORT, readFederationServiceConfig } from "./config.js";
export type { FederationServiceConfig } from "./config.js";
