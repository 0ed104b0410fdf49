import pg from "pg";
import { DatabaseError, type Database, type Queryable, type QueryResult } from "./database.js";

const INT8_OID = 20;

/**
 * Type parsers for this pool only (never the process-wide pg.types): int8
 * becomes bigint, as it does on PGlite, so sequence numbers never lose
 * precision and code sees one type on both drivers.
 */
const types = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === INT8_OID && format !== "binary" ? (value: string) => BigInt(value) : pg.types.getTypeParser(oid, format as "text")) as typeof pg.types.getTypeParser,
};

export interface PostgresOptions {
  url: string;
  maxConnections?: number;
  applicationName?: string;
  statementTimeoutMs?: number;
}

/** Opens a pool and checks that the server answers. */
export async function openPostgres(options: PostgresOptions): Promise<Database> {
  const config: pg.PoolConfig = {
    connectionString: options.url,
    max: options.maxConnections ?? 10,
    application_name: options.applicationName ?? "annals",
    types,
    connectionTimeoutMillis: 10_000,
    ...(options.statementTimeoutMs ? { statement_timeout: options.statementTimeoutMs } : {}),
  };
  const pool = new pg.Pool(config);
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on("error", () => undefined);
  try {
    await pool.query("select 1");
  } catch (cause) {
    await pool.end().catch(() => undefined);
    throw new DatabaseError(`cannot connect to PostgreSQL at ${describeUrl(options.url)}: ${(cause as Error).message}`, { cause });
  }
  const listener = createListener(config);

  const run = async <R>(client: pg.Pool | pg.PoolClient, sql: string, params?: readonly unknown[]): Promise<QueryResult<R>> => {
    const result = await client.query(sql, params as unknown[] | undefined);
    return { rows: result.rows as R[], rowCount: result.rowCount ?? result.rows.length };
  };

  return {
    driver: "postgres",
    query: (sql, params) => run(pool, sql, params),
    // Without parameters pg uses the simple query protocol, which runs several statements.
    exec: async (sql) => void (await pool.query(sql)),
    async transaction(work) {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        await client.query("begin");
        const tx: Queryable = {
          query: (sql, params) => run(client, sql, params),
          exec: async (sql) => void (await client.query(sql)),
        };
        const result = await work(tx);
        await client.query("commit");
        return result;
      } catch (error) {
        await client.query("rollback").catch((rollbackError: Error) => (broken = rollbackError));
        throw error;
      } finally {
        // A client whose rollback failed is in an unknown state: destroy it.
        client.release(broken);
      }
    },
    listen: (channel, onNotify) => listener.listen(channel, onNotify),
    async notify(channel, payload) {
      await pool.query("select pg_notify($1, $2)", [channel, payload]);
    },
    async close() {
      await listener.close();
      await pool.end();
    },
  };
}

/**
 * One dedicated connection for every LISTEN of a pool. If it drops, it is
 * re-established with backoff and every channel is listened to again;
 * notifications sent meanwhile are lost, which is why readers re-read by
 * sequence number rather than trust notifications alone.
 */
function createListener(config: pg.PoolConfig) {
  const channels = new Map<string, Set<(payload: string) => void>>();
  let client: pg.Client | undefined;
  let connecting: Promise<pg.Client> | undefined;
  let closed = false;

  const connect = (): Promise<pg.Client> =>
    (connecting ??= (async () => {
      for (let attempt = 0; ; attempt++) {
        const next = new pg.Client(config);
        try {
          await next.connect();
          next.on("notification", (message) => {
            for (const callback of channels.get(message.channel) ?? []) callback(message.payload ?? "");
          });
          next.on("error", () => {
            if (client === next) client = undefined;
            connecting = undefined;
            if (!closed && channels.size > 0) void connect().catch(() => undefined);
          });
          for (const channel of channels.keys()) await next.query(`listen ${quoteIdent(channel)}`);
          client = next;
          return next;
        } catch (error) {
          await next.end().catch(() => undefined);
          if (closed || attempt >= 30) {
            connecting = undefined;
            throw error;
          }
          await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 100 * 2 ** attempt)));
        }
      }
    })());

  return {
    async listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>> {
      const active = client ?? (await connect());
      let callbacks = channels.get(channel);
      if (!callbacks) {
        channels.set(channel, (callbacks = new Set()));
        await active.query(`listen ${quoteIdent(channel)}`);
      }
      callbacks.add(onNotify);
      return async () => {
        callbacks.delete(onNotify);
        if (callbacks.size === 0 && channels.get(channel) === callbacks) {
          channels.delete(channel);
          await client?.query(`unlisten ${quoteIdent(channel)}`).catch(() => undefined);
        }
      };
    },
    async close() {
      closed = true;
      channels.clear();
      await client?.end().catch(() => undefined);
    },
  };
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
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
