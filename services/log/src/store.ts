// All SQL of the log service. Handlers and the append path call these
// functions; they take a Queryable so the caller decides the transaction.
import { emptyRightEdge, encodeRightEdge, type JsonValue, type TileId } from "@annals/chain";
import type { Queryable } from "@annals/db";
import type { ConditionQuerySql } from "./append-condition.js";

/** The channel every commit that adds entries notifies, with payload "<log_id> <last_seq>". */
export const APPENDED_CHANNEL = "annals_log_appended";

export type LogOriginName = "local" | "mirror";

export interface HeadRow {
  log_id: string;
  origin: LogOriginName;
  origin_node: string | null;
  chain_log_id: string | null;
  created_at: Date;
  last_seq: bigint;
  last_checksum: string;
  entry_count: bigint;
  checkpoint_seq: bigint;
  checkpoint_checksum: string;
  last_wall_time_us: bigint;
  redacted_count: bigint;
  /** The Merkle tree's right edge (encodeRightEdge); null when the log has no tree. */
  tree_edge: Uint8Array | null;
}

export interface EntryRow {
  seq: bigint;
  uuid: string;
  kind: string;
  source_id: string;
  sim_time: number | null;
  wall_time_us: bigint;
  req_id: string | null;
  metadata: Record<string, string>;
  /** A JSON payload; null when the payload is binary or was redacted. */
  payload: { [key: string]: JsonValue } | null;
  /** A binary payload's media type; null for a JSON payload (kept after redaction: the checksum covers it). */
  content_type: string | null;
  /** A binary payload; null when the payload is JSON or was redacted. */
  binary_payload: Uint8Array | null;
  payload_digest: string;
  prev_checksum: string;
  checksum: string;
  redacted_by_seq: bigint | null;
  redaction_reason: string | null;
}

/**
 * A stored row as the wire encoder reads it (entry-encoding.ts): the JSON
 * columns as PostgreSQL prints them, which it transcodes without parsing.
 */
export interface EntryWireRow extends Omit<EntryRow, "payload" | "metadata"> {
  /** The JSON payload's text; null when the payload is binary or was redacted. */
  payload: string | null;
  /** The metadata object's text. */
  metadata: string;
}

/** A row to insert; a JSON payload is already canonical JSON text ("null" for a binary or a redacted one). */
export interface NewEntryRow extends Omit<EntryRow, "payload" | "redacted_by_seq" | "redaction_reason"> {
  payloadJson: string;
}

const HEAD_COLUMNS = `log_id, origin, origin_node, chain_log_id, created_at, last_seq, last_checksum, entry_count,
  checkpoint_seq, checkpoint_checksum, last_wall_time_us, redacted_count, tree_edge`;
/** An entry row's columns, with metadata and payload parsed (jsonb) or as their JSON text (for the wire encoder). */
function entryColumns(json: "parsed" | "text"): string {
  const jsonColumn = (name: string) => (json === "text" ? `${name}::text as ${name}` : name);
  return `seq, uuid::text as uuid, kind, source_id, sim_time, wall_time_us, req_id, ${jsonColumn("metadata")}, ${jsonColumn("payload")},
  content_type, binary_payload, payload_digest, prev_checksum, checksum, redacted_by_seq, redaction_reason`;
}
const ENTRY_COLUMNS = entryColumns("parsed");
const ENTRY_WIRE_COLUMNS = entryColumns("text");

/** encodeRightEdge of the empty tree: a new log's tree. */
const EMPTY_TREE_EDGE = Buffer.from(encodeRightEdge(emptyRightEdge()));

export async function getHead(db: Queryable, logId: string): Promise<HeadRow | null> {
  const { rows } = await db.query<HeadRow>(`select ${HEAD_COLUMNS} from log.logs where log_id = $1`, [logId]);
  return rows[0] ?? null;
}

