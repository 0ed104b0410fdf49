// The postgres backend: table kv.entries (migrations/0001) for the keys clients
// use, kv.states for the helpers' state, both on the database server's clock
// (kv.now_ms()). The common operations are one statement each; Set with GET
// and the helpers read the row, decide, and write it only if it is unchanged
// (see readModifyWrite).
import { DatabaseError, type Database, type Queryable } from "@annals/db";
import {
  badCursor,
  decideSet,
  hasPrefix,
  incrementOverflows,
  isLive,
  notAnInteger,
  prefixUpperBound,
  type Decide,
  type KvBackend,
  type ScanPage,
  type SetOptions,
  type StateSpace,
  type Stored,
} from "./backend.js";

const LIVE = "(expires_at_ms is null or expires_at_ms > kv.now_ms())";
/** The expiry of a write with $3 = ttl_ms (0: none). */
const NEW_EXPIRY = "case when $3::bigint > 0 then kv.now_ms() + $3::bigint end";
/** The expiry a live row keeps under KEEPTTL (an expired row's is gone). */
const KEPT_EXPIRY = "case when e.expires_at_ms > kv.now_ms() then e.expires_at_ms end";

/** Attempts without a lock before a read-modify-write queues on the row lock (see readModifyWrite). */
const OPTIMISTIC_ATTEMPTS = 2;

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const toNumber = (value: unknown) => (value === null ? null : Number(value));

/** A table the read-modify-write path works on: the entries, or one space of states. */
interface Row {
  table: "kv.entries" | "kv.states";
  /** The WHERE that selects the row, over $1 = key (and $2 = space). */
  where: string;
  /** Reads the row (value, expires_at_ms; nulls when there is none) and now_ms, over the same parameters. */
  read: string;
  params: unknown[];
  /** Column list and values of an INSERT, with value and expiry as the next two parameters. */
  insert(valueParam: number): string;
}

export class PostgresBackend implements KvBackend {
  readonly name = "postgres";
  readonly supports = { ttl: true, scan: true, batch: true };

  constructor(private readonly db: Database) {}

  async get(key: Uint8Array) {
    const { rows } = await this.db.query<{ value: Uint8Array | null }>("select kv.get_value($1) as value", [key]);
    return rows[0]!.value ?? undefined;
  }

  async mget(keys: readonly Uint8Array[]) {
    const { rows } = await this.db.query<{ key: Uint8Array; value: Uint8Array }>(
      `select key, value from kv.entries where key in (select decode(k, 'hex') from unnest($1::text[]) k) and ${LIVE}`,
      [keys.map(hex)],
    );
    const byKey = new Map(rows.map((row) => [hex(row.key), row.value]));
    return keys.map((key) => byKey.get(hex(key)));
  }

  async exists(key: Uint8Array) {
    const { rowCount } = await this.db.query(`select 1 from kv.entries where key = $1 and ${LIVE}`, [key]);
    return rowCount > 0;
  }

  async set(key: Uint8Array, value: Uint8Array, options: SetOptions) {
    if (options.returnPrevious) {
      // The previous value must be the one this write replaced, so read it locked.
      return this.readModifyWrite(entryRow(key), (current, nowMs) => decideSet(current, nowMs, value, options));
    }
    // $3 (the TTL) only where it is used: PostgreSQL cannot type an unused parameter.
    const params = options.keepTtl ? [key, value] : [key, value, options.ttlMs];
    const expiry = options.keepTtl ? KEPT_EXPIRY : NEW_EXPIRY;
    let sql: string;
    if (options.condition === "ifPresent") {
      sql = `update kv.entries e set value = $2, expires_at_ms = ${expiry} where key = $1 and ${LIVE}`;
    } else {
      // An expired row counts as absent: NX replaces it, KEEPTTL keeps nothing of it.
      const onlyExpired = options.condition === "ifAbsent" ? "where e.expires_at_ms <= kv.now_ms()" : "";
      sql = `insert into kv.entries as e (key, value, expires_at_ms) values ($1, $2, ${options.keepTtl ? "null" : NEW_EXPIRY})
             on conflict (key) do update set value = excluded.value, expires_at_ms = ${options.keepTtl ? KEPT_EXPIRY : "excluded.expires_at_ms"} ${onlyExpired}`;
    }
    const { rowCount } = await this.db.query(sql, params);
    return { written: rowCount > 0, previous: undefined };
  }

