// The pulling side of federation: one loop per (active peer, mirrored log)
// that pulls the peer's log after the mirror's head and hands verified batches
// to the local log service (AppendReplicated checks every checksum and link and
// stores a batch whole or not at all; the mirror's head is where pulling resumes).
import { Code, ConnectError } from "@connectrpc/connect";
import { createAnnalsClients, createAnnalsTransport, type LogClient } from "@annals/client";
import type { Database } from "@annals/db";
import { federationV1, logV1, rpcDetails } from "@annals/proto";
import { Backoff, retryDelayMs, sleep, type CertificateFiles, type CertificateMaterial, type Logger } from "@annals/runtime";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs, type Timestamp } from "@bufbuild/protobuf/wkt";
import { emptyRoot, type VerifierKey } from "@annals/chain";
import { errorReason, invalidArgument, rpcError } from "@annals/runtime";
import { logIdProblem } from "@annals/logs";
import { audit } from "./audit.js";
import { ForkDetected, judgeCheckpoint, type AcceptedCheckpoint, type MirrorTree } from "./checkpoint-guard.js";
import { locateFork } from "./fork-locator.js";
import { getFork, getReplicationRow, getStop, isQuarantined, quarantine, quarantinedMirrors, saveAcceptedCheckpoint, saveFork, startNewMirror } from "./fork-store.js";
import { peerLogKey } from "./log-key.js";
import type { FederationMetrics } from "./federation-metrics.js";
import { mirrorLogId, type NodeIdentity } from "./identity.js";
import { signPeerToken } from "./peer-token.js";
import { getPeer, listPeers, type PeerRecord } from "./peers.js";
import { appendReplicatedRequest, wireEntryOf, wirePullClient, type WireEntry } from "./wire-entries.js";

const { AuditReason, ReplicationState } = federationV1;

export interface ReplicatorSettings {
  /** Backoff after a failed connection: first delay and cap, in ms (with jitter; RetryInfo is honoured). */
  backoffFirstMs: number;
  backoffMaxMs: number;
  /**
   * Most entries handed to the log service in one AppendReplicated; at most
   * the log service's ANNALS_LOG_MAX_BATCH_ENTRIES (1000 by default). Larger
   * batches mean fewer transactions (each a few round trips and a commit).
   */
  batchEntries: number;
  /**
   * The bytes of encoded entries at which a batch is handed to the log
   * service even if it holds fewer than batchEntries, so that a batch of large
   * payloads stays under the log service's message limit (4 MiB by default).
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
  batchEntries: 1000,
  batchBytes: 2 * 1024 * 1024,
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

/** How often, and how far apart, a puller with a peer's log key asks for its checkpoint after entries that do not link (forkBehind). */
const FORK_PROBE_ATTEMPTS = 5;
const FORK_PROBE_INTERVAL_MS = 1000;
/** How long a connection to a peer stays open without a call, in ms (a live Pull stream is a call). */
const PEER_IDLE_MS = 2000;
/** Batches at the log service at once: one being stored, the next checked and waiting for the mirror's head lock. */
const STORES_IN_FLIGHT = 2;
/** How long after the first entry of a batch arrived it is stored if no more come to fill it (and no store is under way), in ms. */
const QUIET_MS = 20;

const pemOf = ({ ca, cert, key }: CertificateMaterial) => ({ cert, key, ...(ca ? { ca } : {}) });

/** Waits `ms`, or less when `signal` aborts (never rejects). */

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
  /** The mirror this replication writes: mirrorLogId(peer, log), or the one ReMirror named. */
  mirror: string;
  /** The peer's log key when it registered one: checkpoints are asked for and checked. */
  readonly key: VerifierKey | undefined;
  /** The last checkpoint of the peer's log accepted. */
  accepted: AcceptedCheckpoint | undefined;
  /** The largest accepted checkpoint handed to the mirror to keep. */
  private keptInMirror = 0n;
  /** For a FORK: the first seq the histories disagree on. */
  forkSeq = 0n;
  quarantined: string[] = [];
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
  /** Settled once the loop has read whether the replication is stopped (an integrity error, a fork, a quarantine). */
  readonly stopChecked: Promise<void>;
  private stopRead: () => void = () => {};
  readonly done: Promise<void>;

