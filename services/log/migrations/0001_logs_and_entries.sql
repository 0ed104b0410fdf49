-- The log service's tables. Every table is keyed by log_id first, so the log
-- tables can be distributed by log_id (Citus) without a redesign.

-- One row per named log: its head, locked FOR UPDATE by every append so that
-- seq is gap-free and commit order equals seq order (docs/hash-chain.md).
create table logs (
  log_id              text primary key,
  -- 'local' logs take appends; 'mirror' logs are written only by federation.
  origin              text not null default 'local' check (origin in ('local', 'mirror')),
  -- For a mirror: the node id it replicates from.
  origin_node         text,
  created_at          timestamptz not null default now(),
  last_seq            bigint not null default 0,
  last_checksum       text not null default repeat('0', 64),
  entry_count         bigint not null default 0,
  -- Compaction checkpoint: the last removed entry; verification starts here.
  checkpoint_seq      bigint not null default 0,
  checkpoint_checksum text not null default repeat('0', 64)
);

create table entries (
  log_id          text not null references logs (log_id) on delete cascade,
  seq             bigint not null,
  uuid            uuid not null,
  kind            text not null,
  source_id       text not null default '',
  sim_time        double precision,
  -- Microseconds since the Unix epoch, set by the server when it sequenced the entry.
  wall_time_us    bigint not null,
  req_id          text,
  metadata        jsonb not null default '{}',
  -- Null once redacted; payload_digest still carries the chain.
  payload         jsonb,
  payload_digest  text not null,
  prev_checksum   text not null,
  checksum        text not null,
  primary key (log_id, seq)
);

create unique index entries_uuid on entries (log_id, uuid);
create unique index entries_req_id on entries (log_id, req_id) where req_id is not null;
create index entries_source on entries (log_id, source_id, seq);
create index entries_wall_time on entries (log_id, wall_time_us, seq);
create index entries_sim_time on entries (log_id, sim_time, seq) where sim_time is not null;
