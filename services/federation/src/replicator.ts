// The pulling side of federation: one loop per (active peer, mirrored log)
// that pulls the peer's log after the mirror's head and hands verified batches
// to the local log service (AppendReplicated checks every checksum and link and
// stores a batch whole or not at all; the mirror's head is where pulling resumes).
import { Code, ConnectError } from "@connectrpc/connect";
import { createAnnalsClients, type LogClient } from "@annals/client";
import type { Database } from "@annals/db";
import { federationV1, logV1, rpcDetails } from "@annals/proto";
import { Backoff, retryDelayMs, sleep, type CertificateFiles, type CertificateMaterial, type Logger } from "@annals/runtime";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs, type Timestamp } from "@bufbuild/protobuf/wkt";
import { audit } from "./audit.js";
import type { FederationMetrics } from "./federation-metrics.js";
import { mirrorLogId, type NodeIdentity } from "./identity.js";
import { signPeerToken } from "./peer-token.js";
import { getPeer, listPeers, type PeerRecord } from "./peers.js";

const { AuditReason, ReplicationState } = federationV1;

export interface ReplicatorSettings {
  /** Backoff after a failed connection: first delay and cap, in ms (with jitter; RetryInfo is honoured). */
  backoffFirstMs: number;
  backoffMaxMs: number;
  /** Most entries handed to the log service in one AppendReplicated. */
  batchEntries: number;
  /**
   * Roughly the most bytes of entries handed to the log service in one
   * AppendReplicated, so that a batch of large payloads stays under the log
   * service's message limit (4 MiB by default).
   */
  batchBytes: number;
  /**
   * The max_entries_per_frame the puller asks of Pull (1–1000). Frames are
   * bounded by count only (the log service's Subscribe batches so), and a
   * frame must fit the 4 MiB message limit of both hops: 100 entries of up to
   * 40 KB each do.
   */
  entriesPerFrame: number;
  /** How often the registry is read again for added, changed or removed peers, in ms. */
  reconcileMs: number;
}

export const DEFAULT_REPLICATOR_SETTINGS: ReplicatorSettings = {
  backoffFirstMs: 200,
  backoffMaxMs: 30_000,
  batchEntries: 500,
  batchBytes: 1024 * 1024,
  entriesPerFrame: 100,
  reconcileMs: 5000,
};

type Status = federationV1.ReplicationStatus;

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

/**
 * An upper estimate of an entry's encoded size: a Struct's protobuf encoding
 * is at most about twice its JSON text, and the other fields are small.
 */
function entryBytes(entry: logV1.Entry): number {
  const body = entry.body.case === "binaryPayload" ? entry.body.value.byteLength : entry.body.case === "payload" ? 2 * JSON.stringify(entry.body.value).length : 0;
  return 1024 + body;
}

/**
 * What an entry the mirror refused is, for the audit trail, from the
 * ErrorInfo of AppendReplicated's DATA_LOSS: CHAIN_MISMATCH names the
 * `problem` (MISSING, DIGEST, CHECKSUM, LINK or CHAIN_LOG_ID).
 */
function integrityReason(info: rpcDetails.ErrorInfo | undefined): federationV1.AuditReason {
  const problem = info?.metadata["problem"] ?? "";
  if (info?.reason === "ENTRIES_MISSING" || problem === "MISSING") return AuditReason.SEQ_GAP;
  if (problem === "CHECKSUM" || problem === "DIGEST") return AuditReason.CHECKSUM_MISMATCH;
  if (problem === "LINK") return AuditReason.BROKEN_LINK;
  return AuditReason.CHECKSUM_MISMATCH;
}

const microsOf = (time: Timestamp | undefined) => (time ? BigInt(timestampMs(time)) * 1000n : 0n);

/** Replications in GetReplicationStatus order: by node id, then log id. */
export function compareReplications(a: { nodeId: string; logId: string }, b: { nodeId: string; logId: string }): number {
  if (a.nodeId !== b.nodeId) return a.nodeId < b.nodeId ? -1 : 1;
  return a.logId === b.logId ? 0 : a.logId < b.logId ? -1 : 1;
}

class ReplicationLoop {
  readonly mirror: string;
  private readonly stopped = new AbortController();
  state = ReplicationState.IDLE;
  /** The mirror's head: the last seq stored, where pulling resumes. */
  head = 0n;
  /** The mirror's last entry's wall time, in µs (0 when unknown). */
  lastWallTimeUs = 0n;
  /** The peer's head as the peer reported it (heartbeats, caught_up, the entries it sent); 0 until it has. */
  peerHead = 0n;
  /** The peer's head entry's wall time, in µs (0 when unknown). */
  peerHeadWallTimeUs = 0n;
  lastError = "";
  lastErrorCode = 0;
  lastSuccessMs: number | undefined;
  backoffMs = 0;
  /** Settled once the mirror's head was read (or could not be), so that a status tells it. */
  readonly ready: Promise<void>;
  readonly done: Promise<void>;

