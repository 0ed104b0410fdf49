-- Redaction, a non-decreasing wall clock per log, and mirror chain ids.

-- The largest wall_time_us written so far: appends never go back in time even
-- when replicas' clocks disagree, so wall time follows seq order.
alter table logs add column last_wall_time_us bigint not null default 0;
-- Stored entries whose payload was redacted (kept by Redact and Compact).
alter table logs add column redacted_count bigint not null default 0;
-- For a mirror: the origin's log id, which its entries' checksums cover.
alter table logs add column chain_log_id text;

-- Set by Redact: the seq of the annals.redaction entry that erased the payload.
alter table entries add column redacted_by_seq bigint;
alter table entries add column redaction_reason text;
