import { fileURLToPath } from "node:url";
import { loadMigrations, migrate, type Database } from "@annals/db";
import type { ServiceComponent } from "@annals/runtime";
import { logRegistration } from "./service.js";

export const LOG_SERVICE_NAME = "annals-log";

/** The schema that holds the log service's tables; no other service reads it. */
export const LOG_SCHEMA = "log";

export interface LogComponentOptions {
  /** The database holding the `log` schema; the caller owns it and closes it. */
  db: Database;
}

/** Applies the log service's migrations and builds its handlers. */
export async function createLogComponent(options: LogComponentOptions): Promise<ServiceComponent> {
  const migrations = await loadMigrations(fileURLToPath(new URL("../migrations", import.meta.url)));
  await migrate(options.db, { schema: LOG_SCHEMA, migrations });
  return {
    name: "log",
    registrations: [logRegistration()],
    close: async () => {},
  };
}
