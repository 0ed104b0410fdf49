import { fileURLToPath } from "node:url";
import { loadMigrations, migrate, type Database } from "@annals/db";
import type { ComponentContext, ServiceComponent } from "@annals/runtime";
import type { KvBackend } from "./backend.js";
import { DEFAULT_SWEEP_INTERVAL_MS, type KvBackendConfig } from "./config.js";
import { KvMetrics } from "./kv-metrics.js";
import { MemoryBackend } from "./memory-backend.js";
import { PostgresBackend } from "./postgres-backend.js";
import { RedisBackend } from "./redis-backend.js";
import { DEFAULT_KV_LIMITS, kvRegistration, type KvLimits } from "./service.js";

export const KV_SERVICE_NAME = "annals-kv";

/** The schema that holds the kv service's tables; no other service reads it. */
export const KV_SCHEMA = "kv";

export interface KvComponentOptions {
  /**
   * The database holding the `kv` schema; the caller owns it and closes it.
   * Required by the postgres backend; the others use it only to keep the
   * schema migrated when given one (the node shares its database).
   */
  db?: Database;
  /** Which backend holds the keys; default postgres (on `db`). */
  backend?: KvBackendConfig;
  limits?: KvLimits;
  sweepIntervalMs?: number;
}

/**
 * Applies the kv service's migrations when it has a database, opens the
 * backend, starts the sweeper and builds the handlers.
 */
export async function createKvComponent(options: KvComponentOptions, context: ComponentContext): Promise<ServiceComponent> {
  if (options.db) {
    const migrations = await loadMigrations(fileURLToPath(new URL("../migrations", import.meta.url)));
    await migrate(options.db, { schema: KV_SCHEMA, migrations });
  }
  const backend = await openBackend(options.db, options.backend ?? { kind: "postgres" });
  const metrics = new KvMetrics(context.meter);
  const logger = context.logger.child({ component: "kv" });
  let sweeping: Promise<void> | undefined;
  const sweeper = setInterval(() => {
    // One sweep at a time: a slow one is not joined by the next tick's.
    sweeping ??= backend
      .sweep()
      .then(
        (count) => metrics.keysSwept(backend.name, count),
        (error: Error) => logger.warn({ err: error }, "kv sweeper failed; it runs again at the next interval"),
      )
      .finally(() => (sweeping = undefined));
  }, options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS);
  sweeper.unref();
  return {
    name: "kv",
    registrations: [kvRegistration({ backend, limits: options.limits ?? DEFAULT_KV_LIMITS, metrics })],
    close: async () => {
      clearInterval(sweeper);
      await sweeping;
      await backend.close();
    },
  };
}

async function openBackend(db: Database | undefined, config: KvBackendConfig): Promise<KvBackend> {
  switch (config.kind) {
    case "postgres":
      if (!db) throw new Error("the postgres kv backend needs a database");
      return new PostgresBackend(db);
    case "memory":
      return new MemoryBackend();
    case "redis":
      return RedisBackend.connect({ url: config.url, keyPrefix: config.keyPrefix });
  }
}
