// The pulling side of federation: one loop per (active peer, mirrored log)
// that pulls the peer's log from the mirror's head and hands verified batches
// to the local log service (AppendReplicated checks every checksum and link and
// stores a batch whole or not at all; the mirror's head is the cursor).
import { setTimeout as delay } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { createAnnalsClients, type LogClient } from "@annals/client";
import type { Database } from "@annals/db";
import { federationV1, rpcDetails, type logV1 } from "@annals/proto";
import { retryDelayMs, type CertificateFiles, type CertificateMaterial, type Logger } from "@annals/runtime";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { audit } from "./audit.js";
import type { FederationMetrics } from "./federation-metrics.js";
import { mirrorLogId, type NodeIdentity } from "./identity.js";
import { signPeerToken } from "./peer-token.js";
import { listPeers, type PeerRecord } from "./peers.js";

export interface ReplicatorSettings {
  /** Backoff after a failed connection: first delay and cap, in ms (with jitter; RetryInfo is honoured). */
  backoffFirstMs: number;
  backoffMaxMs: number;
  /** Most entries handed to the log service in one AppendReplicated. */
  batchEntries: number;
  /** How often the registry is read again for added, changed or removed peers, in ms. */
  reconcileMs: number;
}

export const DEFAULT_REPLICATOR_SETTINGS: ReplicatorSettings = { backoffFirstMs: 200, backoffMaxMs: 30_000, batchEntries: 500, reconcileMs: 5000 };

type Status = MessageInitShape<typeof federationV1.ReplicationStatusSchema>;

interface Deps {
  db: Database;
  identity: NodeIdentity;
  log: () => LogClient;
  logger: Logger;
  settings: ReplicatorSettings;
  metrics: FederationMetrics;
  /**
   * mTLS to peers: set, a peer must be https and its certificate must name
   * its node id. Each connection takes the current files' contents, so a
   * renewed certificate is presented from the next connection on while open
   * Pull streams go on (deploy/src/certificate-reload.test.ts).
   */
  tls: CertificateFiles | undefined;
}

const pemOf = ({ ca, cert, key }: CertificateMaterial) => ({ cert, key, ...(ca ? { ca } : {}) });

/** Waits `ms`, or less when `signal` aborts (never rejects). */
const sleep = (ms: number, signal: AbortSignal) => delay(ms, undefined, { signal }).catch(() => undefined);

class ReplicationLoop {
  readonly mirror: string;
  private readonly stopped = new AbortController();
  state = federationV1.ReplicationState.IDLE;
  cursor = 0n;
  peerHead = 0n;
  lastWallTimeUs = 0n;
  lastError = "";
  lastErrorCode = 0;
  lastSuccessUs = 0n;
  backoffMs = 0;
  readonly done: Promise<void>;

  constructor(
    readonly peer: PeerRecord,
    readonly logId: string,
    private readonly deps: Deps,
  ) {
    this.mirror = mirrorLogId(peer.nodeId, logId);
    this.done = this.run();
  }

  stop(): Promise<void> {
    this.stopped.abort();
    return this.done;
  }

  status(): Status {
    const lag = this.peerHead > this.cursor ? this.peerHead - this.cursor : 0n;
    const nowUs = BigInt(Date.now()) * 1000n;
    return {
      nodeId: this.peer.nodeId,
      logId: this.logId,
      mirrorLogId: this.mirror,
      state: this.state,
      cursor: this.cursor,
      peerHeadSeq: this.peerHead,
      lagEntries: lag,
      lagSeconds: lag > 0n && this.lastWallTimeUs > 0n ? Number(nowUs - this.lastWallTimeUs) / 1e6 : 0,
      lastError: this.lastError,
      lastErrorCode: this.lastErrorCode,
      lastSuccessUs: this.lastSuccessUs,
      backoffMs: BigInt(this.state === federationV1.ReplicationState.BACKOFF ? this.backoffMs : 0),
    };
  }

