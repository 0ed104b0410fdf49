-- One group commit in one statement (AppendBatcher's fast path): the service
-- keeps each log's head in memory and sequences, hashes and grows the tree of
-- the next group against it without a round trip; this function then checks,
-- under the head lock, everything that plan assumed, and writes the group
-- only if all of it holds. Called alone (autocommit), the call is the whole
-- transaction: one round trip per group instead of BEGIN, lock, lookups,
-- insert and COMMIT.
--
-- What the plan assumed, and what is answered when it does not hold
-- (nothing is written then; the service replans or takes the locked path):
--   * the head: the log is local and its row is exactly p_expected_* (another
--     replica, a Redact or a Compact moved it)        -> 'stale' and the head;
--   * no stored entry holds one of the group's req_ids or uuids  -> 'keys';
--   * no stored entry (up to the head) matches a condition query -> 'conflicts';
--   * the log exists                                             -> 'absent'.
-- Otherwise the rows are inserted, the head moved, the tree's tiles grown
-- (each only from the width the plan grew it from) and subscribers notified,
-- and 'ok' is answered. A tile that does not grow as planned means the
-- stored tiles and the head's tree edge disagree: SQLSTATE LT001, and the
-- statement (so the whole group) is rolled back.
--
-- The head lock (FOR UPDATE) is what keeps seq gap-free and commit order
-- equal to seq order across replicas, as in the locked path (store.lockHead):
-- a second call for the same log waits here until the first commits, then
-- sees its head. A group that writes nothing (every request refused or
-- replayed) still takes the lock, so that its answers are checked against
-- one head, as the locked path does.
create function append_group(
  p_log_id text,
  p_expected_seq bigint,
  p_expected_checksum text,
  p_expected_wall_time_us bigint,
  p_expected_checkpoint_seq bigint,
  p_expected_tree_edge bytea,
  -- The keys of every entry of the group (req_ids, and the uuids callers chose).
  p_req_ids text[],
  p_uuids uuid[],
  -- Condition queries in the form of store.firstConditionConflicts.
  p_conditions jsonb,
  p_scan_limit bigint,
  -- The rows, as store.insertEntries sends them, and the head after them.
  p_rows jsonb,
  p_last_seq bigint,
  p_last_checksum text,
  p_last_wall_time_us bigint,
  p_channel text,
  p_tree_edge bytea,
  p_tile_levels smallint[],
  p_tile_indexes bigint[],
  p_tile_from_widths int[],
  p_tile_hashes bytea[]
) returns table (
  status text,
  log_id text,
  origin text,
  origin_node text,
  chain_log_id text,
  created_at timestamptz,
  last_seq bigint,
  last_checksum text,
  entry_count bigint,
  checkpoint_seq bigint,
  checkpoint_checksum text,
  last_wall_time_us bigint,
  redacted_count bigint,
  tree_edge bytea
) language plpgsql volatile
as $$
#variable_conflict use_column
declare
  head log.logs;
  n_rows int := jsonb_array_length(p_rows);
  tiles_grown int;
begin
  select * into head from log.logs l where l.log_id = p_log_id for update;
  if not found then
    return query select 'absent'::text, null::text, null::text, null::text, null::text, null::timestamptz, null::bigint, null::text,
                        null::bigint, null::bigint, null::text, null::bigint, null::bigint, null::bytea;
    return;
  end if;
  if head.origin <> 'local' or head.last_seq <> p_expected_seq or head.last_checksum <> p_expected_checksum
     or head.last_wall_time_us <> p_expected_wall_time_us or head.checkpoint_seq <> p_expected_checkpoint_seq
     or head.tree_edge is distinct from p_expected_tree_edge then
    return query select 'stale'::text, head.log_id, head.origin, head.origin_node, head.chain_log_id, head.created_at, head.last_seq,
                        head.last_checksum, head.entry_count, head.checkpoint_seq, head.checkpoint_checksum, head.last_wall_time_us,
                        head.redacted_count, head.tree_edge;
    return;
  end if;
  if cardinality(p_req_ids) + cardinality(p_uuids) > 0
     and exists (select from log.entries e where e.log_id = p_log_id and (e.req_id = any(p_req_ids) or e.uuid = any(p_uuids))) then
    return query select 'keys'::text, null::text, null::text, null::text, null::text, null::timestamptz, null::bigint, null::text,
                        null::bigint, null::bigint, null::text, null::bigint, null::bigint, null::bytea;
    return;
  end if;
  if exists (
    select from jsonb_to_recordset(p_conditions) as c("afterSeq" bigint, kinds text[], "prefixLo" text[], "prefixHi" text[], regexes text[], sources text[])
     where log.first_condition_conflict(p_log_id, c."afterSeq", head.last_seq, p_scan_limit, c.kinds, c."prefixLo", c."prefixHi", c.regexes, c.sources) is not null
  ) then
    return query select 'conflicts'::text, null::text, null::text, null::text, null::text, null::timestamptz, null::bigint, null::text,
                        null::bigint, null::bigint, null::text, null::bigint, null::bigint, null::bytea;
    return;
  end if;
  if n_rows > 0 then
    insert into log.entries (log_id, seq, uuid, kind, source_id, sim_time, wall_time_us, req_id, metadata, payload,
                             content_type, binary_payload, payload_digest, prev_checksum, checksum)
    select p_log_id, r.seq, r.uuid, r.kind, r.source_id, r.sim_time, r.wall_time_us, r.req_id, r.metadata, nullif(r.payload, 'null'),
           r.content_type, decode(r.binary_payload, 'base64'), r.payload_digest, r.prev_checksum, r.checksum
      from jsonb_to_recordset(p_rows) as r(seq bigint, uuid uuid, kind text, source_id text, sim_time float8,
           wall_time_us bigint, req_id text, metadata jsonb, payload jsonb, content_type text, binary_payload text,
           payload_digest text, prev_checksum text, checksum text);
    update log.logs l set last_seq = p_last_seq, last_checksum = p_last_checksum, last_wall_time_us = p_last_wall_time_us,
                          entry_count = l.entry_count + n_rows, tree_edge = coalesce(p_tree_edge, l.tree_edge)
     where l.log_id = p_log_id;
    with planned as (
      select * from unnest(p_tile_levels, p_tile_indexes, p_tile_from_widths, p_tile_hashes) as g(level, idx, from_width, appended)
    ), grown as (
      -- Each tile grows at its end, and only from the width the plan grew it from.
      insert into log.tiles as t (log_id, level, idx, hashes)
      select p_log_id, g.level, g.idx, g.appended from planned g
      on conflict (log_id, level, idx) do update set hashes = t.hashes || excluded.hashes
       where length(t.hashes) = (select g.from_width * 32 from planned g where g.level = excluded.level and g.idx = excluded.idx)
      returning t.level, t.idx, length(t.hashes) as bytes
    )
    select count(*) into tiles_grown from grown w join planned g on g.level = w.level and g.idx = w.idx
     where w.bytes = g.from_width * 32 + length(g.appended);
    if tiles_grown <> coalesce(cardinality(p_tile_levels), 0) then
      raise exception 'the Merkle tiles of log "%" disagree with its tree', p_log_id using errcode = 'LT001';
    end if;
    perform pg_notify(p_channel, p_log_id || ' ' || p_last_seq::text);
  end if;
  return query select 'ok'::text, null::text, null::text, null::text, null::text, null::timestamptz, null::bigint, null::text,
                      null::bigint, null::bigint, null::text, null::bigint, null::bigint, null::bytea;
end
$$;
