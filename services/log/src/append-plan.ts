import { canonicalJson, entryChecksum } from "@annals/chain";
import { Code, type ConnectError } from "@connectrpc/connect";
import { rpcError } from "@annals/runtime";
import { conditionRefusal, type PreparedCondition } from "./append-condition.js";
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
  /** Sequence the entries only if this holds; absent or null: unconditionally. */
  condition?: PreparedCondition | null;
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
 * ALREADY_EXISTS, and so is a uuid that is already taken. A request with a
 * condition is checked against the head as the requests before it leave it
 * (so a group resolves as if its requests had come one by one);
 * `storedConflicts[i]` is the first stored entry that matches request i's
 * query, looked up under the head lock (null: none, or no query). A request
 * that only replays stored req_ids answers `duplicate` whatever its
 * condition says. Wall time never goes below the head's, so it follows seq
 * order even across replicas.
 */
export function planAppends(
  logId: string,
  head: HeadRow,
  requests: readonly AppendRequest[],
  existing: readonly EntryRow[],
  clockUs: bigint = nowUs(),
  storedConflicts: readonly (bigint | null)[] = [],
): AppendPlan {
  const byReqId = new Map<string, { content: string; uuid: string; result: AppendedEntry }>();
  const uuids = new Map<string, bigint>();
  for (const row of existing) {
    const result = { seq: row.seq, checksum: row.checksum, wallTimeUs: row.wall_time_us, uuid: row.uuid, duplicate: true };
    if (row.req_id !== null) {
      const content = contentKey({
        kind: row.kind,
        contentType: row.content_type,
        payloadDigest: row.payload_digest,
        sourceId: row.source_id,
        simTime: row.sim_time,
        metadata: row.metadata,
      });
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

  for (const [index, request] of requests.entries()) {
    const refusal = findConflict(request, byReqId, uuids);
    if (refusal) {
      outcomes.push(refusal);
      continue;
    }
    const condition = request.condition;
    if (condition && !isReplay(request, byReqId)) {
      const failed = conditionRefusal(logId, condition, { lastSeq, checkpointSeq: head.checkpoint_seq }, storedConflicts[index] ?? null, rows);
      if (failed) {
        outcomes.push(failed);
        continue;
      }
    }
    const results: AppendedEntry[] = [];
    for (const entry of request.entries) {
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
      if (entry.reqId !== null) byReqId.set(entry.reqId, { content: entryContentKey(entry), uuid, result: { ...result, duplicate: true } });
      uuids.set(uuid, seq);
      lastSeq = seq;
      lastChecksum = checksum;
    }
    outcomes.push(results);
  }
  return { outcomes, rows, head: { lastSeq, lastChecksum, lastWallTimeUs: rows.length ? wallTimeUs : head.last_wall_time_us } };
}

/** Whether every entry of the request retries a req_id already sequenced (stored, or earlier in the group): it writes nothing. */
function isReplay(request: AppendRequest, byReqId: ReadonlyMap<string, unknown>): boolean {
  return request.entries.every((entry) => entry.reqId !== null && byReqId.has(entry.reqId));
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
    if (entry.reqId !== null) {
      const content = entryContentKey(entry);
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

/** What a retried req_id must repeat: every field the chain covers that the caller chose, the payload by its digest. */
function contentKey(fields: Pick<PreparedEntry, "kind" | "contentType" | "payloadDigest" | "sourceId" | "simTime" | "metadata">): string {
  const { kind, contentType, payloadDigest: digest, sourceId, simTime, metadata } = fields;
  return canonicalJson({ kind, contentType, digest, sourceId, simTime, metadata });
}

/**
 * An entry's content key, computed once: only entries with a req_id need
 * one, and a group that is planned again (a stale head) reuses it.
 */
const contentKeys = new WeakMap<PreparedEntry, string>();
function entryContentKey(entry: PreparedEntry): string {
  let key = contentKeys.get(entry);
  if (key === undefined) {
    key = contentKey(entry);
    contentKeys.set(entry, key);
  }
  return key;
}
