import { readDatabaseConfig, type DatabaseOptions } from "@annals/db";
import {
  ConfigError,
  readChoice,
  readInteger,
  readServerConfig,
  readString,
  readUrl,
  type Env,
  type ServerConfig,
} from "@annals/runtime";
import type { BackendName } from "./backend.js";
import { DEFAULT_KV_LIMITS, type KvLimits } from "./service.js";

/** Everything the standalone kv service reads from its environment. */
export interface KvServiceConfig {
  server: ServerConfig;
  /** Only for the postgres backend: on redis and memory the service opens no database. */
  database: DatabaseOptions | undefined;
  kv: KvOptions;
}

/** Which backend holds the keys (ANNALS_KV_BACKEND); the postgres backend uses the service's database. */
export type KvBackendConfig = { kind: "postgres" } | { kind: "memory" } | { kind: "redis"; url: string; keyPrefix: string };

/** The kv service's own settings, shared by the standalone service and the node. */
export interface KvOptions {
  backend: KvBackendConfig;
  limits: KvLimits;
  /** How often expired keys are deleted (postgres and memory backends), in ms. */
  sweepIntervalMs: number;
}

export const DEFAULT_SWEEP_INTERVAL_MS = 10_000;

/** Default ports of the standalone kv service (the all-in-one node has its own). */
export const KV_GRPC_PORT = 50062;
export const KV_HTTP_PORT = 8062;

/** Reads and validates the configuration; throws ConfigError naming the variable. */
export function readKvServiceConfig(env: Env): KvServiceConfig {
  const kv = readKvOptions(env);
  return {
    server: readServerConfig(env, { grpcPort: KV_GRPC_PORT, httpPort: KV_HTTP_PORT, allowAuthOff: false }),
    database: kv.backend.kind === "postgres" ? readDatabaseConfig(env, ".annals-data/kv") : undefined,
    kv,
  };
}

/** ANNALS_KV_* settings (and REDIS_URL for the redis backend); the node reads them too. */
export function readKvOptions(env: Env): KvOptions {
  const backend = readChoice<BackendName>(env, "ANNALS_KV_BACKEND", ["postgres", "memory", "redis"], "postgres");
  let config: KvBackendConfig;
  if (backend === "redis") {
    const url = readUrl(env, "REDIS_URL", ["redis:", "rediss:"]);
    if (!url) throw new ConfigError("REDIS_URL", "is required when ANNALS_KV_BACKEND=redis (e.g. redis://127.0.0.1:6379)");
    config = { kind: backend, url: url.toString(), keyPrefix: readString(env, "ANNALS_KV_REDIS_PREFIX", "annals:kv:") };
  } else {
    config = { kind: backend };
  }
  return {
    backend: config,
    limits: {
      maxValueBytes: readInteger(env, "ANNALS_KV_MAX_VALUE_BYTES", DEFAULT_KV_LIMITS.maxValueBytes, { min: 1, max: 64 * 1024 * 1024 }),
    },
    sweepIntervalMs: readInteger(env, "ANNALS_KV_SWEEP_INTERVAL_MS", DEFAULT_SWEEP_INTERVAL_MS, { min: 100, max: 3_600_000 }),
  };
}
