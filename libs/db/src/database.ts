/** Rows of one statement. */
export interface QueryResult<R> {
  rows: R[];
  /** Rows returned or affected. */
  rowCount: number;
}

/** Anything that runs SQL: the database itself or an open transaction. */
export interface Queryable {
  /** Runs one statement with `$1…` parameters. int8 columns come back as bigint. */
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

/**
 * One small interface over a `pg` pool or an embedded PGlite instance, so
 * that services run unchanged on PostgreSQL and on the embedded database.
 */
export interface Database extends Queryable {
  readonly driver: "postgres" | "pglite";
  /**
   * Runs `work` between BEGIN and COMMIT, or ROLLBACK if it throws. PGlite has
   * one connection: its transactions and queries run one at a time.
   */
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Calls `onNotify` with the payload of every NOTIFY on `channel` (from any
   * connection; on PGlite, from this instance). Resolves once listening;
   * the returned function stops it.
   */
  listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>;
  /** NOTIFY outside a transaction; inside one, `select pg_notify($1, $2)` on the transaction. */
  notify(channel: string, payload: string): Promise<void>;
  /** Closes the pool or the instance; waits for running queries. */
  close(): Promise<void>;
}

export type DatabaseOptions =
  | {
      /** postgres://user:password@host:5432/database */
      url: string;
      /** Pool size. Default 10. */
      maxConnections?: number;
      /** Shown in pg_stat_activity. Default "annals". */
      applicationName?: string;
      /** Server-side statement timeout in ms; 0 or absent for none. */
      statementTimeoutMs?: number;
    }
  | {
      /** An embedded PGlite data directory, created if missing. */
      dataDir: string;
    }
  | {
      /** An embedded PGlite database that lives in memory only. */
      inMemory: true;
    };

/** A database failure annals knows about; `cause` holds the driver's error. */
export class DatabaseError extends Error {
  override name = "DatabaseError";
}
