import {
  ChainVerifier,
  HASH_SIZE,
  TILE_WIDTH,
  binaryPayloadDigest,
  bytesEqual,
  canonicalJson,
  decodeRightEdge,
  entryChecksum,
  leafHash,
  rightEdgeRoot,
  sha256Hex,
  treeRoot,
} from "@annals/chain";
import { tileReader } from "./merkle-tree.js";
import type { Queryable } from "@annals/db";
import { logV1 } from "@annals/proto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { seqCompacted } from "./log-errors.js";
import { storedEntry } from "./entry-mapping.js";
import { checksumAt, entriesInRange, getCheckpoint, type HeadRow } from "./store.js";

/** Most findings listed in a report; VerifyResponse.findings_truncated says when there were more. */
const MAX_FINDINGS = 1000;

type Finding = MessageInitShape<typeof logV1.VerifyFindingSchema>;

/** The fields of VerifyResponse. */
export interface VerifyReport {
  valid: boolean;
  checkedCount: bigint;
  findings: Finding[];
  findingsTruncated: boolean;
  anchorSeq: bigint;
  lastSeq: bigint;
}

/**
 * Where a check of [fromSeq, …] starts: the compaction anchor when fromSeq
 * is the first stored seq (or 0), else the stored entry before it.
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
 * payload digests, checksums, links and gaps, each found with what the rules
 * expect and what is stored, then whether the head's last_checksum agrees
 * with the last entry when the range reaches the head.
 */
export async function verifyRange(db: Queryable, head: HeadRow, fromSeq: bigint, toSeq: bigint): Promise<VerifyReport> {
  const anchor = await chainAnchor(db, head, fromSeq);
  const verifier = new ChainVerifier(anchor);
  const chainLogId = head.chain_log_id ?? head.log_id;
  const findings: Finding[] = [];
  let total = 0;
  const found = (finding: Finding) => {
    total++;
    if (findings.length < MAX_FINDINGS) findings.push(finding);
  };
  let checked = 0n;
  const leaves = leafChecker(db, head);
  for await (const row of entriesInRange(db, head.log_id, anchor.seq + 1n, toSeq)) {
    const entry = storedEntry(chainLogId, row);
    const leafProblem = await leaves.check(row.seq, row.checksum);
    if (leafProblem) found({ seq: row.seq, endSeq: row.seq, kind: logV1.VerifyFindingKind.TREE, ...leafProblem });
    const previous = verifier.position.checksum;
    const result = verifier.check(entry);
    checked += 1n;
    if (result.missingBefore) found({ seq: result.missingBefore.from, endSeq: result.missingBefore.to, kind: logV1.VerifyFindingKind.MISSING });
    for (const problem of result.problems) {
      // The link of the entry right after an unanchored start cannot be judged.
      if (problem === "link" && anchor.checksum === "" && row.seq === anchor.seq + 1n) continue;
      const [kind, expected, actual] =
        problem === "payload_digest"
          ? [logV1.VerifyFindingKind.DIGEST, recomputedDigest(entry.payload), entry.payloadDigest]
          : problem === "checksum"
            ? [logV1.VerifyFindingKind.CHECKSUM, entryChecksum(entry), entry.checksum]
            : [logV1.VerifyFindingKind.LINK, previous, entry.prevChecksum];
      found({ seq: row.seq, endSeq: row.seq, kind, expected, actual });
    }
  }
  const position = verifier.position;
  if (position.seq < toSeq) found({ seq: position.seq + 1n, endSeq: toSeq, kind: logV1.VerifyFindingKind.MISSING });
  if (toSeq === head.last_seq && position.seq === head.last_seq && position.checksum !== head.last_checksum) {
    found({ seq: head.last_seq, endSeq: head.last_seq, kind: logV1.VerifyFindingKind.HEAD, expected: position.checksum, actual: head.last_checksum });
  }
  if (toSeq === head.last_seq) for (const finding of await treeFindings(db, head)) found(finding);
  return {
    valid: total === 0,
    checkedCount: checked,
    findings,
    findingsTruncated: total > findings.length,
    anchorSeq: anchor.seq,
    lastSeq: position.seq,
  };
}

function recomputedDigest(payload: ReturnType<typeof storedEntry>["payload"]): string {
  if (payload === null) return "";
  if (payload instanceof Uint8Array) return binaryPayloadDigest(payload);
  try {
    return sha256Hex(canonicalJson(payload));
  } catch {
    return "";
  }
}

/**
 * Compares each entry's checksum with the leaf hash the tree stores for it
 * (level-0 tiles, read one at a time as the walk reaches them).
 */
function leafChecker(db: Queryable, head: HeadRow) {
  const size = head.tree_edge === null ? 0n : decodeRightEdge(head.tree_edge).size;
  const reader = tileReader(db, head.log_id);
  let tileIndex = -1n;
  let tile: Uint8Array = new Uint8Array(0);
  return {
    async check(seq: bigint, checksum: string): Promise<{ expected: string; actual: string } | null> {
      if (seq > size || !/^[0-9a-f]{64}$/.test(checksum)) return null;
      const index = (seq - 1n) / BigInt(TILE_WIDTH);
      if (index !== tileIndex) {
        tileIndex = index;
        tile = (await reader([{ level: 0, index, width: TILE_WIDTH }]))[0] ?? new Uint8Array(0);
      }
      const offset = Number((seq - 1n) % BigInt(TILE_WIDTH)) * HASH_SIZE;
      const expected = Buffer.from(leafHash(Buffer.from(checksum, "hex"))).toString("hex");
      const actual = Buffer.from(tile.subarray(offset, offset + HASH_SIZE)).toString("hex");
      return expected === actual ? null : { expected, actual };
    },
  };
}

/**
 * The tree as a whole: its size is the head's, its tiles give the root its
 * edge gives, and the latest signed checkpoint's root is still the tree's
 * root at that size.
 */
async function treeFindings(db: Queryable, head: HeadRow): Promise<Finding[]> {
  if (head.tree_edge === null) return [];
  const edge = decodeRightEdge(head.tree_edge);
  const findings: Finding[] = [];
  const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
  if (edge.size !== head.last_seq) {
    findings.push({ seq: head.last_seq, endSeq: head.last_seq, kind: logV1.VerifyFindingKind.TREE, expected: `${head.last_seq} leaves`, actual: `${edge.size} leaves` });
    return findings;
  }
  const reader = tileReader(db, head.log_id);
  const fromTiles = await treeRoot(edge.size, reader).catch(() => new Uint8Array(0));
  if (!bytesEqual(fromTiles, rightEdgeRoot(edge))) {
    findings.push({ seq: edge.size, endSeq: edge.size, kind: logV1.VerifyFindingKind.TREE, expected: hex(rightEdgeRoot(edge)), actual: hex(fromTiles) });
  }
  const checkpoint = await getCheckpoint(db, head.log_id);
  if (checkpoint && checkpoint.tree_size <= edge.size) {
    const root = await treeRoot(checkpoint.tree_size, reader).catch(() => new Uint8Array(0));
    if (!bytesEqual(root, checkpoint.root_hash)) {
      findings.push({ seq: checkpoint.tree_size, endSeq: checkpoint.tree_size, kind: logV1.VerifyFindingKind.CHECKPOINT, expected: hex(checkpoint.root_hash), actual: hex(root) });
    }
  } else if (checkpoint) {
    findings.push({ seq: checkpoint.tree_size, endSeq: checkpoint.tree_size, kind: logV1.VerifyFindingKind.CHECKPOINT, expected: `${checkpoint.tree_size} leaves`, actual: `${edge.size} leaves` });
  }
  return findings;
}
