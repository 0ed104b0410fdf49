import { ChainVerifier, encodeRightEdge, type EntryCheck, type EntryProblem } from "@annals/chain";
import { growTree } from "./merkle-tree.js";
import { Code } from "@connectrpc/connect";
import type { Database } from "@annals/db";
import type { logV1 } from "@annals/proto";
import { rpcError } from "@annals/runtime";
import { REDACTION_KIND } from "./maintenance.js";
import { keepOriginCheckpoints } from "./mirror-checkpoints.js";
import { anchorMirror, entryBySeq, insertEntries, lockHead, markRedacted, type HeadRow, type NewEntryRow } from "./store.js";

/** The VerifyFindingKind name of each problem the chain verifier reports. */
const FINDING_OF: Record<EntryProblem, string> = { payload_digest: "DIGEST", checksum: "CHECKSUM", link: "LINK" };

export interface ReplicatedBatch {
  logId: string;
  originNode: string;
  entries: readonly logV1.Entry[];
  anchor: { seq: bigint; checksum: string; treeEdge: readonly Uint8Array[] } | null;
  /** The origin's signed checkpoints to keep with the mirror (mirror-checkpoints.ts). */
  checkpoints?: readonly string[];
}

/** The right edge the origin sent with its anchor, encoded; null when it sent none (the mirror then has no tree). */
function anchorEdge(anchor: { seq: bigint; treeEdge: readonly Uint8Array[] }): Uint8Array | null {
  if (anchor.treeEdge.length === 0) return null;
  return encodeRightEdge({ size: anchor.seq, hashes: anchor.treeEdge });
}

/** An entry that does not verify, as ChainVerifier reported it; or what the verifier threw. */
type Refusal = { entry: logV1.Entry; check: EntryCheck } | { thrown: unknown };

/** A batch checked on its own: its rows, and the first entry that does not verify, if any. */
interface CheckedBatch {
  rows: NewEntryRow[];
  /** What the verifier found wrong with the first entry (its link to the mirror's head aside: that needs the head). */
  firstProblems: readonly EntryProblem[];
  refusal: Refusal | undefined;
  last: { seq: bigint; checksum: string };
  lastWallTimeUs: bigint;
}

/**
 * Everything ChainVerifier checks of a batch that does not depend on the
 * mirror's head: each entry's payload digest and checksum, and each link and
 * seq after the first entry. It walks from the first entry's own
 * prev_checksum, so that the first entry's link to the head is the one check
 * left for under the head lock (checkLinkToHead); together they are the walk
 * from the head that the verifier would make, with the same first refusal.
 * A refusal is kept, not thrown, so that the head's own checks come first.
 */
function checkBatch(entries: readonly logV1.Entry[]): CheckedBatch {
  const first = entries[0]!;
  const chainLog = first.chainLogId;
  const verifier = new ChainVerifier({ seq: first.seq - 1n, checksum: first.prevChecksum });
  const rows: NewEntryRow[] = [];
  let firstProblems: readonly EntryProblem[] = [];
  let lastWallTimeUs = 0n;
  for (const entry of entries) {
    const json = entry.body.case === "payload" ? (entry.body.value) : null;
    const bytes = entry.body.case === "binaryPayload" ? entry.body.value : null;
    const fields = {
      logId: chainLog, seq: entry.seq, uuid: entry.uuid, kind: entry.kind, sourceId: entry.sourceId,
      simTime: entry.simTime ?? null, wallTimeUs: entry.wallTimeUs, reqId: entry.requestId, metadata: entry.metadata,
      contentType: entry.contentType === "" ? null : entry.contentType,
      payloadDigest: entry.payloadDigest, prevChecksum: entry.prevChecksum, checksum: entry.checksum, payload: json ?? bytes,
    };
    let check: EntryCheck;
    try {
      check = verifier.check(fields);
    } catch (thrown) {
      return { rows, firstProblems, refusal: { thrown }, last: verifier.position, lastWallTimeUs };
    }
    if (entry === first) firstProblems = check.problems;
    if (check.missingBefore || check.problems.length > 0 || entry.chainLogId !== chainLog) {
      return { rows, firstProblems, refusal: { entry, check }, last: verifier.position, lastWallTimeUs };
    }
    rows.push({
      seq: entry.seq, uuid: entry.uuid, kind: entry.kind, source_id: entry.sourceId, sim_time: entry.simTime ?? null,
      wall_time_us: entry.wallTimeUs, req_id: entry.requestId === "" ? null : entry.requestId, metadata: entry.metadata,
      // Any JSON text of the payload stores the same jsonb; the verifier canonicalised it already (a
      // payload that cannot be is refused above), so the cheaper native serialisation is used here.
      payloadJson: json === null ? "null" : JSON.stringify(json), content_type: fields.contentType, binary_payload: bytes,
      payload_digest: entry.payloadDigest, prev_checksum: entry.prevChecksum, checksum: entry.checksum,
    });
    if (entry.wallTimeUs > lastWallTimeUs) lastWallTimeUs = entry.wallTimeUs;
  }
  return { rows, firstProblems, refusal: undefined, last: verifier.position, lastWallTimeUs };
}

/** DATA_LOSS for an entry that does not verify; `problem` is a fixed token (a VerifyFindingKind name, or CHAIN_LOG_ID) that callers can act on. */
function chainMismatch(logId: string, entry: logV1.Entry, check: Pick<EntryCheck, "problems" | "missingBefore">) {
  const chainLog = entry.chainLogId;
  const problem = check.missingBefore ? "MISSING" : (check.problems.map((found) => FINDING_OF[found])[0] ?? "CHAIN_LOG_ID");
  const what = check.missingBefore ? `seqs ${check.missingBefore.from}..${check.missingBefore.to} are missing` : check.problems.join(", ") || "chain log id differs";
  return rpcError(Code.DataLoss, `replicated entry ${entry.seq} of "${chainLog}" does not verify: ${what}`, {
    reason: "CHAIN_MISMATCH",
    metadata: { log: logId, seq: String(entry.seq), problem },
  });
}

