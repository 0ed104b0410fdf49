import { readDatabaseConfig, type DatabaseOptions } from "@annals/db";
import { readFederationOptions, type FederationOptions } from "@annals/federation";
import { readKvOptions, type KvOptions } from "@annals/kv";
import { readLogOptions, type LogOptions } from "@annals/log";
import { readStreamSettings, type HubSettings } from "@annals/stream";
import { readBoolean, readServerConfig, type Env, type ServerConfig } from "@annals/runtime";

/** Everything the all-in-one node reads from its environment. */
export interface NodeConfig {
  server: ServerConfig;
  /** One database for the log, kv and federation schemas; embedded PGlite in .annals-data by default. */
  database: DatabaseOptions;
  /** ANNALS_LOG_* settings of the log service. */
  log: LogOptions;
  /** ANNALS_KV_* settings of the kv service (postgres on the node's database by default). */
  kv: KvOptions;
  /** ANNALS_STREAM_* settings of the stream service. */
  stream: HubSettings;
  /** ANNALS_NODE_ID and ANNALS_FEDERATION_KEY_FILE of the federation service. */
  federation: FederationOptions;
  /** ANNALS_CONSOLE: whether the HTTP port serves the read-only web console at / (default true). */
  console: boolean;
}

export const NODE_GRPC_PORT = 50051;
export const NODE_HTTP_PORT = 8080;
export const NODE_DATA_DIR = ".annals-data";

/**
 * Reads and validates the configuration; throws ConfigError naming the
 * variable. Bound to loopback with no key configured, auth is off.
 */
export function readNodeConfig(env: Env): NodeConfig {
  return {
    server: readServerConfig(env, { grpcPort: NODE_GRPC_PORT, httpPort: NODE_HTTP_PORT, allowAuthOff: true }),
    database: readDatabaseConfig(env, NODE_DATA_DIR),
    log: readLogOptions(env),
    kv: readKvOptions(env),
    stream: readStreamSettings(env),
    federation: readFederationOptions(env),
    console: readBoolean(env, "ANNALS_CONSOLE", true),
  };
}
