-- State of the atomic helpers (rate limits, locks, idempotency keys, seen
-- event ids), apart from the keys clients read and write: `space` names the
-- helper, so a lock and a plain key of the same name never collide. Rows
-- expire like entries and the same sweeper deletes them.
create table states (
  space         text not null,
  key           bytea not null,
  value         bytea not null,
  expires_at_ms bigint,
  primary key (space, key)
);

create index states_expiry on states (expires_at_ms) where expires_at_ms is not null;

-- The clock every expiry is measured on: the database server's, so that
-- replicas of the kv service with skewed clocks agree on what has expired.
create function now_ms() returns bigint language sql volatile as $$
  select floor(extract(epoch from clock_timestamp()) * 1000)::bigint
$$;

-- INCRBY with Redis semantics in one round trip: a missing or expired key
-- counts as 0 and gets no expiry; a live key keeps its expiry. The value must
-- be a decimal 64-bit integer as Redis writes them (no sign but '-', no
-- leading zeros or spaces): otherwise SQLSTATE 22P02. A result outside the
-- 64-bit range raises 22003 and changes nothing.
create function incr_by(p_key bytea, p_delta bigint) returns bigint language plpgsql as $$
declare
  current_value bytea;
  current_expiry bigint;
  now_ms bigint := kv.now_ms();
  digits text;
  result numeric;
begin
  loop
    select value, expires_at_ms into current_value, current_expiry from kv.entries where key = p_key for update;
    if not found then
      insert into kv.entries (key, value) values (p_key, convert_to(p_delta::text, 'UTF8')) on conflict (key) do nothing;
      if found then return p_delta; end if;
      -- Another transaction inserted the key meanwhile: read it again, locked.
      continue;
    end if;
    if current_expiry is not null and current_expiry <= now_ms then
      update kv.entries set value = convert_to(p_delta::text, 'UTF8'), expires_at_ms = null where key = p_key;
      return p_delta;
    end if;
    digits := encode(current_value, 'escape');
    if length(current_value) > 20 or digits !~ '^(0|-?[1-9][0-9]*)$' then
      raise exception 'value is not an integer' using errcode = '22P02';
    end if;
    result := digits::numeric;
    if result < -9223372036854775808 or result > 9223372036854775807 then
      raise exception 'value is not an integer' using errcode = '22P02';
    end if;
    result := result + p_delta;
    if result < -9223372036854775808 or result > 9223372036854775807 then
      raise exception 'increment would overflow' using errcode = '22003';
    end if;
    update kv.entries set value = convert_to(result::text, 'UTF8') where key = p_key;
    return result::bigint;
  end loop;
end
$$;
