import type { Database, DatabaseOptions } from "./database.js";
import { openPglite } from "./pglite.js";
import { openPostgres } from "./postgres.js";

/** Opens PostgreSQL (`url`) or embedded PGlite (`dataDir` or `inMemory`). */
export function openDatabase(options: DatabaseOptions): Promise<Database> {
  return "url" in options ? openPostgres(options) : openPglite(options);
}
