import { canonicalJson, sha256Hex } from "@annals/chain";
import { Code } from "@connectrpc/connect";
import type { Database, Queryable } from "@annals/db";
import { notFound, rpcError } from "@annals/runtime";
import { refuseMirror } from "./append-batcher.js";
import { growTree } from "./merkle-tree.js";
import { planAppends, type AppendedEntry } from "./append-plan.js";
import { seqCompacted, seqPastHead } from "./log-errors.js";
import { RESERVED_KIND_PREFIX, type PreparedEntry } from "./entry-input.js";
import { checksumAt, compactBefore, entryBySeq, findByKeys, insertEntries, lockHead, markRedacted, type HeadRow } from "./store.js";

/** The kind of the entry that records a redaction. */
export const REDACTION_KIND = `${RESERVED_KIND_PREFIX}redaction`;

export type CompactTarget = { keepLast: bigint } | { beforeSeq: bigint };

/**
 * Removes the entries before a seq under the head lock, keeping the checksum
 * of the last removed one as the checkpoint that Verify and Export anchor on.
 */
export async function compactLog(db: Database, logId: string, target: CompactTarget): Promise<{ removed: bigint; head: HeadRow }> {
  return db.transaction(async (tx) => {
    const head = await lockHead(tx, logId);
    if (!head) throw notFound("log", logId);
    const beforeSeq = "keepLast" in target ? head.last_seq - target.keepLast + 1n : target.beforeSeq;
    if (beforeSeq > head.last_seq + 1n) {
      throw seqPastHead(logId, "before_seq", beforeSeq, head.last_seq);
    }
    if (beforeSeq <= head.checkpoint_seq + 1n) return { removed: 0n, head };
    const checkpointChecksum = await checksumAt(tx, logId, beforeSeq - 1n);
    if (checkpointChecksum === null) {
      throw rpcError(Code.DataLoss, `entry ${beforeSeq - 1n} of log "${logId}" is missing; run Verify`, {
        reason: "ENTRIES_MISSING",
        metadata: { log: logId, first_missing_seq: String(beforeSeq - 1n), last_missing_seq: String(beforeSeq - 1n) },
      });
    }
    const { removed } = await compactBefore(tx, logId, beforeSeq, checkpointChecksum);
    return { removed, head: (await lockHead(tx, logId))! };
  });
}

export interface RedactOptions {
  logId: string;
  seq: bigint;
  reason: string;
  reqId: string | null;
  /** Who asked (recorded as the redaction entry's source_id). */
  subject: string;
}

/**
 * Erases one payload and appends the `annals.redaction` entry recording it,
 * in one transaction under the head lock, so the erasure has its own place
 * in the chain. A retry with the same req_id returns the original redaction.
 */
export async function redactEntry(
  db: Database,
  options: RedactOptions,
  onCommitted: (logId: string) => void,
): Promise<AppendedEntry> {
  const { logId, seq, reason, reqId } = options;
  const payloadJson = canonicalJson({ redacted_seq: seq.toString(), reason });
  const entry: PreparedEntry = {
    uuid: null,
    kind: REDACTION_KIND,
    payloadJson,
    binaryPayload: null,
    contentType: null,
    payloadDigest: sha256Hex(payloadJson),
    sourceId: options.subject,
    simTime: null,
    metadata: {},
    reqId,
  };
  const result = await db.transaction(async (tx) => {
    const head = await lockHead(tx, logId);
    if (!head) throw notFound("log", logId);
    refuseMirror(logId, head);
    const existing = reqId === null ? [] : await findByKeys(tx, logId, [reqId], []);
    const plan = planAppends(logId, head, [{ entries: [entry] }], existing);
    const [outcome] = plan.outcomes;
    if (outcome instanceof Error) throw outcome;
    const appended = outcome![0]!;
    if (appended.duplicate) return appended;
    const target = await redactionTarget(tx, head, seq);
    await insertEntries(tx, logId, plan.rows, plan.head, growTree(head, plan.rows.map((row) => row.checksum)));
    await markRedacted(tx, logId, target, appended.seq, reason);
    return appended;
  });
  if (!result.duplicate) onCommitted(logId);
  return result;
}

async function redactionTarget(tx: Queryable, head: HeadRow, seq: bigint): Promise<bigint> {
  const logId = head.log_id;
  if (seq <= head.checkpoint_seq) {
    throw seqCompacted(logId, seq, head.checkpoint_seq + 1n);
  }
  const target = await entryBySeq(tx, logId, seq);
  if (!target) throw notFound("entry", `${logId}#${seq}`);
  if (target.kind === REDACTION_KIND) {
    throw rpcError(Code.FailedPrecondition, `seq ${seq} records a redaction and cannot itself be redacted`, {
      reason: "REDACTION_ENTRY",
      metadata: { log: logId, seq: String(seq) },
    });
  }
  if (target.redacted_by_seq !== null) {
    throw rpcError(Code.FailedPrecondition, `seq ${seq} was already redacted by seq ${target.redacted_by_seq}`, {
      reason: "ALREADY_REDACTED",
      metadata: { log: logId, seq: String(seq), redaction_seq: String(target.redacted_by_seq) },
    });
  }
  return seq;
}
