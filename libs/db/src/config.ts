import { ConfigError, readInteger, readString, readUrl, type Env } from "@annals/runtime/config";
import type { DatabaseOptions } from "./database.js";

export const DEFAULT_DATABASE_POOL_SIZE = 10;

/**
 * DATABASE_URL (postgres://…) selects PostgreSQL, with a pool of
 * ANNALS_DATABASE_POOL_SIZE connections; otherwise ANNALS_DATA_DIR holds an
 * embedded PGlite database (`:memory:` keeps it in memory only); otherwise
 * `defaultDataDir`. On PostgreSQL, `maxConnections` is the pool's size; a
 * process that listens (the log service) opens one connection more for LISTEN.
 */
export function readDatabaseConfig(env: Env, defaultDataDir: string): DatabaseOptions {
  const url = readUrl(env, "DATABASE_URL", ["postgres:", "postgresql:"]);
  if (url) {
    if (!url.hostname && !url.searchParams.get("host")) throw new ConfigError("DATABASE_URL", "has no host");
    const port = url.port === "" ? 5432 : Number(url.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigError("DATABASE_URL", `has an invalid port ${url.port}`);
    const maxConnections = readInteger(env, "ANNALS_DATABASE_POOL_SIZE", DEFAULT_DATABASE_POOL_SIZE, { min: 1, max: 1000 });
    return { url: url.toString(), maxConnections };
  }
  const dataDir = readString(env, "ANNALS_DATA_DIR", defaultDataDir);
  return dataDir === ":memory:" ? { inMemory: true } : { dataDir };
}
