-- The audit trail: refused peers and connections, rejected entries, operator resets.
create table audit (
  id       bigint generated always as identity primary key,
  time     timestamptz not null default now(),
  -- The peer concerned ('' when it could not be told).
  node_id  text not null,
  log_id   text not null default '',
  -- The entry concerned, for rejected entries.
  seq      bigint,
  reason   text not null,
  expected text not null default '',
  actual   text not null default ''
);

create index audit_by_node on audit (node_id, id desc);