/**
 * Stores entries replicated from a peer into a mirror under its head lock,
 * after checking that each recomputes and extends the mirror's chain. The
 * mirror keeps the origin's seqs, so its head is the replication cursor.
 */
export async function appendReplicated(
  db: Database,
  batch: ReplicatedBatch,
  onCommitted: (logId: string) => void,
): Promise<HeadRow> {
  // The checks that need no head run before the transaction: a puller sends its next batch while the
  // one before it is being stored, so they run while that one is, and the batch then waits for its
  // commit at the head lock. (A batch that overtakes the one before it is refused as
  // MIRROR_NOT_CONTIGUOUS under the lock; the puller sends it again.)
  const checked = batch.entries.length > 0 ? checkBatch(batch.entries) : undefined;
  return storeReplicated(db, batch, checked, onCommitted);
}

async function storeReplicated(db: Database, batch: ReplicatedBatch, checked: CheckedBatch | undefined, onCommitted: (logId: string) => void): Promise<HeadRow> {
  const { logId, originNode, entries } = batch;
  // Checkpoints alone (no entries) go to a mirror that exists already.
  const chainLogId = entries[0]?.chainLogId;
  const head = await db.transaction(async (tx) => {
    const locked = await lockHead(tx, logId, chainLogId === undefined ? undefined : { origin: "mirror", originNode, chainLogId });
    if (!locked) throw rpcError(Code.NotFound, `mirror "${logId}" does not exist yet; send entries first`, { reason: "LOG_NOT_FOUND", metadata: { log: logId } });
    let head = locked;
    if (head.origin !== "mirror") {
      throw rpcError(Code.FailedPrecondition, `log "${logId}" is a local log, not a mirror`, { reason: "LOG_NOT_MIRROR", metadata: { log: logId } });
    }
    if (head.origin_node !== originNode || (chainLogId !== undefined && (head.chain_log_id ?? logId) !== chainLogId)) {
      throw rpcError(
        Code.FailedPrecondition,
        `log "${logId}" mirrors ${head.chain_log_id} of ${head.origin_node}, not ${chainLogId} of ${originNode}`,
        { reason: "MIRROR_ORIGIN_MISMATCH", metadata: { log: logId } },
      );
    }
    if (batch.anchor && head.last_seq === 0n && head.entry_count === 0n && batch.anchor.seq > 0n) {
      // The origin's tree at the anchor, when it sent one that fits: the mirror grows the same tree from there.
      const edge = anchorEdge(batch.anchor);
      await anchorMirror(tx, logId, { ...batch.anchor, treeEdge: edge });
      head = {
        ...head,
        last_seq: batch.anchor.seq,
        last_checksum: batch.anchor.checksum,
        checkpoint_seq: batch.anchor.seq,
        checkpoint_checksum: batch.anchor.checksum,
        tree_edge: edge,
      };
    }
    if (entries.length === 0 || !checked) {
      await keepOriginCheckpoints(tx, head, batch.checkpoints ?? []);
      return head;
    }
    if (entries[0]!.seq !== head.last_seq + 1n) {
      throw rpcError(
        Code.FailedPrecondition,
        `mirror "${logId}" is at seq ${head.last_seq}; the batch starts at seq ${entries[0]!.seq}`,
        { reason: "MIRROR_NOT_CONTIGUOUS", metadata: { log: logId, last_seq: String(head.last_seq) } },
      );
    }
    // The first entry's link to the head, the one check checkBatch left: the first refusal in seq order is the one reported.
    if (entries[0]!.prevChecksum !== head.last_checksum) {
      throw chainMismatch(logId, entries[0]!, { problems: [...checked.firstProblems, "link"], missingBefore: null });
    }
    if (checked.refusal) {
      if ("thrown" in checked.refusal) throw checked.refusal.thrown;
      throw chainMismatch(logId, checked.refusal.entry, checked.refusal.check);
    }
    const { rows } = checked;
    const lastWallTimeUs = checked.lastWallTimeUs > head.last_wall_time_us ? checked.lastWallTimeUs : head.last_wall_time_us;
    const last = checked.last;
    await insertEntries(tx, logId, rows, { lastSeq: last.seq, lastChecksum: last.checksum, lastWallTimeUs }, growTree(head, rows.map((row) => row.checksum)));
    // A redaction entry erases its target's payload here too, as it did at the origin (the chain keeps the digest).
    for (const row of rows) {
      if (row.kind !== REDACTION_KIND || row.payloadJson === "null") continue;
      const { redacted_seq: target, reason } = JSON.parse(row.payloadJson) as { redacted_seq?: unknown; reason?: unknown };
      if (typeof target !== "string" || !/^[0-9]{1,19}$/.test(target)) continue;
      const stored = await entryBySeq(tx, logId, BigInt(target));
      // Compacted away before the mirror started, or marked already: nothing to erase.
      if (stored && stored.redacted_by_seq === null) await markRedacted(tx, logId, stored.seq, row.seq, typeof reason === "string" ? reason : "");
    }
    const grown = (await lockHead(tx, logId))!;
    await keepOriginCheckpoints(tx, grown, batch.checkpoints ?? []);
    return grown;
  });
  onCommitted(logId);
  return head;
}
