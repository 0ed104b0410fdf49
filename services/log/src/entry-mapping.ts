import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { StoredEntry } from "@annals/chain";
import { logV1 } from "@annals/proto";
import type { AppendedEntry } from "./append-plan.js";
import type { EntryRow, HeadRow } from "./store.js";

/** The log an entry is read from and the log id its checksum covers (the origin's, for a mirror). */
export interface EntryLog {
  log_id: string;
  chain_log_id: string | null;
}

export function entryMessage(log: EntryLog, row: EntryRow): logV1.Entry {
  return create(logV1.EntrySchema, {
    logId: log.log_id,
    seq: row.seq,
    uuid: row.uuid,
    kind: row.kind,
    body:
      row.payload !== null
        ? { case: "payload", value: row.payload }
        : row.binary_payload !== null
          ? { case: "binaryPayload", value: row.binary_payload }
          : { case: undefined },
    contentType: row.content_type ?? "",
    sourceId: row.source_id,
    simTime: row.sim_time ?? undefined,
    wallTimeUs: row.wall_time_us,
    metadata: row.metadata,
    requestId: row.req_id ?? "",
    payloadDigest: row.payload_digest,
    prevChecksum: row.prev_checksum,
    checksum: row.checksum,
    redaction:
      row.redacted_by_seq === null ? undefined : { redactionSeq: row.redacted_by_seq, reason: row.redaction_reason ?? "" },
    chainLogId: log.chain_log_id ?? log.log_id,
  });
}

/** The hash and the chain rules every log uses (docs/hash-chain.md). */
const HASH_ALGORITHM = "sha256";
const CHAIN_VERSION = 1;

export function headMessage(head: HeadRow): logV1.LogHead {
  const firstSeq = head.entry_count === 0n ? head.last_seq + 1n : head.checkpoint_seq + 1n;
  return create(logV1.LogHeadSchema, {
    logId: head.log_id,
    lastSeq: head.last_seq,
    lastChecksum: head.last_checksum,
    entryCount: head.entry_count,
    firstSeq,
    anchor: { seq: head.checkpoint_seq, checksum: head.checkpoint_checksum },
    origin: head.origin === "mirror" ? logV1.LogOrigin.MIRROR : logV1.LogOrigin.LOCAL,
    originNode: head.origin_node ?? "",
    createTime: timestampFromMs(head.created_at.getTime()),
    chainLogId: head.chain_log_id ?? head.log_id,
    hashAlgorithm: HASH_ALGORITHM,
    chainVersion: CHAIN_VERSION,
  });
}

export function appendResult(result: AppendedEntry): logV1.AppendResult {
  return create(logV1.AppendResultSchema, result);
}

/** A stored row as the chain verifier reads it. */
export function storedEntry(chainLogId: string, row: EntryRow): StoredEntry {
  return {
    logId: chainLogId,
    seq: row.seq,
    uuid: row.uuid,
    kind: row.kind,
    sourceId: row.source_id,
    simTime: row.sim_time,
    wallTimeUs: row.wall_time_us,
    reqId: row.req_id ?? "",
    metadata: row.metadata,
    contentType: row.content_type,
    payloadDigest: row.payload_digest,
    prevChecksum: row.prev_checksum,
    checksum: row.checksum,
    payload: row.payload ?? row.binary_payload,
  };
}
