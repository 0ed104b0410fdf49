// The one small interface services code against, whether the state lives in
// PostgreSQL (a `pg` pool) or in embedded PGlite.
//
// Values, the same on both drivers (database.test.ts "value mapping"):
//   int8 (bigint), int8[]   → bigint, bigint[]   (sequence numbers never lose precision)
//   int2, int4, float4/8    → number
//   numeric                 → string (exact; parse it where you need arithmetic)
//   timestamptz, timestamp  → Date (millisecond precision; keep microseconds in an int8)
//   bytea                   → Uint8Array (a Buffer on postgres)
//   json, jsonb             → parsed value
// Parameters: bigint, number, string, boolean, Date, Uint8Array and null pass as
// they are. Pass JSON as `JSON.stringify(value)` with a `::jsonb` cast: `pg` turns
// a JS array into a Postgres array literal, not JSON, and neither driver
// serialises a bigint inside an object.

/** Rows of one statement. */
export interface QueryResult<R> {
  rows: R[];
  /** Rows returned (SELECT) or changed (INSERT, UPDATE, DELETE); 0 for other commands. */
  rowCount: number;
}

/** Anything that runs SQL: the database itself or an open transaction. */
export interface Queryable {
  /**
   * Runs one statement with `$1…` parameters. Without `params`, `sql` may
   * hold several statements separated by semicolons (a migration, say); the
   * result is then the last statement's. Driver failures reject with a
   * `DatabaseError` whose `code` is the SQLSTATE.
   */
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
}

/** Options for `Database.listen`. */
export interface ListenOptions {
  /**
   * Called after the dedicated LISTEN connection was lost and re-established
   * (postgres only; PGlite never loses its connection). Notifications sent
   * meanwhile are gone, so re-read whatever they would have announced.
   */
  onReconnect?: () => void;
}

/**
 * A `pg` pool or an embedded PGlite instance behind one interface, so that
 * services run unchanged on PostgreSQL and on the embedded database.
 */
export interface Database extends Queryable {
  readonly driver: "postgres" | "pglite";
  /**
   * BEGIN … COMMIT (ROLLBACK on throw; the error thrown by `work` is
   * rethrown as it is). Use `tx` inside `work`, never the database itself.
   * On PGlite transactions are serialised (one connection): a query outside
   * a transaction waits for a running transaction, and using the database
   * itself inside `work` is refused with a DatabaseError instead of waiting
   * for ever. A transaction whose statement failed but whose `work` swallowed
   * the error does not commit: it rejects with a DatabaseError.
   */
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * LISTEN on a channel; `onNotify` gets each NOTIFY payload (from any
   * connection; on PGlite, from this instance). Resolves once listening.
   * Returns the function that stops it. On postgres one dedicated client
   * carries every listen of this database and reconnects with backoff when
   * it drops, then calls `options.onReconnect`. A channel name is 1–63
   * characters without `"`, case-sensitive.
   */
  listen(channel: string, onNotify: (payload: string) => void, options?: ListenOptions): Promise<() => Promise<void>>;
  /**
   * pg_notify outside a transaction. Inside one use
   * `tx.query("select pg_notify($1, $2)", [channel, payload])`, so that the
   * notification is sent on COMMIT and never for a rolled-back transaction.
   */
  notify(channel: string, payload: string): Promise<void>;
  /** Stops the listens and closes the pool or the instance. Safe to call twice. */
  close(): Promise<void>;
}

/** Where the data lives: a PostgreSQL server, a PGlite data directory, or memory. */
export type DatabaseOptions = PostgresOptions | { dataDir: string } | { inMemory: true };

/** A PostgreSQL server, reached through a `pg` pool. */
export interface PostgresOptions {
  /** `postgres://user:password@host:5432/database` (or `postgresql://`). */
  url: string;
  /** Most connections the pool opens. Default 10 (plus one for all listens). */
  maxConnections?: number;
  /** Shown in pg_stat_activity; the listen connection adds ":listen". Default "annals". */
  applicationName?: string;
  /** Server-side statement timeout in milliseconds. Default: none. */
  statementTimeoutMs?: number;
  /**
   * Errors no caller is waiting for: an idle pooled connection dropping, the
   * listen connection dropping or failing to reconnect, a listen callback
   * throwing. They never crash the process. Default: one line on stderr.
   */
  onBackgroundError?: (error: Error) => void;
}