/** Creates a local log unless it exists; `created` says which. */
export async function createLog(db: Queryable, logId: string): Promise<{ head: HeadRow; created: boolean }> {
  const inserted = await db.query<HeadRow>(
    `insert into log.logs (log_id, tree_edge) values ($1, $2) on conflict (log_id) do nothing returning ${HEAD_COLUMNS}`,
    [logId, EMPTY_TREE_EDGE],
  );
  if (inserted.rows[0]) return { head: inserted.rows[0], created: true };
  return { head: (await getHead(db, logId))!, created: false };
}

/**
 * Locks a log's head row for the rest of the transaction (creating the log
 * first when `create` is given). Every write to a log takes this lock, which
 * is what makes seq gap-free and commit order equal seq order across
 * replicas (replicas.test.ts "32 concurrent clients append 5,000 entries").
 */
export async function lockHead(
  tx: Queryable,
  logId: string,
  create?: { origin: LogOriginName; originNode: string | null; chainLogId: string | null },
): Promise<HeadRow | null> {
  const select = `select ${HEAD_COLUMNS} from log.logs where log_id = $1 for update`;
  const { rows } = await tx.query<HeadRow>(select, [logId]);
  if (rows[0] || !create) return rows[0] ?? null;
  await tx.query(
    `insert into log.logs (log_id, origin, origin_node, chain_log_id, tree_edge) values ($1, $2, $3, $4, $5) on conflict (log_id) do nothing`,
    [logId, create.origin, create.originNode, create.chainLogId, EMPTY_TREE_EDGE],
  );
  return (await tx.query<HeadRow>(select, [logId])).rows[0] ?? null;
}

export async function listHeads(db: Queryable, prefix: string, afterLogId: string, limit: number): Promise<HeadRow[]> {
  const { rows } = await db.query<HeadRow>(
    `select ${HEAD_COLUMNS} from log.logs
      where log_id > $2 and left(log_id, length($1)) = $1
      order by log_id limit $3`,
    [prefix, afterLogId, limit],
  );
  return rows;
}

/** Entries holding any of these req_ids or uuids (the idempotency and uniqueness checks). */
export async function findByKeys(tx: Queryable, logId: string, reqIds: string[], uuids: string[]): Promise<EntryRow[]> {
  const { rows } = await tx.query<EntryRow>(
    `select ${ENTRY_COLUMNS} from log.entries
      where log_id = $1 and (req_id = any($2::text[]) or uuid = any($3::uuid[]))`,
    [logId, reqIds, uuids],
  );
  return rows;
}

/**
 * Per condition query, the first stored entry after its after_seq that
 * matches it (null: none), under the head lock; `head` is the locked last
 * seq. One statement for a whole group: log.first_condition_conflict
 * (0005_append_conditions.sql) takes each query along an index.
 */
export async function firstConditionConflicts(
  tx: Queryable,
  logId: string,
  head: bigint,
  scanLimit: bigint,
  queries: readonly ConditionQuerySql[],
): Promise<(bigint | null)[]> {
  const json = JSON.stringify(queries.map((query, i) => ({ ...query, i, afterSeq: String(query.afterSeq) })));
  const { rows } = await tx.query<{ i: number; seq: bigint | null }>(
    `select c.i, log.first_condition_conflict($1, c."afterSeq", $2, $3, c.kinds, c."prefixLo", c."prefixHi", c.regexes, c.sources) as seq
       from jsonb_to_recordset($4::jsonb) as c(i int, "afterSeq" bigint, kinds text[], "prefixLo" text[], "prefixHi" text[], regexes text[], sources text[])`,
    [logId, head, scanLimit, json],
  );
  const conflicts: (bigint | null)[] = queries.map(() => null);
  for (const row of rows) conflicts[row.i] = row.seq === null ? null : BigInt(row.seq);
  return conflicts;
}

/** The rows of a group as the one JSON array insertEntries and log.append_group take. */
function rowsJson(rows: readonly NewEntryRow[]): string {
  return "[" + rows.map(rowJson).join(",") + "]";
}

