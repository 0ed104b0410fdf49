import { fileURLToPath } from "node:url";
import { loadMigrations, migrate, type Database } from "@annals/db";
import type { ServiceComponent } from "@annals/runtime";
import { AppendBatcher, DEFAULT_GROUP_COMMIT, type GroupCommitOptions } from "./append-batcher.js";
import { AppendNotifier } from "./append-notifier.js";
import { DEFAULT_LOG_LIMITS, type LogLimits } from "./entry-input.js";
import { LogMetrics } from "./log-metrics.js";
import { logRegistration } from "./service.js";

export const LOG_SERVICE_NAME = "annals-log";

/** The schema that holds the log service's tables; no other service reads it. */
export const LOG_SCHEMA = "log";

export interface LogComponentOptions {
  /** The database holding the `log` schema; the caller owns it and closes it. */
  db: Database;
  /** Limits on appended entries and open subscriptions; each one left out has its DEFAULT_LOG_LIMITS value. */
  limits?: Partial<LogLimits>;
  /** Group commit settings; defaults in DEFAULT_GROUP_COMMIT. */
  groupCommit?: GroupCommitOptions;
}

/** Applies the log service's migrations, starts listening for appends and builds the handlers. */
export async function createLogComponent(options: LogComponentOptions): Promise<ServiceComponent> {
  const { db } = options;
  const migrations = await loadMigrations(fileURLToPath(new URL("../migrations", import.meta.url)));
  await migrate(db, { schema: LOG_SCHEMA, migrations });
  const metrics = new LogMetrics();
  const notifier = new AppendNotifier(db);
  await notifier.start();
  const batcher = new AppendBatcher(db, options.groupCommit ?? DEFAULT_GROUP_COMMIT, metrics, (logId) => notifier.announce(logId));
  return {
    name: "log",
    registrations: [logRegistration({ db, batcher, notifier, limits: { ...DEFAULT_LOG_LIMITS, ...options.limits }, metrics })],
    close: async () => {
      await batcher.settled();
      await notifier.close();
    },
  };
}
