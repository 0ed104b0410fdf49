-- Federation that catches a forked history (docs/merkle.md, "Federation"):
-- each peer's checkpoint verifier key, the last checkpoint of each
-- replication that the puller accepted, the fork evidence it keeps, and
-- quarantined mirrors.

-- The signed-note verifier key of the peer's checkpoints; '' when not registered.
alter table peers add column log_verifier_key text not null default '';

-- One row per (peer, log) replication once it has a checkpoint or a mirror
-- other than the default: the mirror it writes now (ReMirror changes it) and
-- the last checkpoint of the peer's log it accepted (0 and '' for none).
create table replications (
  node_id          text not null,
  log_id           text not null,
  mirror_log_id    text not null,
  checkpoint_size  bigint not null default 0,
  checkpoint_note  text not null default '',
  primary key (node_id, log_id)
);

-- Why a replication stopped: 'entry' (an entry failed verification) or 'fork'
-- (its checkpoints contradict each other or the mirror; seq is the fork point).
alter table replication_errors add column kind text not null default 'entry' check (kind in ('entry', 'fork'));

-- The evidence of a replication's fork: the fork-evidence bundle (text, empty
-- when none could be made), what was found, and whether the bundle proves it.
create table fork_evidence (
  node_id        text not null,
  log_id         text not null,
  mirror_log_id  text not null,
  fork_seq       bigint not null,
  finding        text not null,
  detail         text not null,
  evidence       text not null,
  proves         boolean not null,
  detected_at    timestamptz not null default now(),
  primary key (node_id, log_id)
);

-- Mirrors set aside after a fork: readable, never written again.
create table quarantined_mirrors (
  mirror_log_id   text primary key,
  node_id         text not null,
  log_id          text not null,
  fork_seq        bigint not null,
  evidence        text not null,
  quarantined_by  text not null,
  quarantined_at  timestamptz not null default now()
);

alter table audit drop constraint audit_reason_known;
alter table audit add constraint audit_reason_known check (
  reason in ('checksum_mismatch', 'broken_link', 'seq_gap', 'certificate_mismatch', 'pull_refused', 'reset', 'refusals_aggregated',
             'fork', 'quarantine', 're_mirror')
);
