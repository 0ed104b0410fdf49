import { fileURLToPath } from "node:url";
import { formatVerifierKey } from "@annals/chain";
import type { LogClient } from "@annals/client";
import type { Transport } from "@connectrpc/connect";
import { loadMigrations, migrate, type Database } from "@annals/db";
import { defaultNodeId, watchCertificateFiles, type ComponentContext, type Logger, type ServiceComponent } from "@annals/runtime";
import { DEFAULT_REFUSAL_AUDIT, RefusalAudit, pruneAudit } from "./audit.js";
import { DEFAULT_AUDIT_RETENTION_MS, DEFAULT_PULLS_PER_MINUTE, type FederationOptions, type WitnessSettings } from "./config.js";
import { DEFAULT_HEARTBEAT_MS } from "./pull.js";
import { loadIdentity } from "./identity.js";
import { FederationMetrics } from "./federation-metrics.js";
import { DEFAULT_REPLICATOR_SETTINGS, Replicator, type ReplicatorSettings } from "./replicator.js";
import { federationRegistration } from "./service.js";
import { defaultWitnessName, loadWitnessCosigner } from "./witness-key.js";
import { Witness } from "./witness-endpoint.js";
import { witnessRoutes } from "./witness-routes.js";
import { wireSubscribeClient } from "./wire-entries.js";

export const FEDERATION_SERVICE_NAME = "annals-federation";

/** The schema that holds the federation service's tables; no other service reads it. */
export const FEDERATION_SCHEMA = "federation";

export interface FederationComponentOptions extends Partial<FederationOptions> {
  /** The database holding the `federation` schema; the caller owns it and closes it. */
  db: Database;
  /**
   * The log service: in the node, its own, called in-process
   * (ComponentContext.local); standalone, a client of ANNALS_LOG_URL.
   */
  log: LogClient;
  /**
   * The transport `log` was made with, when the caller has it: Pull then
   * passes the log's `entries` frames on without decoding their entries
   * (wire-entries.ts); without it, Pull decodes and re-encodes them.
   */
  logTransport?: Transport;
  replication?: Partial<ReplicatorSettings>;
  /** Whether this process's gRPC port runs mTLS, so that Pull demands a client certificate naming the peer. */
  requirePeerCertificate?: boolean;
}

/** How often old audit records are deleted. */
const AUDIT_PRUNE_INTERVAL_MS = 3_600_000;

/** Deletes audit records past the retention now and every hour; 0 keeps everything. */
function startAuditRetention(db: Database, retentionMs: number, logger: Logger): { stop(): void } {
  if (retentionMs === 0) return { stop: () => {} };
  const prune = () =>
    pruneAudit(db, retentionMs).then(
      (removed) => removed > 0 && logger.info({ removed, retentionMs }, "deleted audit records past their retention"),
      (error: unknown) => logger.warn({ err: error }, "could not delete old audit records"),
    );
  void prune();
  const timer = setInterval(() => void prune(), AUDIT_PRUNE_INTERVAL_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/** Applies the federation service's migrations, loads the node's identity and builds its handlers. */
export async function createFederationComponent(options: FederationComponentOptions, context: ComponentContext): Promise<ServiceComponent> {
  const migrations = await loadMigrations(fileURLToPath(new URL("../migrations", import.meta.url)));
  await migrate(options.db, { schema: FEDERATION_SCHEMA, migrations });
  const logger = context.logger.child({ component: "federation" });
  const identity = await loadIdentity({
    db: options.db,
    nodeId: options.nodeId ?? defaultNodeId(),
    keyFile: options.keyFile,
    onGenerated: () => logger.warn("generated this node's federation signing key and stored it in the database; set ANNALS_FEDERATION_KEY_FILE in production"),
  });
  const log = () => options.log;
  // The metrics read the replicator's statuses at scrape time; it is made next, with them.
  const replication: { replicator?: Replicator } = {};
  const metrics = new FederationMetrics(context.meter, () => replication.replicator?.statuses("") ?? []);
  const tls = options.tls
    ? await watchCertificateFiles({
        caFile: options.tls.caFile,
        certFile: options.tls.certFile,
        keyFile: options.tls.keyFile,
        ...(options.tls.reloadIntervalMs ? { reloadIntervalMs: options.tls.reloadIntervalMs } : {}),
        role: "federation-client",
        logger,
        meter: context.meter,
      })
    : undefined;
  const replicator = (replication.replicator = new Replicator({ db: options.db, identity, log, logger, metrics, tls, settings: { ...DEFAULT_REPLICATOR_SETTINGS, ...options.replication } }));
  const refusals = new RefusalAudit(options.db, DEFAULT_REFUSAL_AUDIT, (error) => logger.warn({ err: error }, "could not write the audit counts"));
  const witnessSettings: WitnessSettings = { logs: [], name: undefined, keyJwk: undefined, ...options.witness };
  const cosigner = await loadWitnessCosigner({
    db: options.db,
    name: witnessSettings.name ?? defaultWitnessName(identity.nodeId),
    jwk: witnessSettings.keyJwk,
    onGenerated: () => logger.warn("generated this node's witness cosigning key and stored it in the database; set ANNALS_WITNESS_KEY_FILE in production"),
  });
  const witness = new Witness({ db: options.db, cosigner, logs: witnessSettings.logs, logger });
  if (witnessSettings.logs.length > 0) logger.info({ logs: witnessSettings.logs.map((log) => log.origin), key: formatVerifierKey(cosigner.key) }, "witnessing logs");
  const retention = startAuditRetention(options.db, options.auditRetentionMs ?? DEFAULT_AUDIT_RETENTION_MS, logger);
  return {
    name: "federation",
    registrations: [
      federationRegistration({
        db: options.db,
        identity,
        log,
        subscribe: options.logTransport ? wireSubscribeClient(options.logTransport) : undefined,
        pullsPerMinute: options.pullsPerMinute ?? DEFAULT_PULLS_PER_MINUTE,
        replicator,
        metrics,
        refusals,
        requirePeerCertificate: options.requirePeerCertificate ?? false,
        witnessVerifierKey: formatVerifierKey(cosigner.key),
        heartbeatMs: options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
      }),
    ],
    httpRoutes: witnessRoutes(witness, logger),
    // The log service may be this process's own (the node): replicate once the listeners are up.
    start: () => replicator.start(),
    close: async () => {
      retention.stop();
      await replicator.close();
      await refusals.close();
      tls?.close();
    },
  };
}