  private async run(): Promise<void> {
    const { db, logger, settings } = this.deps;
    const signal = this.stopped.signal;
    const stopped = await db.query<{ seq: bigint; detail: string }>("select seq, detail from federation.replication_errors where node_id = $1 and log_id = $2", [this.peer.nodeId, this.logId]);
    if (stopped.rows[0]) {
      this.integrityError(stopped.rows[0].detail);
      return;
    }
    let delay = settings.backoffFirstMs;
    while (!signal.aborted) {
      try {
        await this.follow(signal, () => (delay = settings.backoffFirstMs));
      } catch (error) {
        if (signal.aborted) return;
        const failure = ConnectError.from(error);
        if (failure.code === Code.DataLoss) {
          await this.recordIntegrityError(failure);
          return;
        }
        if (failure.rawMessage !== this.lastError && /certificate/i.test(failure.rawMessage)) {
          await audit(this.deps.db, { nodeId: this.peer.nodeId, logId: this.logId, reason: `PEER_CERT_REFUSED: ${failure.rawMessage}` }).catch(() => undefined);
        }
        this.lastError = failure.rawMessage;
        this.lastErrorCode = failure.code;
        this.state = federationV1.ReplicationState.BACKOFF;
        // Honour the peer's retry delay; otherwise exponential, with jitter, capped.
        const wait = Math.min(settings.backoffMaxMs, Math.max(retryDelayMs(failure) ?? 0, delay / 2 + Math.random() * (delay / 2)));
        this.backoffMs = Math.round(wait);
        logger.info({ peer: this.peer.nodeId, log: this.logId, code: Code[failure.code], retryInMs: this.backoffMs }, "replication interrupted; reconnecting");
        await sleep(wait, signal);
        delay = Math.min(delay * 2, settings.backoffMaxMs);
      }
    }
  }

  /** One connection: pull from the mirror's head, store in batches, until the stream fails. */
  private async follow(signal: AbortSignal, connected: () => void): Promise<void> {
    const { identity, log, settings } = this.deps;
    this.cursor = await this.mirrorHead();
    const tls = this.deps.tls;
    if (tls && !this.peer.url.startsWith("https:")) {
      // Fail closed: with mTLS on, never pull over plain text.
      throw new ConnectError(`mTLS is on but peer ${this.peer.nodeId} has the plain-text URL ${this.peer.url}; register its https:// URL`, Code.FailedPrecondition);
    }
    const peer = createAnnalsClients({
      baseUrl: this.peer.url,
      token: () => signPeerToken(identity, this.peer.nodeId),
      ...(tls ? { tls: { ...pemOf(tls.current()), serverUri: this.peer.nodeId } } : {}),
    }).federation;
    let batch: logV1.Entry[] = [];
    let anchor: { seq: bigint; checksum: string } | undefined;
    let flushing: Promise<void> = Promise.resolve();
    const flush = async () => {
      if (batch.length === 0) return;
      const entries = batch;
      batch = [];
      const { head } = await log().appendReplicated(
        { logId: this.mirror, originNode: this.peer.nodeId, entries, ...(anchor ? { anchorSeq: anchor.seq, anchorChecksum: anchor.checksum } : {}) },
        { signal },
      );
      anchor = undefined;
      this.cursor = head?.lastSeq ?? this.cursor;
      this.lastWallTimeUs = entries.at(-1)!.wallTimeUs;
      this.lastSuccessUs = BigInt(Date.now()) * 1000n;
      this.deps.metrics.entriesReceived(this.peer.nodeId, entries.length);
    };
    /** Flushes after the ones already queued, so batches are stored in order; a failure ends the connection. */
    const queueFlush = () => (flushing = flushing.then(flush));
    let timer: NodeJS.Timeout | undefined;
    try {
      for await (const frame of peer.pull({ logId: this.logId, fromSeq: this.cursor + 1n }, { signal })) {
        if (this.state !== federationV1.ReplicationState.RUNNING) {
          this.state = federationV1.ReplicationState.RUNNING;
          this.lastError = "";
          this.lastErrorCode = 0;
          connected();
        }
        switch (frame.frame.case) {
          case "checkpoint":
            anchor = { seq: frame.frame.value.seq, checksum: frame.frame.value.checksum };
            break;
          case "entry":
            batch.push(frame.frame.value);
            if (frame.frame.value.seq > this.peerHead) this.peerHead = frame.frame.value.seq;
            if (batch.length >= settings.batchEntries) await queueFlush();
            // A quiet moment flushes what came so far.
            else if (!timer) timer = setTimeout(() => ((timer = undefined), void queueFlush().catch(() => undefined)), 20);
            break;
          case "heartbeat":
            this.peerHead = frame.frame.value.headSeq;
            await queueFlush();
            break;
        }
      }
      throw new ConnectError(`peer ${this.peer.nodeId} ended the Pull stream`, Code.Unavailable);
    } finally {
      clearTimeout(timer);
      // Whatever ended the stream, what was received and verified is stored first (or its error surfaces).
      await queueFlush();
    }
  }