  async mset(entries: readonly (readonly [Uint8Array, Uint8Array])[], ttlMs: number) {
    await this.db.query(
      `insert into kv.entries (key, value, expires_at_ms)
       select decode(k, 'hex'), decode(v, 'hex'), ${NEW_EXPIRY} from unnest($1::text[], $2::text[]) as pairs (k, v)
       on conflict (key) do update set value = excluded.value, expires_at_ms = excluded.expires_at_ms`,
      [entries.map(([key]) => hex(key)), entries.map(([, value]) => hex(value)), ttlMs],
    );
  }

  async delete(keys: readonly Uint8Array[]) {
    const { rows } = await this.db.query<{ count: bigint }>(
      `with deleted as (delete from kv.entries where key in (select decode(k, 'hex') from unnest($1::text[]) k) returning expires_at_ms)
       select count(*) filter (where ${LIVE}) as count from deleted`,
      [keys.map(hex)],
    );
    return Number(rows[0]!.count);
  }

  async ttl(key: Uint8Array) {
    const { rows } = await this.db.query<{ remaining: bigint | null }>(
      `select expires_at_ms - kv.now_ms() as remaining from kv.entries where key = $1 and ${LIVE}`,
      [key],
    );
    if (rows.length === 0) return -2;
    return rows[0]!.remaining === null ? -1 : Number(rows[0]!.remaining);
  }

  async expire(key: Uint8Array, ttlMs: number) {
    if (ttlMs <= 0) return (await this.delete([key])) > 0;
    const { rowCount } = await this.db.query(`update kv.entries set expires_at_ms = kv.now_ms() + $2 where key = $1 and ${LIVE}`, [key, ttlMs]);
    return rowCount > 0;
  }

  async incrBy(key: Uint8Array, delta: bigint) {
    try {
      const { rows } = await this.db.query<{ value: bigint }>("select kv.incr_by($1, $2) as value", [key, delta]);
      return rows[0]!.value;
    } catch (error) {
      if (error instanceof DatabaseError && error.code === "22P02") throw notAnInteger();
      if (error instanceof DatabaseError && error.code === "22003") throw incrementOverflows();
      throw error;
    }
  }

  async scan(prefix: Uint8Array, cursor: Uint8Array, limit: number, includeValues: boolean): Promise<ScanPage> {
    if (cursor.length > 0 && !hasPrefix(cursor, prefix)) throw badCursor("it does not start with the prefix");
    const params: unknown[] = [cursor.length > 0 ? cursor : prefix, limit + 1];
    const conditions = [cursor.length > 0 ? "key > $1" : "key >= $1", LIVE];
    const bound = prefixUpperBound(prefix);
    if (bound) conditions.push(`key < $${params.push(bound)}`);
    const { rows } = await this.db.query<{ key: Uint8Array; value?: Uint8Array }>(
      `select key${includeValues ? ", value" : ""} from kv.entries where ${conditions.join(" and ")} order by key limit $2`,
      params,
    );
    const more = rows.length > limit;
    const entries = rows.slice(0, limit).map((row) => (includeValues ? { key: row.key, value: row.value! } : { key: row.key }));
    return { entries, nextCursor: more ? entries.at(-1)!.key : new Uint8Array() };
  }

  transact<R>(space: StateSpace, key: Uint8Array, decide: Decide<R>): Promise<R> {
    return this.readModifyWrite(stateRow(space, key), decide);
  }

  /**
   * Applies a transition to one row, first without a lock: read the row and
   * the clock (one statement), decide, and if the transition writes, write
   * only if the row is still the one read (one statement). So a transition
   * that writes nothing (a lock that is taken, a rate limit that refuses, an
   * id already seen) is one statement and waits for no one, and one that
   * writes is two. When other writers changed the row in between on every
   * optimistic attempt, the transition queues on the row lock instead
   * (lockedReadModifyWrite): contended writes wait in the database, not in
   * retries from here.
   */
  private async readModifyWrite<R>(row: Row, decide: Decide<R>): Promise<R> {
    for (let attempt = 0; attempt < OPTIMISTIC_ATTEMPTS; attempt++) {
      const { rows } = await this.db.query<Nullable<RowVersion> & { now_ms: bigint }>(row.read, row.params);
      const { value, expires_at_ms, now_ms } = rows[0]!;
      const seen = value === null ? undefined : { value, expires_at_ms };
      const applied = await applyTransition(this.db, row, seen, Number(now_ms), decide);
      if (applied) return applied.result;
    }
    return this.lockedReadModifyWrite(row, decide);
  }