  constructor(
    readonly peer: PeerRecord,
    readonly logId: string,
    private readonly deps: Deps,
  ) {
    this.mirror = mirrorLogId(peer.nodeId, logId);
    this.ready = this.readMirror().catch(() => undefined);
    this.done = this.ready.then(() => this.run());
  }

  stop(): Promise<void> {
    this.stopped.abort();
    return this.done;
  }

  status(): Status {
    const lag = this.peerHead > this.head ? this.peerHead - this.head : 0n;
    const lagUs = lag > 0n && this.lastWallTimeUs > 0n && this.peerHeadWallTimeUs > this.lastWallTimeUs ? this.peerHeadWallTimeUs - this.lastWallTimeUs : 0n;
    return create(federationV1.ReplicationStatusSchema, {
      nodeId: this.peer.nodeId,
      logId: this.logId,
      mirrorLogId: this.mirror,
      state: this.state,
      headSeq: this.head,
      peerHeadSeq: this.peerHead,
      lagEntries: lag,
      lagMs: lagUs / 1000n,
      lastError: this.lastError,
      lastErrorCode: this.lastErrorCode,
      ...(this.lastSuccessMs === undefined ? {} : { lastSuccessTime: timestampFromMs(this.lastSuccessMs) }),
      backoffMs: BigInt(this.state === ReplicationState.BACKOFF ? this.backoffMs : 0),
    });
  }

  private async run(): Promise<void> {
    const { db, logger, settings } = this.deps;
    const signal = this.stopped.signal;
    const stopped = await db.query<{ seq: bigint; detail: string }>("select seq, detail from federation.replication_errors where node_id = $1 and log_id = $2", [this.peer.nodeId, this.logId]);
    if (stopped.rows[0]) {
      this.integrityError(stopped.rows[0].detail);
      return;
    }
    const backoff = new Backoff({ firstMs: settings.backoffFirstMs, maxMs: settings.backoffMaxMs });
    while (!signal.aborted) {
      try {
        await this.follow(signal, () => backoff.reset());
      } catch (error) {
        if (signal.aborted) return;
        const failure = ConnectError.from(error);
        if (failure.code === Code.DataLoss) {
          await this.recordIntegrityError(failure);
          return;
        }
        if (failure.rawMessage !== this.lastError && /certificate/i.test(failure.rawMessage)) {
          await audit(this.deps.db, { nodeId: this.peer.nodeId, logId: this.logId, reason: AuditReason.CERTIFICATE_MISMATCH, message: failure.rawMessage }).catch(() => undefined);
        }
        this.lastError = failure.rawMessage;
        this.lastErrorCode = failure.code;
        this.state = ReplicationState.BACKOFF;
        // Honour the peer's retry delay; otherwise exponential, with jitter, capped.
        const wait = backoff.next(retryDelayMs(failure));
        this.backoffMs = Math.round(wait);
        logger.info({ peer: this.peer.nodeId, log: this.logId, code: Code[failure.code], retryInMs: this.backoffMs }, "replication interrupted; reconnecting");
        await sleep(wait, signal);
      }
    }
  }

