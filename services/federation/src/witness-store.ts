// All SQL of the witness (tables in migrations/0008_witness.sql).
import type { Queryable } from "@annals/db";

/** The latest checkpoint the witness cosigned for an origin. */
export interface WitnessCheckpointRow {
  tree_size: bigint;
  root_hash: Uint8Array;
  note: string;
}

export async function getWitnessCheckpoint(db: Queryable, origin: string): Promise<WitnessCheckpointRow | null> {
  const { rows } = await db.query<WitnessCheckpointRow>(`select tree_size, root_hash, note from federation.witness_checkpoints where origin = $1`, [origin]);
  return rows[0] ?? null;
}

/**
 * Compare-and-swap: stores `next` for the origin only if the stored state is
 * still `expected` (null: nothing stored yet). Returns whether it did; a
 * false answer means another request advanced the origin first.
 */
export async function advanceWitnessCheckpoint(db: Queryable, origin: string, expected: WitnessCheckpointRow | null, next: WitnessCheckpointRow): Promise<boolean> {
  const values = [origin, next.tree_size, Buffer.from(next.root_hash), next.note];
  const result =
    expected === null
      ? await db.query(`insert into federation.witness_checkpoints (origin, tree_size, root_hash, note) values ($1, $2, $3, $4) on conflict do nothing`, values)
      : await db.query(
          `update federation.witness_checkpoints set tree_size = $2, root_hash = $3, note = $4, updated_at = now()
            where origin = $1 and tree_size = $5 and root_hash = $6`,
          [...values, expected.tree_size, Buffer.from(expected.root_hash)],
        );
  return result.rowCount === 1;
}

/** The latest cosigned checkpoint of the origin whose SHA-256 (lowercase hex) is `originHash`. */
export async function getWitnessCheckpointByOriginHash(db: Queryable, originHash: string): Promise<WitnessCheckpointRow | null> {
  const { rows } = await db.query<WitnessCheckpointRow>(
    `select tree_size, root_hash, note from federation.witness_checkpoints where encode(sha256(convert_to(origin, 'UTF8')), 'hex') = $1`,
    [originHash],
  );
  return rows[0] ?? null;
}

export interface WitnessEvidenceRow {
  origin: string;
  status: 409 | 422;
  reason: string;
  old_size: bigint;
  proof: string;
  submitted_note: string;
  cosigned_note: string | null;
}

/** Keeps a refused checkpoint (once per origin, status and checkpoint note). */
export async function insertWitnessEvidence(db: Queryable, evidence: WitnessEvidenceRow): Promise<void> {
  await db.query(
    `insert into federation.witness_evidence (origin, status, reason, old_size, proof, submitted_note, cosigned_note) values ($1, $2, $3, $4, $5, $6, $7)
       on conflict do nothing`,
    [evidence.origin, evidence.status, evidence.reason, evidence.old_size, evidence.proof, evidence.submitted_note, evidence.cosigned_note],
  );
}

/** Evidence kept for an origin, oldest first. */
export async function listWitnessEvidence(db: Queryable, origin: string): Promise<(WitnessEvidenceRow & { id: bigint; received_at: Date })[]> {
  const { rows } = await db.query<WitnessEvidenceRow & { id: bigint; received_at: Date }>(
    `select id, origin, status, reason, old_size, proof, submitted_note, cosigned_note, received_at from federation.witness_evidence where origin = $1 order by id`,
    [origin],
  );
  return rows;
}

