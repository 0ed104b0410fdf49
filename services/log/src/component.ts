import { fileURLToPath } from "node:url";
import { loadMigrations, migrate, type Database } from "@annals/db";
import type { JsonWebKey } from "node:crypto";
import { defaultNodeId, type ComponentContext, type ServiceComponent } from "@annals/runtime";
import { tileRoutes } from "./tile-routes.js";
import { Checkpointer, DEFAULT_CHECKPOINT_INTERVAL_MS } from "./checkpointer.js";
import { loadNodeSigner } from "./signing-key.js";
import { localLogIds } from "./store.js";
import type { WitnessPolicy } from "./witness-policy.js";
import { WitnessPublisher } from "./witness-publisher.js";
import { AppendBatcher, DEFAULT_GROUP_COMMIT, type GroupCommitOptions } from "./append-batcher.js";
import { AppendNotifier } from "./append-notifier.js";
import { DEFAULT_LOG_LIMITS, type LogLimits } from "./entry-input.js";
import { LogMetrics } from "./log-metrics.js";
import { LOG_READ, logRegistration } from "./service.js";

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
  /** This node's SPIFFE ID, which names its logs' checkpoints (their origin). Default: defaultNodeId(). */
  nodeId?: string;
  /** The node's Ed25519 checkpoint signing key as a private JWK; undefined: one generated once and kept in the database. */
  signingKey?: JsonWebKey;
  /** The longest an append waits for a signed checkpoint that covers it, in ms. Default 1000. */
  checkpointIntervalMs?: number;
  /** The witnesses that must cosign checkpoints before they are published (ANNALS_LOG_WITNESSES); undefined: none. */
  witnesses?: WitnessPolicy;
  /** How long one add-checkpoint request to a witness may take, in ms. Default 5000. */
  witnessTimeoutMs?: number;
}

/** Applies the log service's migrations, starts listening for appends and builds the handlers. */
export async function createLogComponent(options: LogComponentOptions, context: ComponentContext): Promise<ServiceComponent> {
  const { db } = options;
  const migrations = await loadMigrations(fileURLToPath(new URL("../migrations", import.meta.url)));
  await migrate(db, { schema: LOG_SCHEMA, migrations });
  const logger = context.logger.child({ component: "log" });
  const metrics = new LogMetrics(context.meter);
  const notifier = new AppendNotifier(db);
  await notifier.start();
  const signer = await loadNodeSigner({
    db,
    nodeId: options.nodeId ?? defaultNodeId(),
    jwk: options.signingKey,
    onGenerated: () => logger.warn("generated this node's checkpoint signing key and stored it in the database; set ANNALS_LOG_SIGNING_KEY_FILE in production"),
  });
  const publisher = options.witnesses
    ? new WitnessPublisher({ db, policy: options.witnesses, ...(options.witnessTimeoutMs ? { timeoutMs: options.witnessTimeoutMs } : {}), logger })
    : undefined;
  const checkpointer = new Checkpointer({
    db,
    signerFor: (logId) => signer.forLog(logId),
    intervalMs: options.checkpointIntervalMs ?? DEFAULT_CHECKPOINT_INTERVAL_MS,
    logger,
    ...(publisher ? { onSigned: (logId: string) => void publisher.publish(logId) } : {}),
  });
  if (publisher) {
    // Checkpoints signed before a restart (or before witnesses were configured) that no quorum cosigned yet.
    for (const logId of await localLogIds(db)) void publisher.publish(logId);
  }
  const behind = await checkpointer.sweep();
  if (behind.length > 0) logger.info({ logs: behind.length }, "signing checkpoints for logs whose tree is ahead of their latest checkpoint");
  const batcher = new AppendBatcher(db, options.groupCommit ?? DEFAULT_GROUP_COMMIT, metrics, (logId) => {
    notifier.announce(logId);
    checkpointer.grown(logId);
  });
  return {
    name: "log",
    registrations: [
      logRegistration({ db, batcher, checkpointer, publisher, signer, notifier, limits: { ...DEFAULT_LOG_LIMITS, ...options.limits }, metrics }),
    ],
    httpRoutes: tileRoutes({ db, checkpointer, publisher, readRole: LOG_READ }),
    close: async () => {
      await batcher.settled();
      checkpointer.close();
      publisher?.close();
      await notifier.close();
    },
  };
}
