// Checkpoints, inclusion and consistency proofs, and receipts (C2SP
// tlog-proof) over a log's stored tree (docs/merkle.md). Handlers validate
// and call these.
import { consistencyProof, formatTlogProof, inclusionProof, rightEdgeRoot, treeRoot } from "@annals/chain";
import type { Queryable } from "@annals/db";
import { Code } from "@connectrpc/connect";
import { invalidArgument, rpcError, unavailable } from "@annals/runtime";
import type { Checkpointer } from "./checkpointer.js";
import { seqPastHead } from "./log-errors.js";
import { tileReader, treeEdge } from "./merkle-tree.js";
import { getCheckpoint, type CheckpointRow, type HeadRow } from "./store.js";
import type { WitnessPublisher } from "./witness-publisher.js";

/** The tree's size, or FAILED_PRECONDITION for a log without a tree. */
function treeSizeOf(head: HeadRow): bigint {
  const edge = treeEdge(head);
  if (edge === null) {
    throw rpcError(Code.FailedPrecondition, `log "${head.log_id}" has no Merkle tree: its first entries were compacted before trees existed`, {
      reason: "TREE_UNAVAILABLE",
      metadata: { log: head.log_id },
    });
  }
  return edge.size;
}

/** A tree size a request names: 1 to the tree's size. */
function checkTreeSize(head: HeadRow, field: string, size: bigint, treeSize: bigint, allowZero = false): bigint {
  if (size < (allowZero ? 0n : 1n)) throw invalidArgument(field, `must be ${allowZero ? "0" : "1"} or more`);
  if (size > treeSize) throw seqPastHead(head.log_id, field, size, treeSize);
  return size;
}

/**
 * The latest signed checkpoint, as stored. Reading never drives signing: a
 * poll loop would otherwise sign (and, with witnesses, ask every witness) once
 * per request. When a local log's tree is ahead of its latest checkpoint the
 * checkpointer is nudged and signs within its interval (merkle.test.ts
 * "polling GetCheckpoint signs no more than the interval allows"); only a log
 * that has no checkpoint at all gets one signed at once. A mirror has its
 * origin's, if any arrived.
 */
export async function latestCheckpoint(db: Queryable, checkpointer: Checkpointer, head: HeadRow, publisher?: WitnessPublisher): Promise<CheckpointRow> {
  const size = treeSizeOf(head);
  let latest = await getCheckpoint(db, head.log_id);
  let signedNow = false;
  if (head.origin === "local" && size > 0n) {
    if (latest === null) {
      latest = await checkpointer.covering(head.log_id, size);
      signedNow = true;
    } else if (latest.tree_size < size) checkpointer.grown(head.log_id);
  }
  if (!latest) {
    throw rpcError(Code.FailedPrecondition, `log "${head.log_id}" has no signed checkpoint yet${head.origin === "mirror" ? " (its origin's have not arrived)" : " (it is empty)"}`, {
      reason: "NO_CHECKPOINT",
      metadata: { log: head.log_id },
    });
  }
  if (head.origin === "local" && publisher) return publishedCheckpoint(publisher, head.log_id, signedNow);
  return latest;
}

/**
 * With witnesses: the latest checkpoint that met the policy, with its
 * cosignatures. Reads wait for the witnesses only right after the log's
 * first checkpoint was signed; otherwise, with no checkpoint published yet,
 * UNAVAILABLE (the publisher keeps asking the witnesses on its own).
 */
async function publishedCheckpoint(publisher: WitnessPublisher, logId: string, waitForRound: boolean): Promise<CheckpointRow> {
  if (waitForRound) await publisher.publish(logId);
  const published = await publisher.published(logId);
  if (published) return published;
  throw unavailable(`no checkpoint of log "${logId}" has been cosigned by enough witnesses yet; retry`, { reason: "WITNESS_QUORUM", metadata: { log: logId } }, 1000);
}

/** GetCheckpoint: the latest, or the root at a size (with its note when one of exactly that size was signed). */
export async function checkpointAt(db: Queryable, checkpointer: Checkpointer, head: HeadRow, size: bigint | undefined, publisher?: WitnessPublisher) {
  if (size === undefined) {
    const latest = await latestCheckpoint(db, checkpointer, head, publisher);
    return { note: latest.note, treeSize: latest.tree_size, rootHash: latest.root_hash };
  }
  const treeSize = treeSizeOf(head);
  checkTreeSize(head, "tree_size", size, treeSize);
  const edge = treeEdge(head)!;
  const rootHash = size === treeSize ? rightEdgeRoot(edge) : await treeRoot(size, tileReader(db, head.log_id));
  const signed = await getCheckpoint(db, head.log_id, size);
  return { note: signed?.note ?? "", treeSize: size, rootHash };
}

/** GetInclusionProof: entry seq in the tree of `size` leaves (default: the latest checkpoint's). */
export async function inclusionAt(db: Queryable, checkpointer: Checkpointer, head: HeadRow, seq: bigint, size: bigint | undefined, publisher?: WitnessPublisher) {
  const treeSize = treeSizeOf(head);
  const proofSize = size === undefined ? (await latestCheckpoint(db, checkpointer, head, publisher)).tree_size : checkTreeSize(head, "tree_size", size, treeSize);
  if (seq < 1n) throw invalidArgument("seq", "must be 1 or more");
  if (seq > treeSize) throw seqPastHead(head.log_id, "seq", seq, treeSize);
  if (seq > proofSize) throw invalidArgument("seq", `(${seq}) is past tree_size (${proofSize})`);
  const hashes = await inclusionProof(seq - 1n, proofSize, tileReader(db, head.log_id));
  return { leafIndex: seq - 1n, treeSize: proofSize, hashes };
}

/** GetConsistencyProof: the tree of `from` leaves is a prefix of the tree of `to`. */
export async function consistencyBetween(db: Queryable, head: HeadRow, from: bigint, to: bigint) {
  const treeSize = treeSizeOf(head);
  checkTreeSize(head, "to_size", to, treeSize);
  checkTreeSize(head, "from_size", from, treeSize, true);
  if (from > to) throw invalidArgument("from_size", `(${from}) is larger than to_size (${to})`);
  return { hashes: await consistencyProof(from, to, tileReader(db, head.log_id)) };
}

/**
 * Receipts (C2SP tlog-proof) for entries, against one checkpoint that covers
 * them all: signed now if none does yet; with witnesses, the published one,
 * after one round of asking the witnesses when it does not cover them yet
 * (UNAVAILABLE when the quorum did not cosign within that round).
 */
export async function receipts(db: Queryable, checkpointer: Checkpointer, logId: string, seqs: readonly bigint[], publisher?: WitnessPublisher): Promise<string[]> {
  const last = seqs.reduce((max, seq) => (seq > max ? seq : max), 0n);
  let checkpoint = await checkpointer.covering(logId, last);
  if (publisher) {
    let published = await publisher.published(logId);
    if (!published || published.tree_size < last) {
      await publisher.publish(logId);
      published = await publisher.published(logId);
    }
    if (!published || published.tree_size < last) {
      throw unavailable(`the witnesses have not cosigned a checkpoint of log "${logId}" that covers seq ${last} yet; retry`, { reason: "WITNESS_QUORUM", metadata: { log: logId } }, 1000);
    }
    checkpoint = published;
  }
  const reader = tileReader(db, logId);
  return Promise.all(
    seqs.map(async (seq) => formatTlogProof({ index: seq - 1n, hashes: await inclusionProof(seq - 1n, checkpoint.tree_size, reader), checkpoint: checkpoint.note })),
  );
}
