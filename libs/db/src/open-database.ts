import type { Database, DatabaseOptions } from "./database.js";
import { openPglite } from "./pglite-database.js";
import { openPostgres } from "./postgres-database.js";

/**
 * Opens the database `options` names: PostgreSQL through a `pg` pool
 * (`url`), or embedded PGlite (`dataDir`, created on first use in a child
 * process; or `inMemory`). Fails with a DatabaseError when it cannot be
 * reached, so a misconfigured service stops at startup.
 */
export function openDatabase(options: DatabaseOptions): Promise<Database> {
  if ("url" in options) return openPostgres(options);
  return openPglite(options);
}