/** A tree's growth as insertEntries and log.append_group take it: the new edge, then the tiles' levels, indexes, from-widths and appended hashes. */
function treeGrowthParams(tree: TreeGrowth | null): [Buffer | null, number[], bigint[], number[], Buffer[]] {
  const tiles = tree?.tiles ?? [];
  return [
    tree ? Buffer.from(tree.edge) : null,
    tiles.map((update) => update.tile.level),
    tiles.map((update) => update.tile.index),
    tiles.map((update) => update.fromWidth),
    tiles.map((update) => Buffer.from(update.appended)),
  ];
}

/**
 * Writes sequenced rows, moves the head and notifies subscribers, in one
 * statement: the rows travel as one JSON array, so a batch of any size is a
 * single round trip with the same SQL.
 */
export async function insertEntries(
  tx: Queryable,
  logId: string,
  rows: readonly NewEntryRow[],
  head: { lastSeq: bigint; lastChecksum: string; lastWallTimeUs: bigint },
  tree: TreeGrowth | null,
): Promise<void> {
  const json = rowsJson(rows);
  const tiles = tree?.tiles ?? [];
  const { rows: outcome } = await tx.query<{ grown: { level: number; idx: string; bytes: number }[] | null }>(
    `with inserted as (
       insert into log.entries (log_id, seq, uuid, kind, source_id, sim_time, wall_time_us, req_id, metadata, payload,
                            content_type, binary_payload, payload_digest, prev_checksum, checksum)
       select $1, r.seq, r.uuid, r.kind, r.source_id, r.sim_time, r.wall_time_us, r.req_id, r.metadata, nullif(r.payload, 'null'),
              r.content_type, decode(r.binary_payload, 'base64'), r.payload_digest, r.prev_checksum, r.checksum
         from jsonb_to_recordset($2::jsonb) as r(seq bigint, uuid uuid, kind text, source_id text, sim_time float8,
              wall_time_us bigint, req_id text, metadata jsonb, payload jsonb, content_type text, binary_payload text,
              payload_digest text, prev_checksum text, checksum text)
     ), moved as (
       update log.logs set last_seq = $3, last_checksum = $4, last_wall_time_us = $5, entry_count = entry_count + $6,
                           tree_edge = coalesce($8, tree_edge)
        where log_id = $1
     ), grown as (
       -- Each tile grows at its end, and only from the width the append planned on.
       insert into log.tiles as t (log_id, level, idx, hashes)
       select $1, g.level, g.idx, g.appended from unnest($9::smallint[], $10::bigint[], $11::int[], $12::bytea[]) as g(level, idx, from_width, appended)
       on conflict (log_id, level, idx) do update set hashes = t.hashes || excluded.hashes
        where length(t.hashes) = (select g.from_width * 32 from unnest($9::smallint[], $10::bigint[], $11::int[]) as g(level, idx, from_width)
                                   where g.level = excluded.level and g.idx = excluded.idx)
       returning level, idx, length(hashes) as bytes
     )
     select (select json_agg(json_build_object('level', level, 'idx', idx::text, 'bytes', bytes)) from grown) as grown,
            pg_notify($7, $1 || ' ' || $3::text)`,
    [
      logId,
      json,
      head.lastSeq,
      head.lastChecksum,
      head.lastWallTimeUs,
      rows.length,
      APPENDED_CHANNEL,
      ...treeGrowthParams(tree),
    ],
  );
  // Every tile must now be exactly as wide as the tree's edge says: a tile that
  // did not grow, or that was created where one should have been, means the
  // stored tiles and the edge disagree.
  const grown = new Map((outcome[0]!.grown ?? []).map((tile) => [`${tile.level}/${tile.idx}`, tile.bytes]));
  for (const update of tiles) {
    if (grown.get(`${update.tile.level}/${update.tile.index}`) !== update.fromWidth * 32 + update.appended.byteLength) throw new TreeTilesMismatch(logId);
  }
}

