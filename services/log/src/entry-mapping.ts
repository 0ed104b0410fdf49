import { create } from "@bufbuild/protobuf";
import type { StoredEntry } from "@annals/chain";
import { logV1 } from "@annals/proto";
import type { AppendedEntry } from "./append-plan.js";
import type { EntryRow, HeadRow } from "./store.js";

export function entryMessage(logId: string, row: EntryRow): logV1.Entry {
  return create(logV1.EntrySchema, {
    logId,
    seq: row.seq,
    uuid: row.uuid,
    kind: row.kind,
    payload: row.payload ?? undefined,
    sourceId: row.source_id,
    simTime: row.sim_time ?? undefined,
    wallTimeUs: row.wall_time_us,
    metadata: row.metadata,
    reqId: row.req_id ?? "",
    payloadDigest: row.payload_digest,
    prevChecksum: row.prev_checksum,
    checksum: row.checksum,
    redaction:
      row.redacted_by_seq === null ? undefined : { redactionSeq: row.redacted_by_seq, reason: row.redaction_reason ?? "" },
  });
}

export function headMessage(head: HeadRow): logV1.LogHead {
  const firstSeq = head.entry_count === 0n ? head.last_seq + 1n : head.checkpoint_seq + 1n;
  return create(logV1.LogHeadSchema, {
    logId: head.log_id,
    lastSeq: head.last_seq,
    lastChecksum: head.last_checksum,
    entryCount: head.entry_count,
    firstSeq,
    checkpointSeq: head.checkpoint_seq,
    checkpointChecksum: head.checkpoint_checksum,
    origin: head.origin === "mirror" ? logV1.LogOrigin.MIRROR : logV1.LogOrigin.LOCAL,
    originNode: head.origin_node ?? "",
    createdAtUs: BigInt(head.created_at.getTime()) * 1000n,
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
    payloadDigest: row.payload_digest,
    prevChecksum: row.prev_checksum,
    checksum: row.checksum,
    payload: row.payload,
  };
}
