-- The KV service's one table for the postgres backend. A row whose
-- expires_at_ms has passed is invisible to every read and is deleted by the
-- sweeper in batches (entries_expiry keeps that cheap).
create table entries (
  key           bytea primary key,
  value         bytea not null,
  -- Milliseconds since the Unix epoch; null: no expiry.
  expires_at_ms bigint
);

create index entries_expiry on entries (expires_at_ms) where expires_at_ms is not null;