  /** One connection: pull after the mirror's head, store in batches, until the stream fails. */
  private async follow(signal: AbortSignal, connected: () => void): Promise<void> {
    const { identity, log, settings } = this.deps;
    await this.readMirror();
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
    let batchBytes = 0;
    let anchor: logV1.Anchor | undefined;
    let flushing: Promise<void> = Promise.resolve();
    const flush = async () => {
      if (batch.length === 0) return;
      const entries = batch;
      batch = [];
      batchBytes = 0;
      const { head } = await log().appendReplicated({ logId: this.mirror, originNode: this.peer.nodeId, entries, ...(anchor ? { anchor } : {}) }, { signal });
      anchor = undefined;
      this.head = head?.lastSeq ?? this.head;
      this.lastWallTimeUs = entries.at(-1)!.wallTimeUs;
      this.lastSuccessMs = Date.now();
      this.deps.metrics.entriesReceived(this.peer.nodeId, entries.length);
    };
    /** Flushes after the ones already queued, so batches are stored in order; a failure ends the connection. */
    const queueFlush = () => (flushing = flushing.then(flush));
    let timer: NodeJS.Timeout | undefined;
    const receive = async (entries: readonly logV1.Entry[]) => {
      for (const entry of entries) {
        batch.push(entry);
        batchBytes += entryBytes(entry);
        this.peerReported(entry.seq, entry.wallTimeUs);
        if (batch.length >= settings.batchEntries || batchBytes >= settings.batchBytes) await queueFlush();
      }
      // A quiet moment flushes what came so far.
      if (batch.length > 0 && !timer) timer = setTimeout(() => ((timer = undefined), void queueFlush().catch(() => undefined)), 20);
    };
    try {
      const request = { logId: this.logId, afterSeq: this.head, maxEntriesPerFrame: settings.entriesPerFrame };
      for await (const { frame } of peer.pull(request, { signal })) {
        if (this.state !== ReplicationState.RUNNING) {
          this.state = ReplicationState.RUNNING;
          this.lastError = "";
          this.lastErrorCode = 0;
          connected();
        }
        switch (frame.case) {
          case "anchor":
            anchor = frame.value;
            break;
          case "entry":
            await receive([frame.value]);
            break;
          case "entries":
            await receive(frame.value.entries);
            break;
          case "heartbeat":
            this.peerReported(frame.value.headSeq, microsOf(frame.value.headTime));
            await queueFlush();
            break;
          case "caughtUp":
            this.peerReported(frame.value.seq, 0n);
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

  /** Notes a position the peer has reached, with its entry's wall time in µs (0 when not told). */
  private peerReported(seq: bigint, wallTimeUs: bigint): void {
    if (seq < this.peerHead) return;
    if (seq > this.peerHead) this.peerHeadWallTimeUs = 0n;
    if (wallTimeUs > 0n) this.peerHeadWallTimeUs = wallTimeUs;
    this.peerHead = seq;
  }

  /** Reads the mirror's head and last entry's wall time (nothing yet when the mirror does not exist). */
  private async readMirror(): Promise<void> {
    try {
      const page = await this.deps.log().read({ logId: this.mirror, direction: logV1.ReadDirection.BACKWARD, pageSize: 1 });
      this.head = page.head?.lastSeq ?? 0n;
      this.lastWallTimeUs = page.entries[0]?.wallTimeUs ?? 0n;
    } catch (error) {
      if (ConnectError.from(error).code !== Code.NotFound) throw error;
    }
  }

  private async recordIntegrityError(failure: ConnectError): Promise<void> {
    const info = failure.findDetails(rpcDetails.ErrorInfoSchema)[0];
    const facts = info?.metadata ?? {};
    const badSeq = /^[0-9]+$/.test(facts["seq"] ?? "") ? BigInt(facts["seq"]!) : this.head + 1n;
    const detail = failure.rawMessage;
    await this.deps.db.query(
      "insert into federation.replication_errors (node_id, log_id, seq, detail) values ($1, $2, $3, $4) on conflict (node_id, log_id) do nothing",
      [this.peer.nodeId, this.logId, badSeq, detail],
    );
    await audit(this.deps.db, {
      nodeId: this.peer.nodeId,
      logId: this.logId,
      seq: badSeq,
      reason: integrityReason(info),
      message: detail,
      expected: `seq ${badSeq} with a checksum that recomputes from its fields and links to seq ${badSeq - 1n}`,
      actual: facts["problem"] ?? detail,
    });
    this.deps.logger.error({ peer: this.peer.nodeId, log: this.logId, seq: String(badSeq) }, "replication stopped: an entry failed verification");
    this.deps.metrics.entryRejected(this.peer.nodeId);
    this.integrityError(detail);
  }

  private integrityError(detail: string): void {
    this.state = ReplicationState.INTEGRITY_ERROR;
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

  /** The replications of one peer ("" for all), by node id and then log id. */
  statuses(nodeId: string): Status[] {
    return [...this.loops.values()]
      .filter((loop) => nodeId === "" || loop.peer.nodeId === nodeId)
      .map((loop) => loop.status())
      .sort(compareReplications);
  }

  /**
   * Clears an integrity error and starts the replication again from the
   * mirror's head; returns its status then, or undefined when there was no
   * error to clear.
   */
  async reset(nodeId: string, logId: string, operator: string): Promise<Status | undefined> {
    const { rowCount } = await this.deps.db.query("delete from federation.replication_errors where node_id = $1 and log_id = $2", [nodeId, logId]);
    if (rowCount === 0) return undefined;
    await audit(this.deps.db, { nodeId, logId, reason: AuditReason.RESET, message: `integrity error cleared by ${operator}` });
    const key = `${nodeId} ${logId}`;
    const loop = this.loops.get(key);
    if (loop) {
      this.loops.delete(key);
      await loop.stop();
    }
    await this.reconcile();
    const restarted = this.loops.get(key);
    if (restarted) {
      await restarted.ready;
      return restarted.status();
    }
    // Not replicating now: the peer is disabled, removed, or no longer mirrors the log.
    const peer = await getPeer(this.deps.db, nodeId);
    return create(federationV1.ReplicationStatusSchema, {
      nodeId,
      logId,
      mirrorLogId: mirrorLogId(nodeId, logId),
      state: peer?.status === "disabled" ? ReplicationState.DISABLED : ReplicationState.IDLE,
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.reconciling;
    await Promise.all([...this.loops.values()].map((loop) => loop.stop()));
    this.loops.clear();
  }
}
