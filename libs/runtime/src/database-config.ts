import { ConfigError, readString, readUrl, type Env } from "./config.js";

/** Where a service keeps its state; matches `DatabaseOptions` of @annals/db. */
export type DatabaseConfig = { url: string } | { dataDir: string } | { inMemory: true };

/**
 * DATABASE_URL (postgres://…) selects PostgreSQL; otherwise ANNALS_DATA_DIR
 * holds an embedded PGlite database (`:memory:` keeps it in memory only);
 * otherwise `defaultDataDir`.
 */
export function readDatabaseConfig(env: Env, defaultDataDir: string): DatabaseConfig {
  const url = readUrl(env, "DATABASE_URL", ["postgres:", "postgresql:"]);
  if (url) {
    if (!url.hostname && !url.searchParams.get("host")) throw new ConfigError("DATABASE_URL", "has no host");
    const port = url.port === "" ? 5432 : Number(url.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigError("DATABASE_URL", `has an invalid port ${url.port}`);
    return { url: url.toString() };
  }
  const dataDir = readString(env, "ANNALS_DATA_DIR", defaultDataDir);
  return dataDir === ":memory:" ? { inMemory: true } : { dataDir };
}
