// The log service's paged reads: where a page starts, what its token holds,
// when a listing ends. Handlers validate and call these; the SQL is in store.ts.
import type { Queryable } from "@annals/db";
import { logV1 } from "@annals/proto";
import { grantsLog } from "@annals/logs";
import { decodePageToken, encodePageToken, invalidArgument, pagePositionInteger, type Principal } from "@annals/runtime";
import { entryMessage, headMessage } from "./entry-mapping.js";
import { seqCompacted, seqPastHead } from "./log-errors.js";
import * as store from "./store.js";

const DEFAULT_PAGE_SIZE = 100;
const MAX_PAGE_SIZE = 1000;

/** A page_size: 1–1000, 0 meaning 100. */
export function pageSize(requested: number): number {
  if (requested === 0) return DEFAULT_PAGE_SIZE;
  if (requested < 0 || requested > MAX_PAGE_SIZE) {
    throw invalidArgument("page_size", `is ${requested}; it must be from 1 to ${MAX_PAGE_SIZE} (0 means ${DEFAULT_PAGE_SIZE})`);
  }
  return requested;
}

/** Heads by name after a page token; the caller sees only the logs its token grants. */
export async function listLogsPage(db: Queryable, principal: Principal, request: logV1.ListLogsRequest) {
  const size = pageSize(request.pageSize);
  const scope = [request.prefix];
  const after = request.pageToken ? decodePageToken("page_token", "logs", scope, request.pageToken)[0]! : "";
  const heads = await store.listHeads(db, request.prefix, after, size);
  return {
    logs: heads.filter((head) => grantsLog(principal, head.log_id)).map(headMessage),
    nextPageToken: heads.length === size ? encodePageToken("logs", scope, [heads.at(-1)!.log_id]) : "",
  };
}

/**
 * A page of Read. Backward, the listing ends (empty token) with the first
 * stored entry. Forward there is no end: the token after the last entry read
 * (or, for an empty page, the seq asked for) lets a later Read pick up what
 * was appended since.
 */
export async function readPage(db: Queryable, head: store.HeadRow, request: logV1.ReadRequest) {
  const logId = head.log_id;
  const size = pageSize(request.pageSize);
  if (request.fromSeq < 0n) throw invalidArgument("from_seq", "must not be negative");
  const backward = request.direction === logV1.ReadDirection.BACKWARD;
  const listing = backward ? "read-backward" : "read-forward";
  const token = request.pageToken ? pagePositionInteger("page_token", decodePageToken("page_token", listing, [logId], request.pageToken)[0]!) : null;
  const first = head.checkpoint_seq + 1n;
  let from = token ?? request.fromSeq;
  if (from === 0n) from = backward ? head.last_seq : first;
  if (backward && head.entry_count === 0n) return { entries: [], nextPageToken: "", head: headMessage(head) };
  if (from < first) throw seqCompacted(logId, from, first);
  if (from > head.last_seq + 1n || (backward && from > head.last_seq)) throw seqPastHead(logId, "from_seq", from, head.last_seq);
  const read = backward ? await store.readBackward(db, logId, from, size) : await store.readForward(db, logId, from, size);
  const rows = withinPageBytes(read);
  const last = rows.at(-1);
  let nextPageToken = "";
  if (!backward) nextPageToken = encodePageToken(listing, [logId], [String(last ? last.seq + 1n : from)]);
  else if (last && last.seq > first) nextPageToken = encodePageToken(listing, [logId], [String(last.seq - 1n)]);
  return { entries: rows.map((row) => entryMessage(head, row)), nextPageToken, head: headMessage(head) };
}

export async function listBySourcePage(db: Queryable, head: store.HeadRow, request: logV1.ListBySourceRequest) {
  const size = pageSize(request.pageSize);
  const scope = [head.log_id, request.sourceId];
  const after = request.pageToken ? pagePositionInteger("page_token", decodePageToken("page_token", "source", scope, request.pageToken)[0]!) : 0n;
  const rows = await store.listBySource(db, head.log_id, request.sourceId, after, size);
  return {
    entries: rows.map((row) => entryMessage(head, row)),
    nextPageToken: rows.length === size ? encodePageToken("source", scope, [String(rows.at(-1)!.seq)]) : "",
  };
}

export async function listByTimeRangePage(db: Queryable, head: store.HeadRow, request: logV1.ListByTimeRangeRequest) {
  const logId = head.log_id;
  const size = pageSize(request.pageSize);
  const range = request.range;
  if (range.case === undefined) throw invalidArgument("range", "set sim_time or wall_time");
  let rows: store.EntryRow[];
  let nextPageToken = "";
  if (range.case === "simTime") {
    const { start, end } = range.value;
    if (!Number.isFinite(start) || !Number.isFinite(end)) throw invalidArgument("sim_time", "bounds must be finite numbers");
    if (start > end) throw invalidArgument("sim_time", `start (${start}) is after end (${end})`);
    const scope = [logId, start, end];
    const position = request.pageToken ? decodePageToken("page_token", "sim-time", scope, request.pageToken, 2) : null;
    const after = position ? { time: pageTime(position[0]!), seq: pagePositionInteger("page_token", position[1]!) } : null;
    rows = await store.listBySimTime(db, logId, { from: start, to: end }, after, size);
    const last = rows.at(-1);
    if (last && rows.length === size) nextPageToken = encodePageToken("sim-time", scope, [last.sim_time!, String(last.seq)]);
  } else {
    const { startUs, endUs } = range.value;
    if (startUs > endUs) throw invalidArgument("wall_time", `start_us (${startUs}) is after end_us (${endUs})`);
    const scope = [logId, startUs, endUs];
    const position = request.pageToken ? decodePageToken("page_token", "wall-time", scope, request.pageToken, 2) : null;
    const after = position
      ? { time: pagePositionInteger("page_token", position[0]!, { signed: true }), seq: pagePositionInteger("page_token", position[1]!) }
      : null;
    rows = await store.listByWallTime(db, logId, { fromUs: startUs, toUs: endUs }, after, size);
    const last = rows.at(-1);
    if (last && rows.length === size) nextPageToken = encodePageToken("wall-time", scope, [String(last.wall_time_us), String(last.seq)]);
  }
  return { entries: rows.map((row) => entryMessage(head, row)), nextPageToken };
}

/**
 * The most payload bytes one page carries: entries may hold up to 256 KiB
 * each, so a page of 1000 could pass the 4 MiB message limit. A page is cut
 * after the entry that reaches this (one entry always fits), and its token
 * continues from there.
 */
const MAX_PAGE_PAYLOAD_BYTES = 1024 * 1024;

/** The first rows of a page whose payloads fit MAX_PAGE_PAYLOAD_BYTES (at least one). */
export function withinPageBytes<T extends store.EntryRow>(rows: T[]): T[] {
  let bytes = 0;
  for (let count = 0; count < rows.length; count++) {
    bytes += payloadBytes(rows[count]!);
    if (bytes > MAX_PAGE_PAYLOAD_BYTES && count > 0) return rows.slice(0, count);
  }
  return rows;
}

/** About how many bytes a row's payload takes on the wire. */
export function payloadBytes(row: store.EntryRow): number {
  if (row.binary_payload !== null) return row.binary_payload.byteLength;
  return row.payload === null ? 0 : JSON.stringify(row.payload).length;
}

/** A sim_time position of a page token: a finite number. */
function pageTime(value: string): number {
  const time = Number(value);
  if (value === "" || !Number.isFinite(time)) {
    throw invalidArgument("page_token", "is not a page token of this listing (pass next_page_token unchanged, with the same request)");
  }
  return time;
}
