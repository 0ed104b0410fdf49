import { exportEndLine, exportEntryLine, exportHeaderLine } from "@annals/chain";
import type { Queryable } from "@annals/db";
import { storedEntry } from "./entry-mapping.js";
import { chainAnchor } from "./verify.js";
import { entriesInRange, type HeadRow } from "./store.js";

/** Bytes per ExportResponse chunk (whole lines; a longer line goes alone). */
const CHUNK_BYTES = 256 * 1024;

/**
 * The JSON Lines export of [fromSeq, toSeq] (docs/hash-chain.md, "Export
 * format"), as chunks of whole lines. One page of rows is held at a time.
 */
export async function* exportLines(db: Queryable, head: HeadRow, fromSeq: bigint, toSeq: bigint): AsyncGenerator<Uint8Array> {
  const anchor = await chainAnchor(db, head, fromSeq);
  const chainLogId = head.chain_log_id ?? head.log_id;
  let chunk = exportHeaderLine({ logId: head.log_id, chainLogId, anchorSeq: anchor.seq, anchorChecksum: anchor.checksum });
  let count = 0n;
  let last = anchor;
  for await (const row of entriesInRange(db, head.log_id, anchor.seq + 1n, toSeq)) {
    const redaction = row.redacted_by_seq === null ? null : { redactionSeq: row.redacted_by_seq, reason: row.redaction_reason ?? "" };
    chunk += exportEntryLine({ ...storedEntry(chainLogId, row), redaction });
    count += 1n;
    last = { seq: row.seq, checksum: row.checksum };
    if (chunk.length >= CHUNK_BYTES) {
      yield Buffer.from(chunk, "utf8");
      chunk = "";
    }
  }
  yield Buffer.from(chunk + exportEndLine(count, last), "utf8");
}
