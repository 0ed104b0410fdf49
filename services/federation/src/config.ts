import { readDatabaseConfig, readServerConfig, type DatabaseConfig, type Env, type ServerConfig } from "@annals/runtime";

/** Everything the standalone federation service reads from its environment. */
export interface FederationServiceConfig {
  server: ServerConfig;
  database: DatabaseConfig;
}

/** Default ports of the standalone federation service (the all-in-one node has its own). */
export const FEDERATION_GRPC_PORT = 50063;
export const FEDERATION_HTTP_PORT = 8063;

/** Reads and validates the configuration; throws ConfigError naming the variable. */
export function readFederationServiceConfig(env: Env): FederationServiceConfig {
  return {
    server: readServerConfig(env, { grpcPort: FEDERATION_GRPC_PORT, httpPort: FEDERATION_HTTP_PORT, allowAuthOff: false }),
    database: readDatabaseConfig(env, ".annals-data/federation"),
  };
}