  constructor(
    readonly peer: PeerRecord,
    readonly logId: string,
    private readonly deps: Deps,
  ) {
    this.mirror = mirrorLogId(peer.nodeId, logId);
    this.key = peer.logVerifierKey === "" ? undefined : peerLogKey(peer.logVerifierKey, peer.nodeId, logId);
    this.ready = this.loadReplication()
      .then(() => this.readMirror())
      .catch(() => undefined);
    this.stopChecked = new Promise((resolve) => (this.stopRead = resolve));
    this.done = this.ready.then(() => this.run()).finally(() => this.stopRead());
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
      forkSeq: this.forkSeq,
      checkpointSize: this.accepted?.size ?? 0n,
      quarantinedMirrorLogIds: this.quarantined,
    });
  }

  /** The replication's row (its mirror, its accepted checkpoint) and its quarantined mirrors. */
  private async loadReplication(): Promise<void> {
    const row = await getReplicationRow(this.deps.db, this.peer.nodeId, this.logId);
    if (row) {
      this.mirror = row.mirrorLogId;
      this.accepted = row.accepted;
    }
    this.quarantined = await quarantinedMirrors(this.deps.db, this.peer.nodeId, this.logId);
  }

  private async run(): Promise<void> {
    const { db, logger, settings } = this.deps;
    const signal = this.stopped.signal;
    const stopped = await getStop(db, this.peer.nodeId, this.logId);
    if (stopped) {
      if (stopped.kind === "fork") this.forkSeq = stopped.seq;
      this.integrityError(stopped.detail);
      if (stopped.kind === "fork" && (await isQuarantined(db, this.mirror))) this.state = ReplicationState.QUARANTINED;
      this.stopRead();
      return;
    }
    this.stopRead();
    const backoff = new Backoff({ firstMs: settings.backoffFirstMs, maxMs: settings.backoffMaxMs });
    while (!signal.aborted) {
      try {
        await this.follow(signal, () => backoff.reset());
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof ForkDetected) {
          await this.recordFork(error);
          return;
        }
        const failure = ConnectError.from(error);
        if (failure.code === Code.DataLoss) {
          // Entries that do not link to the mirror's may be the first sign of a rewritten history: the peer's checkpoint tells.
          const fork = this.key ? await this.forkBehind(signal) : undefined;
          if (fork) await this.recordFork(fork);
          else await this.recordIntegrityError(failure);
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
    const { log, settings } = this.deps;
    await this.readMirror();
    const tls = this.deps.tls;
    if (tls && !this.peer.url.startsWith("https:")) {
      // Fail closed: with mTLS on, never pull over plain text.
      throw new ConnectError(`mTLS is on but peer ${this.peer.nodeId} has the plain-text URL ${this.peer.url}; register its https:// URL`, Code.FailedPrecondition);
    }
    const pull = wirePullClient(this.peerTransport());
    // Receive, verify and store overlap: while one batch is being stored, the next is received and
    // handed to the log service, which checks its entries and then waits at the mirror's head lock for
    // the one before it to commit (replicate.ts). Batches commit one after another, in seq order (the
    // lock and the contiguity check see to it), and the position (the mirror's head) moves only with a
    // commit. A failed store aborts the Pull stream and is what the connection ends with.
    const storeFailed = new AbortController();
    let failure: { error: unknown } | undefined;
    let batch: WireEntry[] = [];
    let batchBytes = 0;
    let anchor: logV1.Anchor | undefined;
    let stored: Promise<void> = Promise.resolve();
    /** Batches handed to the log service and not yet committed, oldest first. */
    const queued: Promise<void>[] = [];
    const store = async (entries: WireEntry[], batchAnchor: logV1.Anchor | undefined, before: Promise<void>, overlapping: boolean) => {
      const request = appendReplicatedRequest({ logId: this.mirror, originNode: this.peer.nodeId, ...(batchAnchor ? { anchor: batchAnchor } : {}) }, entries);
      let response: logV1.AppendReplicatedResponse;
      try {
        response = await log().appendReplicated(request, { signal });
      } catch (error) {
        // Sent while the batch before it was being stored, it may have reached the log service first
        // (another replica of it): it is refused as not contiguous, and sent again once that one is stored.
        await before;
        if (!overlapping || errorReason(ConnectError.from(error)) !== "MIRROR_NOT_CONTIGUOUS") throw error;
        response = await log().appendReplicated(request, { signal });
      }
      await before;
      this.head = response.head?.lastSeq ?? this.head;
      this.lastWallTimeUs = entries.at(-1)!.wallTimeUs;
      this.lastSuccessMs = Date.now();
      this.deps.metrics.entriesReceived(this.peer.nodeId, entries.length);
    };
    /** Hands what was received so far to the log service, to commit after the batches before it; settles once all of them are stored. */
    const queueFlush = (): Promise<void> => {
      if (batch.length > 0) {
        const entries = batch;
        const batchAnchor = anchor;
        batch = [];
        batchBytes = 0;
        anchor = undefined;
        const before = stored;
        // At most STORES_IN_FLIGHT batches at the log service: one being stored, the next checked and waiting for the head lock.
        const turn = queued.at(-STORES_IN_FLIGHT);
        const storing = (stored = turn ? turn.then(() => store(entries, batchAnchor, before, true)) : store(entries, batchAnchor, before, queued.length > 0));
        queued.push(storing);
        storing.then(
          () => void queued.splice(queued.indexOf(storing), 1),
          (error: unknown) => {
            failure ??= { error };
            storeFailed.abort();
          },
        );
      }
      return stored;
    };
    let timer: NodeJS.Timeout | undefined;
    /** A quiet moment stores what came so far; while a batch is being stored, the one being received grows on instead. */
    const flushWhenQuiet = () => {
      timer = undefined;
      if (batch.length === 0) return;
      if (queued.length > 0) timer = setTimeout(flushWhenQuiet, QUIET_MS);
      else void queueFlush();
    };
    const receive = async (entries: readonly WireEntry[], checked: boolean) => {
      for (const entry of entries) {
        batch.push(entry);
        batchBytes += entry.encoded.byteLength;
        // With checkpoints, the peer's head is its signed checkpoint's size, never what it streamed.
        if (!checked) this.peerReported(entry.seq, entry.wallTimeUs);
        if (batch.length >= settings.batchEntries || batchBytes >= settings.batchBytes) {
          void queueFlush();
          // Bounded memory: receiving waits while STORES_IN_FLIGHT batches are at the log service.
          while (queued.length > STORES_IN_FLIGHT) await queued[0];
        }
      }
      if (batch.length > 0 && !timer) timer = setTimeout(flushWhenQuiet, QUIET_MS);
    };
    try {
      const checked = this.key !== undefined;
      const request = { logId: this.logId, afterSeq: this.head, maxEntriesPerFrame: settings.entriesPerFrame, sendCheckpoints: checked, checkpointSize: this.accepted?.size ?? 0n };
      for await (const { frame, checkpoint } of pull(request, { signal: AbortSignal.any([signal, storeFailed.signal]) })) {
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
            await receive([wireEntryOf(frame.value)], checked);
            break;
          case "entries":
            // Not sent as such by the wire client (wireEntries instead); kept for completeness.
            await receive(frame.value.entries.map(wireEntryOf), checked);
            break;
          case "wireEntries":
            await receive(frame.value, checked);
            break;
          case "heartbeat":
            if (!checked) this.peerReported(frame.value.headSeq, microsOf(frame.value.headTime));
            await queueFlush();
            break;
          case "caughtUp":
            if (!checked) this.peerReported(frame.value.seq, 0n);
            await queueFlush();
            break;
        }
        if (checked && checkpoint) {
          // Everything the peer sent before the checkpoint is stored first: the mirror's size is the checkpoint's position.
          clearTimeout(timer);
          timer = undefined;
          await queueFlush();
          await this.checkCheckpoint(checkpoint);
        }
      }
      throw new ConnectError(`peer ${this.peer.nodeId} ended the Pull stream`, Code.Unavailable);
    } catch (error) {
      // A store that failed ended the stream: its error is the connection's, not the abort's.
      throw failure ? failure.error : error;
    } finally {
      clearTimeout(timer);
      // Whatever ended the stream, what was received and verified is stored first (or its error surfaces).
      await queueFlush();
    }
  }

  /**
   * A client of the peer's federation service, with a fresh peer token per
   * call. Its connection closes once idle for `idleMs`: a client is dropped
   * when its stream ends (a new one per connection, a burst of probes), and
   * its idle connection to a peer that restarted would otherwise stay
   * half-closed and keep the process alive (forks.test.ts, "a key B did not
   * register", restarts A).
   */
  private peerClient(idleMs = PEER_IDLE_MS) {
    return createAnnalsClients({ transport: this.peerTransport(idleMs) }).federation;
  }

  private peerTransport(idleMs = PEER_IDLE_MS) {
    const tls = this.deps.tls;
    return createAnnalsTransport({
      baseUrl: this.peer.url,
      token: () => signPeerToken(this.deps.identity, this.peer.nodeId),
      ...(tls ? { tls: { ...pemOf(tls.current()), serverUri: this.peer.nodeId } } : {}),
      idleConnectionTimeoutMs: idleMs,
    });
  }

  /** The mirror's tree, through the local log service. */
  private mirrorTree(): MirrorTree {
    const log = this.deps.log();
    const logId = this.mirror;
    return {
      root: async (size) => (size === 0n ? emptyRoot() : (await log.getCheckpoint({ logId, treeSize: size })).rootHash),
      consistencyProof: async (from, to) => (await log.getConsistencyProof({ logId, fromSize: from, toSize: to })).hashes,
    };
  }

  /**
   * Checks a checkpoint from the peer against the accepted one and the
   * mirror (checkpoint-guard.ts); accepted, it is recorded, gives the peer's
   * head, and is handed to the mirror to keep once the mirror covers it.
   */
  private async checkCheckpoint(checkpoint: federationV1.PullCheckpoint): Promise<void> {
    const next = await judgeCheckpoint({ key: this.key!, accepted: this.accepted, received: checkpoint, mirrorSize: this.head, mirror: this.mirrorTree() });
    if (!this.accepted || next.size !== this.accepted.size) {
      await saveAcceptedCheckpoint(this.deps.db, this.peer.nodeId, this.logId, this.mirror, next);
      this.accepted = next;
    }
    if (next.size !== this.peerHead) {
      this.peerHead = next.size;
      this.peerHeadWallTimeUs = 0n;
    }
    if (next.size <= this.head && next.size > this.keptInMirror) {
      await this.deps.log().appendReplicated({ logId: this.mirror, originNode: this.peer.nodeId, entries: [], checkpoints: [next.note] });
      this.keptInMirror = next.size;
    }
  }

  /**
   * The fork the peer's latest checkpoint shows against the accepted one and
   * the mirror, if any. A peer signs its entries' checkpoint up to a second
   * after sending them (ANNALS_LOG_CHECKPOINT_INTERVAL_MS), so while its
   * checkpoint does not reach past the mirror it is asked again, a few times.
   */
  private async forkBehind(signal: AbortSignal): Promise<ForkDetected | undefined> {
    for (let attempt = 0; attempt < FORK_PROBE_ATTEMPTS && !signal.aborted; attempt++) {
      if (attempt > 0) await sleep(FORK_PROBE_INTERVAL_MS, signal);
      const checkpoint = await this.probe(this.accepted?.size ?? 0n, this.head).catch(() => undefined);
      if (!checkpoint) continue;
      try {
        const judged = await judgeCheckpoint({ key: this.key!, accepted: this.accepted, received: checkpoint, mirrorSize: this.head, mirror: this.mirrorTree() });
        if (judged.size > this.head) return undefined;
      } catch (error) {
        if (error instanceof ForkDetected) return error;
      }
    }
    return undefined;
  }

  /** One Pull whose first frame is the peer's latest checkpoint with proofs from `previous` and `position` (fork-locator.ts). */
  private async probe(previous: bigint, position: bigint, peer = this.peerClient()): Promise<federationV1.PullCheckpoint | undefined> {
    const done = new AbortController();
    try {
      const stream = peer.pull({ logId: this.logId, afterSeq: position, sendCheckpoints: true, checkpointSize: previous, maxEntriesPerFrame: 1 }, { signal: done.signal });
      for await (const { checkpoint } of stream) return checkpoint;
      return undefined;
    } finally {
      done.abort();
    }
  }

  /** Stops the replication for a fork: finds the fork point, keeps the evidence, audits it. */
  private async recordFork(fork: ForkDetected): Promise<void> {
    const { db, logger, metrics } = this.deps;
    const key = this.key!;
    // Stopped at once; the fork point follows from a few more calls to the peer.
    this.integrityError(`FORK: ${fork.finding}: ${fork.message}; locating the fork point`);
    const peer = this.peerClient();
    const forkSeq =
      fork.finding === "UNVERIFIED_SIGNATURE"
        ? (this.accepted?.size ?? 0n) + 1n
        : await locateFork({ key, probe: (previous, position) => this.probe(previous, position, peer), mirror: this.mirrorTree(), mirrorSize: this.head }).catch(() => this.head + 1n);
    const detail = `FORK: ${fork.finding}: ${fork.message}; fork point seq ${forkSeq}; the mirror keeps seqs up to ${this.head} and takes no more from this peer (see GetForkEvidence, then quarantine and re-mirror)`;
    await saveFork(db, this.peer.nodeId, this.logId, { mirrorLogId: this.mirror, forkSeq, finding: fork.finding, detail, evidence: fork.evidence, proves: fork.proves });
    await audit(db, {
      nodeId: this.peer.nodeId,
      logId: this.logId,
      seq: forkSeq,
      reason: AuditReason.FORK,
      message: detail,
      expected: this.accepted ? `checkpoints consistent with size ${this.accepted.size} (root ${Buffer.from(this.accepted.root).toString("hex")}) and with the mirror` : "checkpoints consistent with the mirror",
      actual: fork.checkpoint ? `size ${fork.checkpoint.size}, root ${Buffer.from(fork.checkpoint.rootHash).toString("hex")}` : fork.finding,
    });
    logger.error({ peer: this.peer.nodeId, log: this.logId, forkSeq: String(forkSeq), finding: fork.finding }, "replication stopped: the peer's history forked");
    metrics.forkDetected(this.peer.nodeId, this.logId);
    this.forkSeq = forkSeq;
    this.integrityError(detail);
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
        if (!want || want.peer.url !== loop.peer.url || want.peer.logVerifierKey !== loop.peer.logVerifierKey || JSON.stringify(want.peer.publicJwk) !== JSON.stringify(loop.peer.publicJwk)) {
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
    const stop = await getStop(this.deps.db, nodeId, logId);
    if (stop?.kind === "fork") {
      throw rpcError(
        Code.FailedPrecondition,
        `the replication of "${logId}" from "${nodeId}" stopped at a fork (seq ${stop.seq}); a reset would only meet it again: keep the evidence (GetForkEvidence), quarantine the mirror (QuarantineMirror) and re-mirror (ReMirror)`,
        { reason: "FORK", metadata: { node_id: nodeId, log: logId, fork_seq: String(stop.seq) } },
      );
    }
    const { rowCount } = await this.deps.db.query("delete from federation.replication_errors where node_id = $1 and log_id = $2", [nodeId, logId]);
    if (rowCount === 0) return undefined;
    await audit(this.deps.db, { nodeId, logId, reason: AuditReason.RESET, message: `integrity error cleared by ${operator}` });
    return this.restartLoop(nodeId, logId);
  }

  /** Restarts one replication's loop (after its stored state changed) and returns its status once it has read its state. */
  private async restartLoop(nodeId: string, logId: string): Promise<Status> {
    const key = `${nodeId} ${logId}`;
    const loop = this.loops.get(key);
    if (loop) {
      this.loops.delete(key);
      await loop.stop();
    }
    await this.reconcile();
    const restarted = this.loops.get(key);
    if (restarted) {
      await restarted.stopChecked;
      return restarted.status();
    }
    const peer = await getPeer(this.deps.db, nodeId);
    return create(federationV1.ReplicationStatusSchema, {
      nodeId,
      logId,
      mirrorLogId: (await getReplicationRow(this.deps.db, nodeId, logId))?.mirrorLogId ?? mirrorLogId(nodeId, logId),
      state: peer?.status === "disabled" ? ReplicationState.DISABLED : ReplicationState.IDLE,
      quarantinedMirrorLogIds: await quarantinedMirrors(this.deps.db, nodeId, logId),
    });
  }

  /** The fork evidence a replication stored; NOT_FOUND (NO_EVIDENCE) when none. */
  async forkEvidence(nodeId: string, logId: string) {
    const fork = await getFork(this.deps.db, nodeId, logId);
    if (!fork) {
      throw rpcError(Code.NotFound, `no fork evidence is stored for the replication of "${logId}" from "${nodeId}"`, {
        reason: "NO_EVIDENCE",
        metadata: { node_id: nodeId, log: logId },
      });
    }
    return fork;
  }

  /** Marks the mirror of a replication stopped by a fork as quarantined. */
  async quarantine(nodeId: string, logId: string, operator: string): Promise<Status> {
    const stop = await getStop(this.deps.db, nodeId, logId);
    if (stop?.kind !== "fork") {
      throw rpcError(Code.FailedPrecondition, `the replication of "${logId}" from "${nodeId}" is not stopped by a fork; only a forked mirror is quarantined`, {
        reason: "NOT_FORKED",
        metadata: { node_id: nodeId, log: logId },
      });
    }
    const fork = await getFork(this.deps.db, nodeId, logId);
    const mirror = (await getReplicationRow(this.deps.db, nodeId, logId))?.mirrorLogId ?? mirrorLogId(nodeId, logId);
    const added = await quarantine(this.deps.db, { nodeId, logId, mirrorLogId: mirror, forkSeq: stop.seq, evidence: fork?.evidence ?? "", operator });
    if (added) await audit(this.deps.db, { nodeId, logId, seq: stop.seq, reason: AuditReason.QUARANTINE, message: `mirror ${mirror} quarantined by ${operator} (fork at seq ${stop.seq})` });
    return this.restartLoop(nodeId, logId);
  }

  /** Starts a replication whose mirror is quarantined again, from seq 1, into a new mirror. */
  async reMirror(nodeId: string, logId: string, requested: string, operator: string): Promise<Status> {
    const { db } = this.deps;
    const current = (await getReplicationRow(db, nodeId, logId))?.mirrorLogId ?? mirrorLogId(nodeId, logId);
    if (!(await isQuarantined(db, current))) {
      throw rpcError(Code.FailedPrecondition, `the mirror ${current} of "${logId}" from "${nodeId}" is not quarantined; quarantine it first (QuarantineMirror)`, {
        reason: "NOT_QUARANTINED",
        metadata: { node_id: nodeId, log: logId },
      });
    }
    const taken = async (name: string) => {
      if (await isQuarantined(db, name)) return true;
      try {
        await this.deps.log().getLog({ logId: name });
        return true;
      } catch (error) {
        if (ConnectError.from(error).code === Code.NotFound) return false;
        throw error;
      }
    };
    let next = requested;
    if (next === "") {
      const base = mirrorLogId(nodeId, logId);
      for (let n = 2; next === "" || (await taken(next)); n++) next = `${base}.${n}`;
    } else {
      const problem = logIdProblem(next);
      if (problem) throw invalidArgument("mirror_log_id", problem);
      if (!next.startsWith("mirror/")) throw invalidArgument("mirror_log_id", "must be under mirror/ (names there are reserved for federation mirrors)");
      if (await taken(next)) {
        throw rpcError(Code.AlreadyExists, `log "${next}" exists (or was a quarantined mirror); name another`, { reason: "MIRROR_EXISTS", metadata: { log: next } });
      }
    }
    await db.transaction(async (tx) => {
      await startNewMirror(tx, nodeId, logId, next);
      await tx.query("delete from federation.replication_errors where node_id = $1 and log_id = $2", [nodeId, logId]);
    });
    await audit(db, { nodeId, logId, reason: AuditReason.RE_MIRROR, message: `${operator} re-mirrors "${logId}" of ${nodeId} into ${next} (quarantined: ${current})` });
    return this.restartLoop(nodeId, logId);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.reconciling;
    await Promise.all([...this.loops.values()].map((loop) => loop.stop()));
    this.loops.clear();
  }
}
