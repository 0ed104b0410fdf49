// Signed checkpoints (C2SP tlog-checkpoint in a signed note, Ed25519): one
// covers every append within the configured interval, and one is signed at
// once when a caller needs it (a receipt, an export). Each is signed from the
// committed tree under the head lock, after checking that the tree still
// extends the latest checkpoint the log signed: a log never signs two
// checkpoints that cannot both be true (docs/merkle.md, "Checkpoints").
import { bytesEqual, rightEdgeRoot, signCheckpoint, treeRoot, type NoteSigner } from "@annals/chain";
import type { Database, Queryable } from "@annals/db";
import { Code } from "@connectrpc/connect";
import { rpcError, type Logger } from "@annals/runtime";
import { tileReader, treeEdge, treeMismatch } from "./merkle-tree.js";
import { getCheckpoint, insertCheckpoint, lockHead, logsAheadOfTheirCheckpoint, type CheckpointRow, type HeadRow } from "./store.js";

export interface CheckpointerOptions {
  db: Database;
  /** Signs a log's checkpoints under the log's origin (signing-key.ts). */
  signerFor(logId: string): NoteSigner;
  /** The longest an append waits for a checkpoint that covers it, in ms. Default 1000. */
  intervalMs: number;
  logger: Logger;
  /** Told after a checkpoint was signed for the log's whole tree (the witness publisher sends it on). */
  onSigned?: (logId: string) => void;
}

export const DEFAULT_CHECKPOINT_INTERVAL_MS = 1000;

export class Checkpointer {
  /** Logs with appends no checkpoint covers yet, and the timer that will sign for them. */
  private readonly due = new Map<string, NodeJS.Timeout>();
  /** A signing in progress per log, shared by the callers that wait for it. */
  private readonly signing = new Map<string, Promise<CheckpointRow | null>>();
  private closed = false;

  constructor(private readonly options: CheckpointerOptions) {}

  /** Called after a commit that grew a log: a checkpoint covering it follows within the interval. */
  grown(logId: string): void {
    if (this.closed || this.due.has(logId)) return;
    const timer = setTimeout(() => {
      this.due.delete(logId);
      this.sign(logId).catch((error: unknown) => this.options.logger.error({ err: error, log: logId }, "could not sign a checkpoint"));
    }, this.options.intervalMs);
    timer.unref();
    this.due.set(logId, timer);
  }

  /**
   * At startup: every local log whose tree is ahead of its latest checkpoint
   * (the process stopped before its timer fired) gets one within the
   * interval, as if it had just grown. Returns those logs.
   */
  async sweep(): Promise<string[]> {
    const behind = await logsAheadOfTheirCheckpoint(this.options.db);
    for (const logId of behind) this.grown(logId);
    return behind;
  }

  /** A checkpoint of at least `size` leaves, signing one now when none exists yet. */
  async covering(logId: string, size: bigint): Promise<CheckpointRow> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const latest = await getCheckpoint(this.options.db, logId);
      if (latest && latest.tree_size >= size) return latest;
      // A signing already running may have started before these leaves were committed: wait for it, then sign again.
      await this.sign(logId);
    }
    throw rpcError(Code.Unavailable, `no checkpoint of log "${logId}" covers seq ${size} yet; retry`, { reason: "NO_CHECKPOINT", metadata: { log: logId } });
  }

  /** The checkpoint of exactly `size` leaves (for an export's end line), signing it when none was. */
  async at(logId: string, size: bigint): Promise<CheckpointRow> {
    const existing = await getCheckpoint(this.options.db, logId, size);
    if (existing) return existing;
    const signed = await this.options.db.transaction(async (tx) => this.signLocked(tx, logId, size));
    if (!signed) throw rpcError(Code.FailedPrecondition, `log "${logId}" has no tree to sign`, { reason: "TREE_UNAVAILABLE", metadata: { log: logId } });
    return signed;
  }

  /** Signs the log's current tree, one signing per log at a time. */
  sign(logId: string): Promise<CheckpointRow | null> {
    let running = this.signing.get(logId);
    if (!running) {
      running = this.options.db
        .transaction((tx) => this.signLocked(tx, logId))
        .then((signed) => {
          if (signed) this.options.onSigned?.(logId);
          return signed;
        })
        .finally(() => this.signing.delete(logId));
      this.signing.set(logId, running);
    }
    return running;
  }

  close(): void {
    this.closed = true;
    for (const timer of this.due.values()) clearTimeout(timer);
    this.due.clear();
  }

  /**
   * Under the head lock: checks the tree against the latest signed
   * checkpoint, then signs the tree at `size` (default: all of it).
   * Mirrors sign nothing (they keep their origin's checkpoints).
   */
  private async signLocked(tx: Queryable, logId: string, size?: bigint): Promise<CheckpointRow | null> {
    const head = await lockHead(tx, logId);
    if (!head || head.origin === "mirror") return null;
    const edge = treeEdge(head);
    if (edge === null) return null;
    const reader = tileReader(tx, logId);
    const latest = await getCheckpoint(tx, logId);
    if (latest) await checkExtends(head, edge.size, latest, reader);
    const treeSize = size ?? edge.size;
    if (treeSize === 0n || treeSize > edge.size) return latest;
    if (latest && latest.tree_size === treeSize) return latest;
    const rootHash = treeSize === edge.size ? rightEdgeRoot(edge) : await treeRoot(treeSize, reader);
    const origin = this.options.signerFor(logId).key.name;
    const note = signCheckpoint({ origin, size: treeSize, rootHash, extensions: [] }, [this.options.signerFor(logId)]);
    const row = { tree_size: treeSize, root_hash: rootHash, note };
    await insertCheckpoint(tx, logId, row);
    return row;
  }
}

/** The tree must still hold the latest signed checkpoint's tree as its prefix, root for root. */
async function checkExtends(head: HeadRow, treeSize: bigint, latest: CheckpointRow, reader: ReturnType<typeof tileReader>): Promise<void> {
  if (latest.tree_size > treeSize) {
    throw treeMismatch(head.log_id, treeSize, head.last_seq, `has ${treeSize} leaves, fewer than the ${latest.tree_size} of its latest signed checkpoint`);
  }
  const root = await treeRoot(latest.tree_size, reader);
  if (!bytesEqual(root, latest.root_hash)) {
    throw treeMismatch(head.log_id, treeSize, head.last_seq, `no longer has the root its checkpoint of size ${latest.tree_size} signed`);
  }
}