  private async mirrorHead(): Promise<bigint> {
    try {
      return (await this.deps.log().getLog({ logId: this.mirror })).head?.lastSeq ?? 0n;
    } catch (error) {
      if (ConnectError.from(error).code === Code.NotFound) return 0n;
      throw error;
    }
  }

  private async recordIntegrityError(failure: ConnectError): Promise<void> {
    const facts = failure.findDetails(rpcDetails.ErrorInfoSchema)[0]?.metadata ?? {};
    const badSeq = /^[0-9]+$/.test(facts["seq"] ?? "") ? BigInt(facts["seq"]!) : this.cursor + 1n;
    const detail = failure.rawMessage;
    await this.deps.db.query(
      "insert into federation.replication_errors (node_id, log_id, seq, detail) values ($1, $2, $3, $4) on conflict (node_id, log_id) do nothing",
      [this.peer.nodeId, this.logId, badSeq, detail],
    );
    await audit(this.deps.db, {
      nodeId: this.peer.nodeId,
      logId: this.logId,
      seq: badSeq,
      reason: `ENTRY_REJECTED: ${detail}`,
      expected: `seq ${badSeq} with a checksum that recomputes from its fields and links to seq ${badSeq - 1n}`,
      actual: facts["problem"] ?? detail,
    });
    this.deps.logger.error({ peer: this.peer.nodeId, log: this.logId, seq: String(badSeq) }, "replication stopped: an entry failed verification");
    this.deps.metrics.entryRejected(this.peer.nodeId);
    this.integrityError(detail);
  }

  private integrityError(detail: string): void {
    this.state = federationV1.ReplicationState.INTEGRITY_ERROR;
    this.lastError = detail;
    this.lastErrorCode = Code.DataLoss;
  }
}

export class Replicator {
  private readonly loops = new Map<string, ReplicationLoop>();
  private timer: NodeJS.Timeout | undefined;
  private reconciling: Promise<void> = Promise.resolve();
  private started = false;
  private closed = false;

  constructor(private readonly deps: Deps) {}

  /** Starts replicating, and reads the registry again every reconcileMs. */
  start(): void {
    this.started = true;
    this.timer = setInterval(() => void this.reconcile(), this.deps.settings.reconcileMs);
    this.timer.unref();
    void this.reconcile();
  }

  /** Starts loops for active peers' mirrored logs and stops those no longer wanted. Runs one at a time. */
  reconcile(): Promise<void> {
    this.reconciling = this.reconciling.then(async () => {
      if (this.closed || !this.started) return;
      const peers = await listPeers(this.deps.db).catch((error: Error) => {
        this.deps.logger.warn({ err: error }, "cannot read the peer registry; replication goes on as it was");
        return undefined;
      });
      if (!peers) return;
      const wanted = new Map<string, { peer: PeerRecord; logId: string }>();
      for (const peer of peers) {
        if (peer.status !== "active") continue;
        for (const logId of peer.mirroredLogs) wanted.set(`${peer.nodeId} ${logId}`, { peer, logId });
      }
      for (const [key, loop] of this.loops) {
        const want = wanted.get(key);
        // A changed URL or key means a new connection: restart the loop.
        if (!want || want.peer.url !== loop.peer.url || JSON.stringify(want.peer.publicJwk) !== JSON.stringify(loop.peer.publicJwk)) {
          this.loops.delete(key);
          await loop.stop();
        }
      }
      for (const [key, { peer, logId }] of wanted) {
        if (!this.loops.has(key)) this.loops.set(key, new ReplicationLoop(peer, logId, this.deps));
      }
    });
    return this.reconciling;
  }

  statuses(nodeId: string): Status[] {
    return [...this.loops.values()].filter((loop) => nodeId === "" || loop.peer.nodeId === nodeId).map((loop) => loop.status());
  }

  /** Clears an integrity error and starts the replication again from the mirror's head; false when there was none. */
  async reset(nodeId: string, logId: string, operator: string): Promise<boolean> {
    const { rowCount } = await this.deps.db.query("delete from federation.replication_errors where node_id = $1 and log_id = $2", [nodeId, logId]);
    if (rowCount === 0) return false;
    await audit(this.deps.db, { nodeId, logId, reason: `RESET: integrity error cleared by ${operator}` });
    const key = `${nodeId} ${logId}`;
    const loop = this.loops.get(key);
    if (loop) {
      this.loops.delete(key);
      await loop.stop();
    }
    await this.reconcile();
    return true;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.reconciling;
    await Promise.all([...this.loops.values()].map((loop) => loop.stop()));
    this.loops.clear();
  }
}