/** What log.append_group answered: written (or nothing to write), or which assumption of the plan did not hold. */
export type AppendGroupOutcome =
  | { status: "ok" }
  /** The head is not the one the plan started from (or the log is a mirror): this is the current one. */
  | { status: "stale"; head: HeadRow }
  /** A stored entry holds one of the group's req_ids or uuids. */
  | { status: "keys" }
  /** A stored entry matches one of the condition queries. */
  | { status: "conflicts" }
  /** The log does not exist. */
  | { status: "absent" };

/** SQLSTATE raised by log.append_group when the stored tiles disagree with the tree edge. */
const TILES_MISMATCH_STATE = "LT001";

/**
 * A group planned against a head known in advance, written in one statement
 * that is its own transaction (log.append_group, 0007_append_group.sql): under
 * the head lock it checks that the head is still `expected`, that no stored
 * entry holds any of `keys` and that no stored entry matches any of
 * `conditions`, and only then inserts the rows, moves the head, grows the
 * tiles and notifies. Committed (fsynced) when it resolves with "ok".
 */
export async function appendGroup(
  db: Queryable,
  logId: string,
  expected: HeadRow,
  keys: { reqIds: readonly string[]; uuids: readonly string[] },
  conditions: readonly ConditionQuerySql[],
  scanLimit: bigint,
  rows: readonly NewEntryRow[],
  head: { lastSeq: bigint; lastChecksum: string; lastWallTimeUs: bigint },
  tree: TreeGrowth | null,
): Promise<AppendGroupOutcome> {
  let result: { rows: (HeadRow & { status: AppendGroupOutcome["status"] })[] };
  try {
    result = await db.query<HeadRow & { status: AppendGroupOutcome["status"] }>(
      `select * from log.append_group($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11::jsonb, $12, $13, $14, $15, $16, $17, $18, $19, $20)`,
      [
        logId,
        expected.last_seq,
        expected.last_checksum,
        expected.last_wall_time_us,
        expected.checkpoint_seq,
        expected.tree_edge === null ? null : Buffer.from(expected.tree_edge),
        keys.reqIds,
        keys.uuids,
        JSON.stringify(conditions.map((query) => ({ ...query, afterSeq: String(query.afterSeq) }))),
        scanLimit,
        rowsJson(rows),
        head.lastSeq,
        head.lastChecksum,
        head.lastWallTimeUs,
        APPENDED_CHANNEL,
        ...treeGrowthParams(tree),
      ],
    );
  } catch (error) {
    if ((error as { code?: unknown }).code === TILES_MISMATCH_STATE) throw new TreeTilesMismatch(logId);
    throw error;
  }
  const { status, ...row } = result.rows[0]!;
  return status === "stale" ? { status, head: row } : { status };
}

/** How an append grows the tree: the new right edge and what each changed tile gets at its end. */
export interface TreeGrowth {
  edge: Uint8Array;
  tiles: readonly { tile: TileId; fromWidth: number; appended: Uint8Array }[];
}

/** The stored tiles are not as wide as the log's tree edge says they are. */
export class TreeTilesMismatch extends Error {
  override name = "TreeTilesMismatch";
  constructor(readonly logId: string) {
    super(`the Merkle tiles of log "${logId}" disagree with its tree`);
  }
}

/** The stored contents of tiles, in the order asked (empty for a tile never written). */
export async function readTiles(db: Queryable, logId: string, tiles: readonly TileId[]): Promise<Uint8Array[]> {
  if (tiles.length === 0) return [];
  const { rows } = await db.query<{ level: number; idx: bigint; hashes: Uint8Array }>(
    `select level, idx, hashes from log.tiles
      where log_id = $1 and (level, idx) in (select * from unnest($2::smallint[], $3::bigint[]))`,
    [logId, tiles.map((tile) => tile.level), tiles.map((tile) => tile.index)],
  );
  const found = new Map(rows.map((row) => [`${row.level}/${row.idx}`, row.hashes]));
  return tiles.map((tile) => found.get(`${tile.level}/${tile.index}`) ?? new Uint8Array(0));
}

