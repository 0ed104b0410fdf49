import pg from "pg";
import { DatabaseError, toDatabaseError } from "./database-error.js";
import type { Database, PostgresOptions, Queryable, QueryResult } from "./database.js";
import { pgTypes } from "./int8-parsers.js";
import { createPostgresListener } from "./postgres-listener.js";

/** How long opening a connection may take before it fails, in ms. */
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * Opens a `pg` pool on `options.url` and checks that the server answers, so
 * a wrong URL fails at startup rather than on the first request.
 */
export async function openPostgres(options: PostgresOptions): Promise<Database> {
  const where = describeUrl(options.url);
  const url = parsePostgresUrl(options.url);
  const maxConnections = options.maxConnections ?? 10;
  if (!Number.isInteger(maxConnections) || maxConnections < 1) {
    throw new DatabaseError(`invalid maxConnections ${maxConnections}: expected an integer ≥ 1`);
  }
  const statementTimeoutMs = options.statementTimeoutMs;
  if (statementTimeoutMs !== undefined && !(Number.isInteger(statementTimeoutMs) && statementTimeoutMs >= 0)) {
    throw new DatabaseError(`invalid statementTimeoutMs ${statementTimeoutMs}: expected an integer ≥ 0 (milliseconds)`);
  }
  const applicationName = options.applicationName ?? "annals";
  const onBackgroundError = options.onBackgroundError ?? ((error: Error) => console.error(`@annals/db (${where}): ${error.message}`));

  const client: pg.ClientConfig = {
    connectionString: url,
    application_name: applicationName,
    types: pgTypes,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    // Notices a half-open TCP connection (a vanished server or NAT entry), most of all the listen connection's.
    keepAlive: true,
    ...(statementTimeoutMs ? { statement_timeout: statementTimeoutMs } : {}),
  };
  const pool = new pg.Pool({ ...client, max: maxConnections });
  // An idle pooled connection that drops emits 'error' on the pool; unhandled,
  // that would crash the process. The pool replaces the connection by itself.
  pool.on("error", (error) => onBackgroundError(toDatabaseError(error, "an idle pooled connection failed")));
  try {
    await pool.query("select 1");
  } catch (cause) {
    await pool.end().catch(() => undefined);
    throw toDatabaseError(cause, `cannot connect to PostgreSQL at ${where}`);
  }

  const listener = createPostgresListener({
    client: { ...client, application_name: `${applicationName}:listen` },
    onBackgroundError,
  });
  let closing: Promise<void> | undefined;

  return {
    driver: "postgres",
    query: (sql, params) => run(pool, sql, params),

    async transaction(work) {
      let connection: pg.PoolClient;
      try {
        connection = await pool.connect();
      } catch (cause) {
        throw toDatabaseError(cause, "cannot start a transaction");
      }
      // A checked-out connection has no error listener (pg-pool removes its
      // idle one); one that drops while `work` awaits something else would
      // otherwise crash the process. The next query on it rejects instead.
      let lostWith: Error | undefined;
      const onError = (error: Error) => (lostWith = error);
      connection.on("error", onError);
      let discard: Error | undefined;
      let finished = false;
      try {
        await run(connection, "begin");
        const tx: Queryable = {
          // After COMMIT the connection belongs to someone else: a kept `tx` must not reach it.
          query: async (sql, params) => {
            if (finished) throw new DatabaseError("the transaction is finished: tx.query after transaction() returned");
            return run(connection, sql, params);
          },
        };
        const result = await work(tx);
        const commit = await connection.query("commit").catch((cause: unknown) => {
          throw toDatabaseError(cause);
        });
        // PostgreSQL answers COMMIT of a failed transaction with ROLLBACK, not an error.
        if (commit.command === "ROLLBACK") {
          throw new DatabaseError("the transaction was rolled back: a statement in it failed (and its error was caught)", { code: "25P02" });
        }
        return result;
      } catch (error) {
        if (lostWith === undefined) {
          await connection.query("rollback").catch((rollbackError: Error) => (discard = rollbackError));
        } else {
          discard = lostWith;
        }
        throw error;
      } finally {
        finished = true;
        connection.off("error", onError);
        // A connection in an unknown state is destroyed, not reused.
        connection.release(discard ?? lostWith);
      }
    },

    listen: (channel, onNotify, listenOptions) => listener.listen(channel, onNotify, listenOptions),

    async notify(channel, payload) {
      await run(pool, "select pg_notify($1, $2)", [channel, payload]);
    },

    close() {
      closing ??= (async () => {
        await listener.close();
        await pool.end();
      })();
      return closing;
    },
  };
}

async function run<R>(client: pg.Pool | pg.PoolClient, sql: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
  let result: pg.QueryResult | pg.QueryResult[];
  try {
    // Without values pg uses the simple query protocol, which runs several statements.
    result = (await client.query(sql, params as unknown[] | undefined)) as pg.QueryResult | pg.QueryResult[];
  } catch (cause) {
    throw toDatabaseError(cause);
  }
  // Several statements give one result each; callers get the last, as on PGlite.
  const last = Array.isArray(result) ? result[result.length - 1] : result;
  if (last === undefined) return { rows: [], rowCount: 0 };
  return { rows: last.rows as R[], rowCount: last.rowCount ?? 0 };
}

function parsePostgresUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    throw new DatabaseError("invalid url: expected postgres://user:password@host:5432/database", { cause });
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    throw new DatabaseError(`invalid url: expected the postgres:// or postgresql:// scheme, got ${parsed.protocol}//`);
  }
  return url;
}

/** The URL without its password, for messages. */
export function describeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(an unparseable URL)";
  }
}
