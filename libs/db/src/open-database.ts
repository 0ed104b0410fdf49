import type { Database, DatabaseOptions } from "./database.js";
import { openPglite } from "./pglite-database.js";
import { openPostgres } from "./postgres-database.js";
import { traced } from "./tracing.js";

/**
 * Opens the database `options` names: PostgreSQL through a `pg` pool
 * (`url`), or embedded PGlite (`dataDir`, created on first use in a child
 * process; or `inMemory`). Fails with a DatabaseError when it cannot be
 * reached, so a misconfigured service stops at startup. Queries made inside
 * a recorded span are child spans of it (tracing.ts).
 */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  return traced("url" in options ? await openPostgres(options) : await openPglite(options));
}
