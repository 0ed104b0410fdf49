-- Replications stopped by an entry that failed verification. A row keeps the
-- replication stopped (across restarts) until ResetReplication deletes it.
create table replication_errors (
  node_id text not null,
  log_id  text not null,
  seq     bigint not null,
  detail  text not null,
  at      timestamptz not null default now(),
  primary key (node_id, log_id)
);