export interface CheckpointRow {
  tree_size: bigint;
  root_hash: Uint8Array;
  note: string;
}

/** The checkpoint with the largest tree size, or one of exactly `size`. */
export async function getCheckpoint(db: Queryable, logId: string, size?: bigint): Promise<CheckpointRow | null> {
  const { rows } =
    size === undefined
      ? await db.query<CheckpointRow>(`select tree_size, root_hash, note from log.checkpoints where log_id = $1 order by tree_size desc limit 1`, [logId])
      : await db.query<CheckpointRow>(`select tree_size, root_hash, note from log.checkpoints where log_id = $1 and tree_size = $2`, [logId, size]);
  return rows[0] ?? null;
}

/** Stores a signed checkpoint (a second one of the same size is ignored: the tree at a size never changes). */
export async function insertCheckpoint(tx: Queryable, logId: string, checkpoint: CheckpointRow): Promise<void> {
  await tx.query(`insert into log.checkpoints (log_id, tree_size, root_hash, note) values ($1, $2, $3, $4) on conflict do nothing`, [
    logId,
    checkpoint.tree_size,
    Buffer.from(checkpoint.root_hash),
    checkpoint.note,
  ]);
}

function rowJson(row: NewEntryRow): string {
  return (
    `{"seq":"${row.seq}","uuid":"${row.uuid}","kind":${JSON.stringify(row.kind)},"source_id":${JSON.stringify(row.source_id)},` +
    `"sim_time":${row.sim_time === null ? "null" : JSON.stringify(row.sim_time)},"wall_time_us":"${row.wall_time_us}",` +
    `"req_id":${row.req_id === null ? "null" : JSON.stringify(row.req_id)},"metadata":${JSON.stringify(row.metadata)},` +
    `"payload":${row.payloadJson},"content_type":${row.content_type === null ? "null" : JSON.stringify(row.content_type)},` +
    `"binary_payload":${row.binary_payload === null ? "null" : `"${Buffer.from(row.binary_payload).toString("base64")}"`},` +
    `"payload_digest":"${row.payload_digest}","prev_checksum":"${row.prev_checksum}",` +
    `"checksum":"${row.checksum}"}`
  );
}

/** Entries with seq ≥ fromSeq, ascending. */
export async function readForward(db: Queryable, logId: string, fromSeq: bigint, limit: number, toSeq?: bigint): Promise<EntryRow[]> {
  return selectForward<EntryRow>(db, ENTRY_COLUMNS, logId, fromSeq, limit, toSeq);
}

/** readForward's rows as the wire encoder reads them (their JSON as text). */
export async function readForwardForWire(db: Queryable, logId: string, fromSeq: bigint, limit: number): Promise<EntryWireRow[]> {
  return selectForward<EntryWireRow>(db, ENTRY_WIRE_COLUMNS, logId, fromSeq, limit);
}

async function selectForward<Row>(db: Queryable, columns: string, logId: string, fromSeq: bigint, limit: number, toSeq?: bigint): Promise<Row[]> {
  // The upper bound is there even when the caller gives none: without it, on
  // a table whose statistics predate a bulk load, the planner chose a bitmap
  // scan of every entry from fromSeq on and a sort, per page (32 µs of
  // PostgreSQL CPU per entry at 30,000 entries, against 3 with it: bench log-catchup).
  const { rows } = await db.query<Row>(
    `select ${columns} from log.entries where log_id = $1 and seq >= $2 and seq <= $3 order by seq limit $4`,
    [logId, fromSeq, toSeq ?? 9223372036854775807n, limit],
  );
  return rows;
}

