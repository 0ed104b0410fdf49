-- Witness cosignatures of the log's checkpoints (C2SP tlog-witness and
-- tlog-cosignature; docs/merkle.md "Witnesses"), when ANNALS_LOG_WITNESSES
-- names witnesses. A checkpoint is published once enough configured
-- witnesses cosigned it; the published note is the checkpoint's note with
-- their lines appended.
create table cosignatures (
  log_id       text not null,
  tree_size    bigint not null,
  -- The witness's verifier key (vkey), as configured.
  witness      text not null,
  -- The signature line the witness returned, without its newline.
  line         text not null,
  -- The cosignature's timestamp (POSIX seconds).
  cosigned_at  bigint not null,
  received_at  timestamptz not null default now(),
  primary key (log_id, tree_size, witness),
  foreign key (log_id, tree_size) references checkpoints (log_id, tree_size) on delete cascade
);

-- The size each witness last cosigned for the log (or told in a 409): the
-- old size of the next add-checkpoint request to it.
create table witness_positions (
  log_id     text not null references logs (log_id) on delete cascade,
  witness    text not null,
  tree_size  bigint not null check (tree_size >= 0),
  updated_at timestamptz not null default now(),
  primary key (log_id, witness)
);
