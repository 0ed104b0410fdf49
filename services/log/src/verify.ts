import { ChainVerifier } from "@annals/chain";
import type { Queryable } from "@annals/db";
import type { logV1 } from "@annals/proto";
import { seqCompacted } from "./log-errors.js";
import { storedEntry } from "./entry-mapping.js";
import { checksumAt, entriesInRange, type HeadRow } from "./store.js";

/** Most corrupted or missing seqs listed in a report. */
const MAX_LISTED = 1000;

/** The fields of VerifyResponse. */
export type VerifyReport = Omit<logV1.VerifyResponse, "$typeName" | "$unknown">;

/**
 * Where a check of [fromSeq, …] starts: the compaction checkpoint when
 * fromSeq is the first stored seq (or 0), else the stored entry before it.
 * OUT_OF_RANGE for a seq removed by compaction.
 */
export async function chainAnchor(db: Queryable, head: HeadRow, fromSeq: bigint): Promise<{ seq: bigint; checksum: string }> {
  const first = head.checkpoint_seq + 1n;
  if (fromSeq !== 0n && fromSeq < first) {
    throw seqCompacted(head.log_id, fromSeq, first);
  }
  if (fromSeq <= first) return { seq: head.checkpoint_seq, checksum: head.checkpoint_checksum };
  const checksum = await checksumAt(db, head.log_id, fromSeq - 1n);
  // The entry before the range is missing too: anchor on nothing and let the walk report the gap.
  return { seq: fromSeq - 1n, checksum: checksum ?? "" };
}

/**
 * Recomputes the chain over [fromSeq, toSeq] page by page (constant memory):
 * payload digests, checksums, links and gaps, then whether the head's
 * last_checksum agrees with the last entry when the range reaches the head.
 */
export async function verifyRange(db: Queryable, head: HeadRow, fromSeq: bigint, toSeq: bigint): Promise<VerifyReport> {
  const anchor = await chainAnchor(db, head, fromSeq);
  const verifier = new ChainVerifier(anchor);
  const chainLogId = head.chain_log_id ?? head.log_id;
  const corruptedSeqs: bigint[] = [];
  const missingSeqs: bigint[] = [];
  const noteMissing = (from: bigint, to: bigint) => {
    for (let seq = from; seq <= to && missingSeqs.length < MAX_LISTED; seq++) missingSeqs.push(seq);
  };
  let checked = 0n;
  let missingCount = 0n;
  let corruptedCount = 0n;
  for await (const row of entriesInRange(db, head.log_id, anchor.seq + 1n, toSeq)) {
    const result = verifier.check(storedEntry(chainLogId, row));
    checked += 1n;
    if (result.missingBefore) {
      missingCount += result.missingBefore.to - result.missingBefore.from + 1n;
      noteMissing(result.missingBefore.from, result.missingBefore.to);
    }
    // The link of the entry right after an unanchored start cannot be judged.
    const problems = anchor.checksum === "" && row.seq === anchor.seq + 1n ? result.problems.filter((p) => p !== "link") : result.problems;
    if (problems.length > 0) {
      corruptedCount += 1n;
      if (corruptedSeqs.length < MAX_LISTED) corruptedSeqs.push(row.seq);
    }
  }
  const position = verifier.position;
  if (position.seq < toSeq) {
    missingCount += toSeq - position.seq;
    noteMissing(position.seq + 1n, toSeq);
  }
  const headMatches = toSeq !== head.last_seq || (position.seq === head.last_seq && position.checksum === head.last_checksum);
  return {
    valid: corruptedCount === 0n && missingCount === 0n && headMatches,
    checkedCount: checked,
    corruptedSeqs,
    missingSeqs,
    anchorSeq: anchor.seq,
    lastSeq: position.seq,
    headMatches,
  };
}
