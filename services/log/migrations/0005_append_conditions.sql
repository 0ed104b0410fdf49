-- Conditional appends (AppendCondition): the query form asks "is there an
-- entry after seq P whose kind matches these patterns (and whose source_id
-- is one of these)?" inside the append transaction, under the head lock. It
-- must not read the log: entries_kind finds the first entry of a kind after
-- a seq with one probe, and lists a log's distinct kinds one probe each;
-- entries_source (0001) does the same for a source. Kinds are compared in
-- the "C" collation so that a pattern's literal prefix is a byte range of
-- the index whatever the database's default collation is.
-- "if not exists": an operator may have built it beforehand, concurrently
-- (docs/operations.md, "Migrations").
create index if not exists entries_kind on entries (log_id, kind collate "C", seq);

-- The first seq after p_after that matches the query, or null. Called once
-- per conditional request of a group commit (AppendBatcher), after the head
-- row was locked: p_head is the locked head. The query is prepared by
-- append-condition.ts:
--   p_kinds      literal kinds (patterns without a wildcard);
--   p_prefix_lo  per wildcard pattern: its literal prefix (e.g. 'orders.'),
--   p_prefix_hi  the first string after every kind with that prefix,
--   p_regexes    and the whole pattern as an anchored regular expression;
--   p_sources    source ids (empty: any source).
-- No kinds and no patterns means any kind. Three ways in, each an index path:
--   * few entries after p_after (p_head - p_after <= p_scan_limit, the usual
--     case for a caller that just read the log), or no filter at all: walk
--     them in seq order on the primary key;
--   * source ids: per source, its entries after p_after (entries_source),
--     first one whose kind matches;
--   * kinds only: per literal kind one probe; per wildcard pattern, skip
--     through the distinct kinds under its prefix (one probe each, as
--     stats() does for sources) and probe those that match.
-- A FOUND check after each probe: SELECT INTO sets the variable to null when
-- no row comes back.
create function first_condition_conflict(
  p_log_id text,
  p_after bigint,
  p_head bigint,
  p_scan_limit bigint,
  p_kinds text[],
  p_prefix_lo text[],
  p_prefix_hi text[],
  p_regexes text[],
  p_sources text[]
) returns bigint language plpgsql stable
-- Every statement below has one intended plan, an ordered index scan that
-- stops at its first row. Without statistics (a log filled since the last
-- ANALYZE) the planner may take a bitmap scan and a sort instead, which reads
-- every matching row: measured at 20,000 entries before this, a skip through
-- 21 kinds took 100 ms instead of 1. The settings hold only inside the call.
set enable_seqscan = off set enable_bitmapscan = off set enable_sort = off
as $$
declare
  any_kind boolean := cardinality(p_kinds) = 0 and cardinality(p_regexes) = 0;
  first_seq bigint;
  candidate bigint;
  kind_at text;
  source text;
  i int;
begin
  if p_head <= p_after then
    return null;
  end if;
  if p_head - p_after <= p_scan_limit or (any_kind and cardinality(p_sources) = 0) then
    select e.seq into first_seq from log.entries e
     where e.log_id = p_log_id and e.seq > p_after
       and (any_kind or e.kind = any(p_kinds) or e.kind ~ any(p_regexes))
       and (cardinality(p_sources) = 0 or e.source_id = any(p_sources))
     order by e.seq limit 1;
    return first_seq;
  end if;
  if cardinality(p_sources) > 0 then
    foreach source in array p_sources loop
      select e.seq into candidate from log.entries e
       where e.log_id = p_log_id and e.source_id = source and e.seq > p_after
         and (any_kind or e.kind = any(p_kinds) or e.kind ~ any(p_regexes))
       order by e.seq limit 1;
      if found and (first_seq is null or candidate < first_seq) then
        first_seq := candidate;
      end if;
    end loop;
    return first_seq;
  end if;
  foreach kind_at in array p_kinds loop
    select e.seq into candidate from log.entries e
     where e.log_id = p_log_id and e.kind collate "C" = kind_at and e.seq > p_after
     order by e.seq limit 1;
    if found and (first_seq is null or candidate < first_seq) then
      first_seq := candidate;
    end if;
  end loop;
  for i in 1 .. cardinality(p_regexes) loop
    select e.kind into kind_at from log.entries e
     where e.log_id = p_log_id and e.kind collate "C" >= p_prefix_lo[i] and e.kind collate "C" < p_prefix_hi[i]
     order by e.kind collate "C" limit 1;
    while kind_at is not null loop
      if kind_at ~ p_regexes[i] then
        select e.seq into candidate from log.entries e
         where e.log_id = p_log_id and e.kind collate "C" = kind_at and e.seq > p_after
         order by e.seq limit 1;
        if found and (first_seq is null or candidate < first_seq) then
          first_seq := candidate;
        end if;
      end if;
      select e.kind into kind_at from log.entries e
       where e.log_id = p_log_id and e.kind collate "C" > kind_at and e.kind collate "C" < p_prefix_hi[i]
       order by e.kind collate "C" limit 1;
    end loop;
  end loop;
  return first_seq;
end
$$;
