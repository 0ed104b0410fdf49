import type { Queryable } from "@annals/db";
import { federationV1 } from "@annals/proto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";

const { AuditReason } = federationV1;

export interface AuditEvent {
  nodeId: string;
  logId?: string;
  seq?: bigint;
  /** What happened. */
  reason: federationV1.AuditReason;
  /** The details, e.g. "PEER_TOKEN_INVALID: the peer token of … is refused: its signature does not verify…". */
  message: string;
  expected?: string;
  actual?: string;
}

/**
 * How federation.audit stores a reason: the AuditReason value's name in
 * lowercase (`pull_refused`), so the table, the proto and the code share one
 * vocabulary (the table's check constraint lists the same tokens; migration 0006).
 */
function reasonToken(reason: federationV1.AuditReason): string {
  return AuditReason[reason].toLowerCase();
}

function reasonOf(token: string): federationV1.AuditReason {
  return AuditReason[token.toUpperCase() as keyof typeof AuditReason] ?? AuditReason.UNSPECIFIED;
}

export async function audit(db: Queryable, event: AuditEvent): Promise<void> {
  await insertAudit(db, { ...event, source: "" });
}

interface AuditRow {
  id: bigint;
  time: Date;
  last_time: Date | null;
  node_id: string;
  log_id: string;
  seq: bigint | null;
  reason: string;
  message: string;
  expected: string;
  actual: string;
  source: string;
  count: bigint;
}

/** Newest first, `limit` at a time, before the record id in `before` (the page token). */
export async function listAudit(db: Queryable, options: { nodeId: string; limit: number; before: bigint | undefined }) {
  const { rows } = await db.query<AuditRow>(
    `select id, time, last_time, node_id, log_id, seq, reason, message, expected, actual, source, count from federation.audit
     where ($1 = '' or node_id = $1) and ($2::bigint is null or id < $2) order by id desc limit $3`,
    [options.nodeId, options.before ?? null, options.limit + 1],
  );
  const records: MessageInitShape<typeof federationV1.AuditRecordSchema>[] = rows.slice(0, options.limit).map((row) => ({
    time: timestampFromDate(row.time),
    nodeId: row.node_id,
    logId: row.log_id,
    seq: row.seq ?? 0n,
    reason: reasonOf(row.reason),
    message: row.message,
    expected: row.expected,
    actual: row.actual,
    source: row.source,
    count: row.count,
    lastTime: timestampFromDate(row.last_time ?? row.time),
  }));
  // The id of the last record of this page: the next page holds older ones.
  const next = rows.length > options.limit ? rows[options.limit - 1]!.id : undefined;
  return { records, next };
}

/** Deletes records older than `retentionMs`, a batch at a time; returns how many went. */
export async function pruneAudit(db: Queryable, retentionMs: number): Promise<number> {
  let total = 0;
  for (;;) {
    const { rows } = await db.query<{ removed: bigint }>(
      `with gone as (
         delete from federation.audit where id in (
           select id from federation.audit where time < now() - make_interval(secs => $1::float8 / 1000) order by id limit 10000)
         returning 1)
       select count(*)::bigint as removed from gone`,
      [retentionMs],
    );
    const removed = Number(rows[0]?.removed ?? 0);
    total += removed;
    if (removed < 10000) return total;
  }
}

/** A Pull refusal to record. */
export interface Refusal {
  /** The caller's address, as the listener reports it (a port is dropped). */
  source: string;
  /** The peer the caller claims to be (unverified, already cut short). */
  nodeId: string;
  logId: string;
  /** The refusal's ErrorInfo reason, e.g. PEER_UNKNOWN. */
  code: string;
  /** The full description, stored with the first occurrence. */
  message: string;
}

export interface RefusalAuditOptions {
  /** Refusals with the same source, claimed peer and reason within one window are one record, in ms. Default 60000. */
  windowMs: number;
  /** Most records refusals may add per window; past it, refusals are counted in one overflow record. Default 20. */
  maxRecordsPerWindow: number;
}

export const DEFAULT_REFUSAL_AUDIT: RefusalAuditOptions = { windowMs: 60_000, maxRecordsPerWindow: 20 };

/**
 * Writes Pull refusals to the audit trail without letting anyone who can
 * reach the port fill it: the first refusal of a (source, claimed peer,
 * reason) in a window is a record, the rest of that window only raise its
 * count; and a window adds at most `maxRecordsPerWindow` records, after which
 * every other refusal is counted in a single overflow record.
 */
export class RefusalAudit {
  private windowStartedMs = 0;
  private readonly records = new Map<string, { id: Promise<bigint | null>; extra: number }>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly db: Queryable,
    private readonly options: RefusalAuditOptions = DEFAULT_REFUSAL_AUDIT,
    private readonly onError: (error: unknown) => void = () => {},
  ) {
    this.timer = setInterval(() => void this.roll().catch(onError), options.windowMs);
    this.timer.unref();
  }

  async record(refusal: Refusal): Promise<void> {
    if (Date.now() - this.windowStartedMs >= this.options.windowMs) await this.roll();
    const source = refusal.source.replace(/:\d+$/, "");
    const message = `${refusal.code}: ${refusal.message}`;
    let key = JSON.stringify([source, refusal.nodeId, refusal.logId, message]);
    // A client certificate naming another node is a certificate mismatch; every other refusal is a refused Pull.
    const reason = refusal.code === "PEER_CERT_MISMATCH" ? AuditReason.CERTIFICATE_MISMATCH : AuditReason.PULL_REFUSED;
    let event: AuditEvent & { source: string } = { nodeId: refusal.nodeId, logId: refusal.logId, reason, message, source };
    if (!this.records.has(key) && this.records.size >= this.options.maxRecordsPerWindow) {
      key = OVERFLOW;
      event = {
        nodeId: "",
        reason: AuditReason.REFUSALS_AGGREGATED,
        message: `more than ${this.options.maxRecordsPerWindow} different Pull refusals within ${this.options.windowMs} ms; this record counts the others`,
        source: "*",
      };
    }
    const known = this.records.get(key);
    if (known) {
      known.extra++;
      return;
    }
    const id = insertAudit(this.db, event);
    this.records.set(key, { id, extra: 0 });
    await id;
  }

  /** Writes the counts gathered since the records were written (the window goes on). */
  syncCounts(): Promise<void> {
    return this.addCounts([...this.records.values()]);
  }

  /** Ends the window: its counts are written, and the next refusals start new records. */
  private roll(): Promise<void> {
    this.windowStartedMs = Date.now();
    const ending = [...this.records.values()];
    this.records.clear();
    return this.addCounts(ending);
  }

  private async addCounts(records: { id: Promise<bigint | null>; extra: number }[]): Promise<void> {
    for (const record of records) {
      if (record.extra === 0) continue;
      const extra = record.extra;
      record.extra = 0;
      const id = await record.id;
      if (id !== null) await this.db.query("update federation.audit set count = count + $2, last_time = now() where id = $1", [id, extra]);
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.syncCounts();
  }
}

const OVERFLOW = "*";

async function insertAudit(db: Queryable, event: AuditEvent & { source: string }): Promise<bigint | null> {
  const { rows } = await db.query<{ id: bigint }>(
    "insert into federation.audit (node_id, log_id, seq, reason, message, expected, actual, source) values ($1, $2, $3, $4, $5, $6, $7, $8) returning id",
    [event.nodeId, event.logId ?? "", event.seq ?? null, reasonToken(event.reason), event.message, event.expected ?? "", event.actual ?? "", event.source],
  );
  return rows[0]?.id ?? null;
}