/** The checksums (the tree's leaf data) of the stored entries in [fromSeq, toSeq], ascending; no payloads are read. */
export async function readChecksums(db: Queryable, logId: string, fromSeq: bigint, toSeq: bigint): Promise<{ seq: bigint; checksum: string }[]> {
  const { rows } = await db.query<{ seq: bigint; checksum: string }>(
    `select seq, checksum from log.entries where log_id = $1 and seq >= $2 and seq <= $3 order by seq`,
    [logId, fromSeq, toSeq],
  );
  return rows;
}

/** Entries in [fromSeq, toSeq], ascending, read a page at a time (constant memory). */
export async function* entriesInRange(db: Queryable, logId: string, fromSeq: bigint, toSeq: bigint): AsyncGenerator<EntryRow> {
  let cursor = fromSeq;
  for (;;) {
    const rows = await readForward(db, logId, cursor, RANGE_PAGE, toSeq);
    yield* rows;
    if (rows.length < RANGE_PAGE) return;
    cursor = rows.at(-1)!.seq + 1n;
  }
}

const RANGE_PAGE = 1000;

/** Entries with seq ≤ fromSeq, descending. */
export async function readBackward(db: Queryable, logId: string, fromSeq: bigint, limit: number): Promise<EntryRow[]> {
  const { rows } = await db.query<EntryRow>(
    `select ${ENTRY_COLUMNS} from log.entries where log_id = $1 and seq <= $2 order by seq desc limit $3`,
    [logId, fromSeq, limit],
  );
  return rows;
}

export async function entryBySeq(db: Queryable, logId: string, seq: bigint): Promise<EntryRow | null> {
  const { rows } = await db.query<EntryRow>(`select ${ENTRY_COLUMNS} from log.entries where log_id = $1 and seq = $2`, [logId, seq]);
  return rows[0] ?? null;
}

export async function entryByUuid(db: Queryable, logId: string, uuid: string): Promise<EntryRow | null> {
  const { rows } = await db.query<EntryRow>(`select ${ENTRY_COLUMNS} from log.entries where log_id = $1 and uuid = $2::uuid`, [logId, uuid]);
  return rows[0] ?? null;
}

export async function entryByReqId(db: Queryable, logId: string, reqId: string): Promise<EntryRow | null> {
  const { rows } = await db.query<EntryRow>(`select ${ENTRY_COLUMNS} from log.entries where log_id = $1 and req_id = $2`, [logId, reqId]);
  return rows[0] ?? null;
}

/** A source's entries after a seq, ascending (index entries_source). */
export async function listBySource(db: Queryable, logId: string, sourceId: string, afterSeq: bigint, limit: number): Promise<EntryRow[]> {
  const { rows } = await db.query<EntryRow>(
    `select ${ENTRY_COLUMNS} from log.entries where log_id = $1 and source_id = $2 and seq > $3 order by seq limit $4`,
    [logId, sourceId, afterSeq, limit],
  );
  return rows;
}

/** Entries with wall time in [fromUs, toUs], after (time, seq), by (time, seq) (index entries_wall_time). */
export async function listByWallTime(
  db: Queryable,
  logId: string,
  range: { fromUs: bigint; toUs: bigint },
  after: { time: bigint; seq: bigint } | null,
  limit: number,
): Promise<EntryRow[]> {
  const { rows } = await db.query<EntryRow>(
    `select ${ENTRY_COLUMNS} from log.entries
      where log_id = $1 and wall_time_us >= $2 and wall_time_us <= $3 and (wall_time_us, seq) > ($4, $5)
      order by wall_time_us, seq limit $6`,
    [logId, range.fromUs, range.toUs, after?.time ?? -9223372036854775808n, after?.seq ?? 0n, limit],
  );
  return rows;
}

