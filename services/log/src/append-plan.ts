import { canonicalJson, entryChecksum } from "@annals/chain";
import { Code, type ConnectError } from "@connectrpc/connect";
import { rpcError } from "@annals/runtime";
import type { PreparedEntry } from "./entry-input.js";
import type { EntryRow, HeadRow, NewEntryRow } from "./store.js";
import { uuidV7 } from "./uuid-v7.js";

/** Where an entry landed: a new seq, or the original entry of a retried req_id. */
export interface AppendedEntry {
  seq: bigint;
  checksum: string;
  wallTimeUs: bigint;
  uuid: string;
  duplicate: boolean;
}

/** One caller's entries: all are sequenced, or the caller gets an error and none is. */
export interface AppendRequest {
  entries: readonly PreparedEntry[];
}

export interface AppendPlan {
  /** Per request, in order: its results, or why it was refused. */
  outcomes: (AppendedEntry[] | ConnectError)[];
  /** The rows to insert, in seq order. */
  rows: NewEntryRow[];
  /** The head after the rows (unchanged when there are none). */
  head: { lastSeq: bigint; lastChecksum: string; lastWallTimeUs: bigint };
}

/** Microseconds since the Unix epoch, from the process clock. */
export function nowUs(): bigint {
  return BigInt(Math.floor((performance.timeOrigin + performance.now()) * 1000));
}

/**
 * Sequences the requests of one transaction after `head`. `existing` holds the
 * stored entries that share a req_id or uuid with any of them. A retried
 * req_id with the same content resolves to the original entry (also within
 * the same group); with other content the whole request is refused with
 * ALREADY_EXISTS, and so is a uuid that is already taken. Wall time never
 * goes below the head's, so it follows seq order even across replicas.
 */
export function planAppends(
  logId: string,
  head: HeadRow,
  requests: readonly AppendRequest[],
  existing: readonly EntryRow[],
  clockUs: bigint = nowUs(),
): AppendPlan {
  const byReqId = new Map<string, { content: string; uuid: string; result: AppendedEntry }>();
  const uuids = new Map<string, bigint>();
  for (const row of existing) {
    const result = { seq: row.seq, checksum: row.checksum, wallTimeUs: row.wall_time_us, uuid: row.uuid, duplicate: true };
    if (row.req_id !== null) {
      const content = contentKey(row.kind, row.content_type, row.payload_digest, row.source_id, row.sim_time, row.metadata);
      byReqId.set(row.req_id, { content, uuid: row.uuid, result });
    }
    uuids.set(row.uuid, row.seq);
  }

  let lastSeq = head.last_seq;
  let lastChecksum = head.last_checksum;
  const wallTimeUs = clockUs > head.last_wall_time_us ? clockUs : head.last_wall_time_us;
  const chainLogId = head.chain_log_id ?? logId;
  const rows: NewEntryRow[] = [];
  const outcomes: (AppendedEntry[] | ConnectError)[] = [];

  for (const request of requests) {
    const refusal = findConflict(request, byReqId, uuids);
    if (refusal) {
      outcomes.push(refusal);
      continue;
    }
    const results: AppendedEntry[] = [];
    for (const entry of request.entries) {
      const content = contentKey(entry.kind, entry.contentType, entry.payloadDigest, entry.sourceId, entry.simTime, entry.metadata);
      const original = entry.reqId === null ? undefined : byReqId.get(entry.reqId);
      if (original) {
        results.push(original.result);
        continue;
      }
      const seq = lastSeq + 1n;
      const uuid = entry.uuid ?? uuidV7(Number(wallTimeUs / 1000n));
      const checksum = entryChecksum({
        logId: chainLogId,
        seq,
        uuid,
        kind: entry.kind,
        sourceId: entry.sourceId,
        simTime: entry.simTime,
        wallTimeUs,
        reqId: entry.reqId ?? "",
        metadata: entry.metadata,
        contentType: entry.contentType,
        payloadDigest: entry.payloadDigest,
        prevChecksum: lastChecksum,
      });
      rows.push({
        seq,
        uuid,
        kind: entry.kind,
        source_id: entry.sourceId,
        sim_time: entry.simTime,
        wall_time_us: wallTimeUs,
        req_id: entry.reqId,
        metadata: entry.metadata,
        payloadJson: entry.payloadJson ?? "null",
        content_type: entry.contentType,
        binary_payload: entry.binaryPayload,
        payload_digest: entry.payloadDigest,
        prev_checksum: lastChecksum,
        checksum,
      });
      const result = { seq, checksum, wallTimeUs, uuid, duplicate: false };
      results.push(result);
      if (entry.reqId !== null) byReqId.set(entry.reqId, { content, uuid, result: { ...result, duplicate: true } });
      uuids.set(uuid, seq);
      lastSeq = seq;
      lastChecksum = checksum;
    }
    outcomes.push(results);
  }
  return { outcomes, rows, head: { lastSeq, lastChecksum, lastWallTimeUs: rows.length ? wallTimeUs : head.last_wall_time_us } };
}

/** The first reason to refuse a whole request, checked before any of its entries is sequenced. */
function findConflict(
  request: AppendRequest,
  byReqId: ReadonlyMap<string, { content: string; uuid: string }>,
  uuids: ReadonlyMap<string, bigint>,
): ConnectError | null {
  const ownReqIds = new Map<string, { content: string; uuid: string | null }>();
  const ownUuids = new Set<string>();
  for (const [index, entry] of request.entries.entries()) {
    const content = contentKey(entry.kind, entry.contentType, entry.payloadDigest, entry.sourceId, entry.simTime, entry.metadata);
    if (entry.reqId !== null) {
      const earlier = byReqId.get(entry.reqId) ?? ownReqIds.get(entry.reqId);
      if (earlier) {
        const sameUuid = entry.uuid === null || earlier.uuid === null || entry.uuid === earlier.uuid;
        if (earlier.content !== content || !sameUuid) {
          return rpcError(Code.AlreadyExists, `request_id "${entry.reqId}" was already used for an entry with other content`, {
            reason: "REQUEST_ID_CONFLICT",
            metadata: { request_id: entry.reqId, index: String(index) },
          });
        }
        continue; // a retry: resolves to the original, takes no uuid
      }
      ownReqIds.set(entry.reqId, { content, uuid: entry.uuid });
    }
    if (entry.uuid !== null) {
      const takenAt = uuids.get(entry.uuid);
      if (takenAt !== undefined || ownUuids.has(entry.uuid)) {
        return rpcError(
          Code.AlreadyExists,
          `uuid ${entry.uuid} is already taken${takenAt === undefined ? " by another entry of this request" : ` by seq ${takenAt}`}`,
          { reason: "UUID_TAKEN", metadata: { uuid: entry.uuid, index: String(index) } },
        );
      }
      ownUuids.add(entry.uuid);
    }
  }
  return null;
}

function contentKey(
  kind: string,
  contentType: string | null,
  digest: string,
  sourceId: string,
  simTime: number | null,
  metadata: Record<string, string>,
): string {
  return canonicalJson({ kind, contentType, digest, sourceId, simTime, metadata });
}