  /**
   * Reads the row FOR UPDATE, decides, writes, in one transaction. When the
   * row is missing, the INSERT may meet a row another transaction inserted
   * meanwhile: then the transaction starts over and reads that row locked.
   */
  private async lockedReadModifyWrite<R>(row: Row, decide: Decide<R>): Promise<R> {
    for (;;) {
      const applied = await this.db.transaction(async (tx) => {
        const { rows } = await tx.query<RowVersion & { now_ms: bigint }>(
          `select value, expires_at_ms, kv.now_ms() as now_ms from ${row.table} where ${row.where} for update`,
          row.params,
        );
        const found = rows[0];
        return applyTransition(tx, row, found, Number(found ? found.now_ms : await nowOf(tx)), decide);
      });
      if (applied) return applied.result;
    }
  }

  /** Deletes expired rows of both tables, `batch` at a time; returns how many. */
  async sweep(batch = 1000): Promise<number> {
    let swept = 0;
    for (const [table, columns] of [["kv.entries", "key"], ["kv.states", "space, key"]]) {
      for (;;) {
        // SKIP LOCKED: a row a writer holds is being revived; FOR UPDATE rechecks the expiry on the newest version.
        const { rowCount } = await this.db.query(
          `delete from ${table} where (${columns}) in (
             select ${columns} from ${table} where expires_at_ms <= kv.now_ms() limit $1 for update skip locked)`,
          [batch],
        );
        swept += rowCount;
        if (rowCount < batch) break;
      }
    }
    return swept;
  }

  async close() {}
}

/** A row as read: its value and expiry, exactly as stored. */
interface RowVersion {
  value: Uint8Array;
  expires_at_ms: bigint | null;
}

/** What an outer join gives where there is no row. */
type Nullable<T> = { [K in keyof T]: T[K] | null };

/** The state a transition decides on: the row while it is live, else undefined. */
function liveState(row: RowVersion | undefined, nowMs: number): Stored | undefined {
  if (!row) return undefined;
  const stored = { value: row.value, expiresAtMs: toNumber(row.expires_at_ms) };
  return isLive(stored, nowMs) ? stored : undefined;
}

/**
 * Decides on the row as `seen` (undefined: absent) and writes the outcome if
 * the row still is as seen, value and expiry alike; undefined when another
 * writer changed it first. An UPDATE or DELETE that meets a concurrent
 * writer's lock waits for it, then checks its condition on the row that
 * writer left.
 */
async function applyTransition<R>(q: Queryable, row: Row, seen: RowVersion | undefined, nowMs: number, decide: Decide<R>): Promise<{ result: R } | undefined> {
  const { result, write } = decide(liveState(seen, nowMs), nowMs);
  if (write === undefined) return { result };
  const next = row.params.length + 1;
  let sql: string;
  let params: unknown[];
  if (write === "delete") {
    if (!seen) return { result };
    sql = `delete from ${row.table} where ${row.where} and value = $${next} and expires_at_ms is not distinct from $${next + 1}::bigint`;
    params = [...row.params, seen.value, seen.expires_at_ms];
  } else if (!seen) {
    sql = `insert into ${row.table} ${row.insert(next)} on conflict do nothing`;
    params = [...row.params, write.value, write.expiresAtMs];
  } else {
    sql = `update ${row.table} set value = $${next}, expires_at_ms = $${next + 1}
           where ${row.where} and value = $${next + 2} and expires_at_ms is not distinct from $${next + 3}::bigint`;
    params = [...row.params, write.value, write.expiresAtMs, seen.value, seen.expires_at_ms];
  }
  const { rowCount } = await q.query(sql, params);
  return rowCount > 0 ? { result } : undefined;
}

async function nowOf(tx: Queryable): Promise<bigint> {
  const { rows } = await tx.query<{ now_ms: bigint }>("select kv.now_ms() as now_ms");
  return rows[0]!.now_ms;
}

function entryRow(key: Uint8Array): Row {
  return {
    table: "kv.entries",
    where: "key = $1",
    read: "select e.value, e.expires_at_ms, n.now_ms from (select kv.now_ms() as now_ms) n left join kv.entries e on e.key = $1",
    params: [key],
    insert: (n) => `(key, value, expires_at_ms) values ($1, $${n}, $${n + 1})`,
  };
}

function stateRow(space: StateSpace, key: Uint8Array): Row {
  return {
    table: "kv.states",
    where: "space = $2 and key = $1",
    read: "select value, expires_at_ms, now_ms from kv.read_state($2, $1)",
    params: [key, space],
    insert: (n) => `(key, space, value, expires_at_ms) values ($1, $2, $${n}, $${n + 1})`,
  };
}