/** Entries with sim_time in [from, to], after (time, seq), by (time, seq) (index entries_sim_time). */
export async function listBySimTime(
  db: Queryable,
  logId: string,
  range: { from: number; to: number },
  after: { time: number; seq: bigint } | null,
  limit: number,
): Promise<EntryRow[]> {
  const { rows } = await db.query<EntryRow>(
    `select ${ENTRY_COLUMNS} from log.entries
      where log_id = $1 and sim_time >= $2 and sim_time <= $3 and (sim_time, seq) > ($4::float8, $5::bigint)
      order by sim_time, seq limit $6`,
    [logId, range.from, range.to, after?.time ?? "-Infinity", after?.seq ?? 0n, limit],
  );
  return rows;
}

export interface StatsRow {
  source_count: bigint;
  min_wall_time_us: bigint | null;
  max_wall_time_us: bigint | null;
  min_sim_time: number | null;
  max_sim_time: number | null;
}

/**
 * Time ranges come from the time indexes (min/max become index lookups);
 * distinct sources by a skip scan over entries_source, one probe per source,
 * instead of reading every entry.
 */
export async function stats(db: Queryable, logId: string): Promise<StatsRow> {
  const { rows } = await db.query<StatsRow>(
    `with recursive sources(source_id) as (
       (select source_id from log.entries where log_id = $1 order by source_id limit 1)
       union all
       select (select e.source_id from log.entries e where e.log_id = $1 and e.source_id > s.source_id order by e.source_id limit 1)
         from sources s where s.source_id is not null
     )
     select (select count(source_id) from sources)::bigint as source_count,
            (select min(wall_time_us) from log.entries where log_id = $1) as min_wall_time_us,
            (select max(wall_time_us) from log.entries where log_id = $1) as max_wall_time_us,
            (select min(sim_time) from log.entries where log_id = $1) as min_sim_time,
            (select max(sim_time) from log.entries where log_id = $1) as max_sim_time`,
    [logId],
  );
  return rows[0]!;
}

/** The checksum of one stored entry, or null when it is not stored. */
export async function checksumAt(db: Queryable, logId: string, seq: bigint): Promise<string | null> {
  const { rows } = await db.query<{ checksum: string }>(`select checksum from log.entries where log_id = $1 and seq = $2`, [logId, seq]);
  return rows[0]?.checksum ?? null;
}

/** Removes entries below `beforeSeq` and records the checkpoint; under the head lock. */
export async function compactBefore(
  tx: Queryable,
  logId: string,
  beforeSeq: bigint,
  checkpointChecksum: string,
): Promise<{ removed: bigint }> {
  const { rows } = await tx.query<{ removed: bigint }>(
    `with removed as (
       delete from log.entries where log_id = $1 and seq < $2 returning redacted_by_seq
     ), counted as (
       select count(*)::bigint as removed, count(redacted_by_seq)::bigint as redacted from removed
     ), moved as (
       update log.logs set checkpoint_seq = $2 - 1, checkpoint_checksum = $3,
                       entry_count = entry_count - (select removed from counted),
                       redacted_count = redacted_count - (select redacted from counted)
        where log_id = $1
     )
     select removed from counted`,
    [logId, beforeSeq, checkpointChecksum],
  );
  return rows[0]!;
}

/** Erases one entry's payload (its digest stays); under the head lock. */
export async function markRedacted(tx: Queryable, logId: string, seq: bigint, redactionSeq: bigint, reason: string): Promise<void> {
  await tx.query(
    `with erased as (
       update log.entries set payload = null, binary_payload = null, redacted_by_seq = $3, redaction_reason = $4 where log_id = $1 and seq = $2
     )
     update log.logs set redacted_count = redacted_count + 1 where log_id = $1`,
    [logId, seq, redactionSeq, reason],
  );
}

/** Starts an empty mirror at its origin's compaction anchor, with the origin's tree edge there (null: no tree). */
export async function anchorMirror(
  tx: Queryable,
  logId: string,
  anchor: { seq: bigint; checksum: string; treeEdge: Uint8Array | null },
): Promise<void> {
  await tx.query(
    `update log.logs set checkpoint_seq = $2, checkpoint_checksum = $3, last_seq = $2, last_checksum = $3, tree_edge = $4 where log_id = $1`,
    [logId, anchor.seq, anchor.checksum, anchor.treeEdge === null ? null : Buffer.from(anchor.treeEdge)],
  );
}

