import type { Queryable } from "@annals/db";
import type { federationV1 } from "@annals/proto";
import type { MessageInitShape } from "@bufbuild/protobuf";

export interface AuditEvent {
  nodeId: string;
  logId?: string;
  seq?: bigint;
  /** What happened, e.g. "PEER_TOKEN_INVALID: its signature does not verify…". */
  reason: string;
  expected?: string;
  actual?: string;
}

export async function audit(db: Queryable, event: AuditEvent): Promise<void> {
  await db.query("insert into federation.audit (node_id, log_id, seq, reason, expected, actual) values ($1, $2, $3, $4, $5, $6)", [
    event.nodeId,
    event.logId ?? "",
    event.seq ?? null,
    event.reason,
    event.expected ?? "",
    event.actual ?? "",
  ]);
}

interface AuditRow {
  id: bigint;
  time: Date;
  node_id: string;
  log_id: string;
  seq: bigint | null;
  reason: string;
  expected: string;
  actual: string;
}

/** Newest first, `limit` at a time, before the record id in `before` (the page token). */
export async function listAudit(db: Queryable, options: { nodeId: string; limit: number; before: bigint | undefined }) {
  const { rows } = await db.query<AuditRow>(
    `select id, time, node_id, log_id, seq, reason, expected, actual from federation.audit
     where ($1 = '' or node_id = $1) and ($2::bigint is null or id < $2) order by id desc limit $3`,
    [options.nodeId, options.before ?? null, options.limit + 1],
  );
  const records: MessageInitShape<typeof federationV1.AuditRecordSchema>[] = rows.slice(0, options.limit).map((row) => ({
    timeUs: BigInt(row.time.getTime()) * 1000n,
    nodeId: row.node_id,
    logId: row.log_id,
    seq: row.seq ?? 0n,
    reason: row.reason,
    expected: row.expected,
    actual: row.actual,
  }));
  const next = rows.length > options.limit ? String(rows[options.limit - 1]!.id) : "";
  return { records, nextPageToken: next };
}
