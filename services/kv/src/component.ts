import { fileURLToPath } from "node:url";
import { loadMigrations, migrate, type Database } from "@annals/db";
import type { ServiceComponent } from "@annals/runtime";
import { kvRegistration } from "./service.js";

export const KV_SERVICE_NAME = "annals-kv";

/** The schema that holds the kv service's tables; no other service reads it. */
export const KV_SCHEMA = "kv";

export interface KvComponentOptions {
  /** The database holding the `kv` schema; the caller owns it and closes it. */
  db: Database;
}

/** Applies the kv service's migrations and builds its handlers. */
export async function createKvComponent(options: KvComponentOptions): Promise<ServiceComponent> {
  const migrations = await loadMigrations(fileURLToPath(new URL("../migrations", import.meta.url)));
  await migrate(options.db, { schema: KV_SCHEMA, migrations });
  return {
    name: "kv",
    registrations: [kvRegistration()],
    close: async () => {},
  };
}
