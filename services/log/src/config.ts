import { readDatabaseConfig, readServerConfig, type DatabaseConfig, type Env, type ServerConfig } from "@annals/runtime";

/** Everything the standalone log service reads from its environment. */
export interface LogServiceConfig {
  server: ServerConfig;
  database: DatabaseConfig;
}

/** Default ports of the standalone log service (the all-in-one node has its own). */
export const LOG_GRPC_PORT = 50061;
export const LOG_HTTP_PORT = 8061;

/** Reads and validates the configuration; throws ConfigError naming the variable. */
export function readLogServiceConfig(env: Env): LogServiceConfig {
  return {
    server: readServerConfig(env, { grpcPort: LOG_GRPC_PORT, httpPort: LOG_HTTP_PORT, allowAuthOff: false }),
    database: readDatabaseConfig(env, ".annals-data/log"),
  };
}
