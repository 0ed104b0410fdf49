import { exportEndLine, exportEntryLine, exportHeaderLine, rightEdgeFromTiles, type RightEdge } from "@annals/chain";
import { tileReader, treeEdge } from "./merkle-tree.js";
import type { Queryable } from "@annals/db";
import { Code, type ConnectError } from "@connectrpc/connect";
import { rpcError } from "@annals/runtime";
import { storedEntry } from "./entry-mapping.js";
import { chainAnchor } from "./verify.js";
import { entriesInRange, type HeadRow } from "./store.js";

/** Bytes per ExportResponse chunk (whole lines; a longer line goes alone). */
const CHUNK_BYTES = 256 * 1024;

/**
 * The JSON Lines export of [fromSeq, toSeq] (docs/hash-chain.md, "Export
 * format"), as chunks of whole lines. One page of rows is held at a time.
 */
export async function* exportLines(
  db: Queryable,
  head: HeadRow,
  fromSeq: bigint,
  toSeq: bigint,
  checkpointAt: (size: bigint) => Promise<string | null>,
): AsyncGenerator<Uint8Array> {
  const anchor = await chainAnchor(db, head, fromSeq);
  const chainLogId = head.chain_log_id ?? head.log_id;
  // The tree before the first exported entry: with the file's checksums it gives the end line's checkpoint root.
  const treeEdge = treeEdgeAt(head, anchor.seq) === null ? null : (await rightEdgeFromTiles(anchor.seq, tileReader(db, head.log_id))).hashes;
  let chunk = exportHeaderLine({ logId: head.log_id, chainLogId, anchorSeq: anchor.seq, anchorChecksum: anchor.checksum, treeEdge });
  let count = 0n;
  let last = anchor;
  for await (const row of entriesInRange(db, head.log_id, anchor.seq + 1n, toSeq)) {
    if (row.seq !== last.seq + 1n) throw entriesMissing(head.log_id, last.seq + 1n, row.seq - 1n);
    const redaction = row.redacted_by_seq === null ? null : { redactionSeq: row.redacted_by_seq, reason: row.redaction_reason ?? "" };
    chunk += exportEntryLine({ ...storedEntry(chainLogId, row), redaction });
    count += 1n;
    last = { seq: row.seq, checksum: row.checksum };
    if (chunk.length >= CHUNK_BYTES) {
      yield Buffer.from(chunk, "utf8");
      chunk = "";
    }
  }
  // Rows deleted at the end leave a chain that verifies on its own: the head says how far it must go.
  if (last.seq < toSeq) throw entriesMissing(head.log_id, last.seq + 1n, toSeq);
  const checkpoint = treeEdge === null || last.seq === 0n ? null : await checkpointAt(last.seq);
  yield Buffer.from(chunk + exportEndLine(count, last, checkpoint), "utf8");
}

/** The tree's edge if the log has a tree covering `size` leaves (a mirror anchored without its origin's tree has none). */
function treeEdgeAt(head: HeadRow, size: bigint): RightEdge | null {
  const edge = treeEdge(head);
  return edge !== null && edge.size >= size ? edge : null;
}

/** DATA_LOSS: stored entries are missing from a range the head says exists (Verify lists them too). */
function entriesMissing(logId: string, from: bigint, to: bigint): ConnectError {
  const which = from === to ? `entry ${from} is` : `entries ${from}..${to} are`;
  return rpcError(Code.DataLoss, `log "${logId}": ${which} missing from the database; the export stops here (run Verify)`, {
    reason: "ENTRIES_MISSING",
    metadata: { log: logId, first_missing_seq: String(from), last_missing_seq: String(to) },
  });
}
