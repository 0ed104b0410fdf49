-- Every log's RFC 6962 Merkle tree, stored as C2SP tlog-tiles (docs/merkle.md):
-- tile (level L, index N) holds up to 256 hashes of tree level 8·L, 32 bytes
-- each; level 0 holds the leaf hashes, where the leaf of seq s (index s − 1)
-- is the 32 bytes of entry s's checksum. Tiles only grow at their end, in
-- the same transaction as the entries they cover, and compaction keeps them.
create table tiles (
  log_id  text not null references logs (log_id) on delete cascade,
  level   smallint not null,
  idx     bigint not null,
  hashes  bytea not null,
  primary key (log_id, level, idx)
);

-- The tree's right edge (docs/merkle.md, "Growing the tree"), kept with the
-- head so that an append reads no tile. Null: the log has no tree (entries
-- were compacted before trees existed).
alter table logs add column tree_edge bytea;
update logs set tree_edge = '\x0000000000000000' where last_seq = 0;

-- Signed checkpoints (C2SP tlog-checkpoint in a signed note), one per size
-- signed; the latest is the one with the largest tree_size.
create table checkpoints (
  log_id     text not null references logs (log_id) on delete cascade,
  tree_size  bigint not null,
  root_hash  bytea not null,
  note       text not null,
  created_at timestamptz not null default now(),
  primary key (log_id, tree_size)
);

-- The node's checkpoint signing key, when ANNALS_LOG_SIGNING_KEY_FILE names none:
-- generated once (the first replica to start wins) and kept here.
create table signing_key (
  id          smallint primary key default 1 check (id = 1),
  private_jwk jsonb not null
);
