// The tables of checkpoint-checked replication (migration 0007): the mirror
// each replication writes and the checkpoint it accepted last, fork
// evidence, and quarantined mirrors.
import type { Queryable } from "@annals/db";
import { parseCheckpointNote } from "@annals/chain";
import type { AcceptedCheckpoint, ForkFinding } from "./checkpoint-guard.js";

export interface ReplicationRow {
  mirrorLogId: string;
  accepted: AcceptedCheckpoint | undefined;
}

export async function getReplicationRow(db: Queryable, nodeId: string, logId: string): Promise<ReplicationRow | undefined> {
  const { rows } = await db.query<{ mirror_log_id: string; checkpoint_note: string }>(
    "select mirror_log_id, checkpoint_note from federation.replications where node_id = $1 and log_id = $2",
    [nodeId, logId],
  );
  const row = rows[0];
  if (!row) return undefined;
  let accepted: AcceptedCheckpoint | undefined;
  if (row.checkpoint_note !== "") {
    const checkpoint = parseCheckpointNote(row.checkpoint_note);
    accepted = { note: row.checkpoint_note, size: checkpoint.size, root: checkpoint.rootHash };
  }
  return { mirrorLogId: row.mirror_log_id, accepted };
}

/** Records the accepted checkpoint (and the mirror it belongs to). */
export async function saveAcceptedCheckpoint(db: Queryable, nodeId: string, logId: string, mirrorLogId: string, accepted: AcceptedCheckpoint): Promise<void> {
  await db.query(
    `insert into federation.replications (node_id, log_id, mirror_log_id, checkpoint_size, checkpoint_note) values ($1, $2, $3, $4, $5)
     on conflict (node_id, log_id) do update set mirror_log_id = excluded.mirror_log_id, checkpoint_size = excluded.checkpoint_size, checkpoint_note = excluded.checkpoint_note`,
    [nodeId, logId, mirrorLogId, accepted.size, accepted.note],
  );
}

/** Points a replication at a new, empty mirror with no accepted checkpoint. */
export async function startNewMirror(db: Queryable, nodeId: string, logId: string, mirrorLogId: string): Promise<void> {
  await db.query(
    `insert into federation.replications (node_id, log_id, mirror_log_id) values ($1, $2, $3)
     on conflict (node_id, log_id) do update set mirror_log_id = excluded.mirror_log_id, checkpoint_size = 0, checkpoint_note = ''`,
    [nodeId, logId, mirrorLogId],
  );
}

export interface ForkRecord {
  mirrorLogId: string;
  forkSeq: bigint;
  finding: ForkFinding;
  detail: string;
  evidence: string;
  proves: boolean;
  detectedAt: Date;
}

export async function saveFork(db: Queryable, nodeId: string, logId: string, fork: Omit<ForkRecord, "detectedAt">): Promise<void> {
  await db.query(
    `insert into federation.replication_errors (node_id, log_id, seq, detail, kind) values ($1, $2, $3, $4, 'fork')
     on conflict (node_id, log_id) do update set seq = excluded.seq, detail = excluded.detail, kind = 'fork', at = now()`,
    [nodeId, logId, fork.forkSeq, fork.detail],
  );
  await db.query(
    `insert into federation.fork_evidence (node_id, log_id, mirror_log_id, fork_seq, finding, detail, evidence, proves) values ($1, $2, $3, $4, $5, $6, $7, $8)
     on conflict (node_id, log_id) do update set mirror_log_id = excluded.mirror_log_id, fork_seq = excluded.fork_seq, finding = excluded.finding,
       detail = excluded.detail, evidence = excluded.evidence, proves = excluded.proves, detected_at = now()`,
    [nodeId, logId, fork.mirrorLogId, fork.forkSeq, fork.finding, fork.detail, fork.evidence, fork.proves],
  );
}

export async function getFork(db: Queryable, nodeId: string, logId: string): Promise<ForkRecord | undefined> {
  const { rows } = await db.query<{ mirror_log_id: string; fork_seq: bigint; finding: ForkFinding; detail: string; evidence: string; proves: boolean; detected_at: Date }>(
    "select mirror_log_id, fork_seq, finding, detail, evidence, proves, detected_at from federation.fork_evidence where node_id = $1 and log_id = $2",
    [nodeId, logId],
  );
  const row = rows[0];
  return row
    ? { mirrorLogId: row.mirror_log_id, forkSeq: BigInt(row.fork_seq), finding: row.finding, detail: row.detail, evidence: row.evidence, proves: row.proves, detectedAt: row.detected_at }
    : undefined;
}

/** The stored stop of a replication: an entry that failed, or a fork. */
export async function getStop(db: Queryable, nodeId: string, logId: string): Promise<{ seq: bigint; detail: string; kind: "entry" | "fork" } | undefined> {
  const { rows } = await db.query<{ seq: bigint; detail: string; kind: "entry" | "fork" }>(
    "select seq, detail, kind from federation.replication_errors where node_id = $1 and log_id = $2",
    [nodeId, logId],
  );
  return rows[0] ? { ...rows[0], seq: BigInt(rows[0].seq) } : undefined;
}

export async function quarantinedMirrors(db: Queryable, nodeId: string, logId: string): Promise<string[]> {
  const { rows } = await db.query<{ mirror_log_id: string }>(
    "select mirror_log_id from federation.quarantined_mirrors where node_id = $1 and log_id = $2 order by quarantined_at, mirror_log_id",
    [nodeId, logId],
  );
  return rows.map((row) => row.mirror_log_id);
}

export async function isQuarantined(db: Queryable, mirrorLogId: string): Promise<boolean> {
  return (await db.query("select 1 from federation.quarantined_mirrors where mirror_log_id = $1", [mirrorLogId])).rows.length > 0;
}

export async function quarantine(db: Queryable, input: { nodeId: string; logId: string; mirrorLogId: string; forkSeq: bigint; evidence: string; operator: string }): Promise<boolean> {
  const { rowCount } = await db.query(
    `insert into federation.quarantined_mirrors (mirror_log_id, node_id, log_id, fork_seq, evidence, quarantined_by) values ($1, $2, $3, $4, $5, $6)
     on conflict (mirror_log_id) do nothing`,
    [input.mirrorLogId, input.nodeId, input.logId, input.forkSeq, input.evidence, input.operator],
  );
  return rowCount > 0;
}