/** Local logs whose tree has leaves no signed checkpoint covers (the checkpointer's startup sweep). */
export async function logsAheadOfTheirCheckpoint(db: Queryable): Promise<string[]> {
  const { rows } = await db.query<{ log_id: string }>(
    `select l.log_id from log.logs l
      where l.origin = 'local' and l.tree_edge is not null and l.last_seq > 0
        and l.last_seq > coalesce((select max(c.tree_size) from log.checkpoints c where c.log_id = l.log_id), 0)`,
  );
  return rows.map((row) => row.log_id);
}

/** Stores a witness's cosignature line of the checkpoint of `size` (a second one from the same witness replaces it). */
export async function insertCosignature(db: Queryable, logId: string, size: bigint, witness: string, line: string, timestamp: bigint): Promise<void> {
  await db.query(
    `insert into log.cosignatures (log_id, tree_size, witness, line, cosigned_at) values ($1, $2, $3, $4, $5)
       on conflict (log_id, tree_size, witness) do update set line = excluded.line, cosigned_at = excluded.cosigned_at, received_at = now()`,
    [logId, size, witness, line, timestamp],
  );
}

/** The witnesses (of `witnesses`) that cosigned the checkpoint of `size`. */
export async function cosignersOf(db: Queryable, logId: string, size: bigint, witnesses: readonly string[]): Promise<Set<string>> {
  const { rows } = await db.query<{ witness: string }>(`select witness from log.cosignatures where log_id = $1 and tree_size = $2 and witness = any($3::text[])`, [
    logId,
    size,
    witnesses,
  ]);
  return new Set(rows.map((row) => row.witness));
}

/** The size each witness last cosigned (or said it holds). */
export async function witnessPositions(db: Queryable, logId: string): Promise<Map<string, bigint>> {
  const { rows } = await db.query<{ witness: string; tree_size: bigint }>(`select witness, tree_size from log.witness_positions where log_id = $1`, [logId]);
  return new Map(rows.map((row) => [row.witness, BigInt(row.tree_size)]));
}

export async function setWitnessPosition(db: Queryable, logId: string, witness: string, size: bigint): Promise<void> {
  await db.query(
    `insert into log.witness_positions (log_id, witness, tree_size) values ($1, $2, $3)
       on conflict (log_id, witness) do update set tree_size = excluded.tree_size, updated_at = now()`,
    [logId, witness, size],
  );
}

/**
 * The largest checkpoint that at least `threshold` of `witnesses` cosigned,
 * with their lines (ordered by witness), or null when none has yet.
 */
export async function latestCosignedCheckpoint(
  db: Queryable,
  logId: string,
  witnesses: readonly string[],
  threshold: number,
): Promise<(CheckpointRow & { lines: string[] }) | null> {
  const { rows } = await db.query<CheckpointRow & { lines: string[] }>(
    `select c.tree_size, c.root_hash, c.note, array_agg(s.line order by s.witness) as lines
       from log.checkpoints c
       join log.cosignatures s on s.log_id = c.log_id and s.tree_size = c.tree_size
      where c.log_id = $1 and s.witness = any($2::text[])
      group by c.tree_size, c.root_hash, c.note
     having count(*) >= $3
      order by c.tree_size desc
      limit 1`,
    [logId, witnesses, threshold],
  );
  return rows[0] ?? null;
}

/** Every local log (not the mirrors). */
export async function localLogIds(db: Queryable): Promise<string[]> {
  const { rows } = await db.query<{ log_id: string }>(`select log_id from log.logs where origin = 'local' order by log_id`);
  return rows.map((row) => row.log_id);
}
