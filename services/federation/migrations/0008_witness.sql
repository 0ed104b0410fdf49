-- The witness (C2SP tlog-witness, docs/merkle.md "Witnesses"): for each log
-- origin it witnesses, the latest checkpoint it cosigned. add-checkpoint
-- advances a row by compare-and-swap on (size, root), so two concurrent
-- requests can never both advance it, nor roll it back.
create table witness_checkpoints (
  origin     text primary key,
  tree_size  bigint not null check (tree_size >= 0),
  root_hash  bytea not null,
  -- The checkpoint as submitted (the log's signatures) followed by this
  -- witness's cosignature line: what the monitoring endpoint serves.
  note       text not null,
  updated_at timestamptz not null default now()
);

-- Requests refused although the origin was known and the log's signature
-- verified (409 or 422): a checkpoint the log signed that does not extend the
-- one this witness cosigned may be proof of a fork, so it is kept with the
-- checkpoint it was compared against.
create table witness_evidence (
  id             bigint generated always as identity primary key,
  origin         text not null,
  status         smallint not null check (status in (409, 422)),
  reason         text not null,
  old_size       bigint not null,
  -- The consistency proof sent, base64 hashes one per line.
  proof          text not null,
  -- The signed checkpoint refused, and the one the witness had cosigned (null: none).
  submitted_note text not null,
  cosigned_note  text,
  received_at    timestamptz not null default now()
);
create index witness_evidence_origin on witness_evidence (origin, id);
-- A log that keeps sending the same refused checkpoint (its retries) is kept once per answer.
create unique index witness_evidence_once on witness_evidence (origin, status, md5(submitted_note));

-- The witness's Ed25519 cosigning key when ANNALS_WITNESS_KEY_FILE names
-- none: generated once (the first replica to start wins) and kept here. It is
-- not the node's federation or checkpoint key: tlog-cosignature wants a key
-- of its own per cosigner.
create table witness_key (
  id          smallint primary key default 1 check (id = 1),
  private_jwk jsonb not null
);
