-- Repeated refusals of the same caller are kept as one record with a count,
-- so that unauthenticated callers cannot fill the audit trail; old records
-- are deleted after the retention period (ANNALS_FEDERATION_AUDIT_RETENTION).

-- The caller's network address (without the port), '' when not known.
alter table audit add column source text not null default '';
-- How many times this happened; refusals within one aggregation window add up here.
alter table audit add column count bigint not null default 1;
-- When it last happened (the first time is `time`).
alter table audit add column last_time timestamptz;

create index audit_by_time on audit (time);
