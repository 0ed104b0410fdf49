-- The hottest reads as functions: PL/pgSQL keeps the plans of the statements
-- inside for the connection's life, where the driver's unnamed statements are
-- parsed and planned on every call. Measured with pgbench on the 2-core
-- development machine: get_value ≈ 1.3–2× the plain SELECT's rate, read_state
-- ≈ 1.6×; end to end see bench/src/kv-ops.ts.

-- Get: the live value of a key, null when it is missing or expired.
create function get_value(p_key bytea) returns bytea language plpgsql as $$
begin
  return (select value from kv.entries where key = p_key and (expires_at_ms is null or expires_at_ms > kv.now_ms()));
end
$$;

-- A helper state as stored (expired or not; no row: nulls) with the clock,
-- as the transitions of postgres-backend.ts read it before deciding.
create function read_state(p_space text, p_key bytea, out value bytea, out expires_at_ms bigint, out now_ms bigint) language plpgsql as $$
begin
  now_ms := kv.now_ms();
  select s.value, s.expires_at_ms into value, expires_at_ms from kv.states s where s.space = p_space and s.key = p_key;
end
$$;
