import { fileURLToPath } from "node:url";
import { loadMigrations, migrate, type Database } from "@annals/db";
import type { ServiceComponent } from "@annals/runtime";
import { federationRegistration } from "./service.js";

export const FEDERATION_SERVICE_NAME = "annals-federation";

/** The schema that holds the federation service's tables; no other service reads it. */
export const FEDERATION_SCHEMA = "federation";

export interface FederationComponentOptions {
  /** The database holding the `federation` schema; the caller owns it and closes it. */
  db: Database;
}

/** Applies the federation service's migrations and builds its handlers. */
export async function createFederationComponent(options: FederationComponentOptions): Promise<ServiceComponent> {
  const migrations = await loadMigrations(fileURLToPath(new URL("../migrations", import.meta.url)));
  await migrate(options.db, { schema: FEDERATION_SCHEMA, migrations });
  return {
    name: "federation",
    registrations: [federationRegistration()],
    close: async () => {},
  };
}
