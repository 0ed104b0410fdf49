import { readDatabaseConfig, readServerConfig, type DatabaseConfig, type Env, type ServerConfig } from "@annals/runtime";

/** Everything the standalone kv service reads from its environment. */
export interface KvServiceConfig {
  server: ServerConfig;
  database: DatabaseConfig;
}

/** Default ports of the standalone kv service (the all-in-one node has its own). */
export const KV_GRPC_PORT = 50062;
export const KV_HTTP_PORT = 8062;

/** Reads and validates the configuration; throws ConfigError naming the variable. */
export function readKvServiceConfig(env: Env): KvServiceConfig {
  return {
    server: readServerConfig(env, { grpcPort: KV_GRPC_PORT, httpPort: KV_HTTP_PORT, allowAuthOff: false }),
    database: readDatabaseConfig(env, ".annals-data/kv"),
  };
}
