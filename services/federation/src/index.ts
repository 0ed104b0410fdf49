export { FEDERATION_SCHEMA, FEDERATION_SERVICE_NAME, createFederationComponent } from "./component.js";
export type { FederationComponentOptions } from "./component.js";
export { FEDERATION_GRPC_PORT, FEDERATION_HTTP_PORT, readFederationOptions, readFederationServiceConfig } from "./config.js";
export type { FederationOptions, FederationServiceConfig } from "./config.js";
export { nodeIdProblem } from "./identity.js";
