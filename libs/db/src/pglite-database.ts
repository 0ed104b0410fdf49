import { AsyncLocalStorage } from "node:async_hooks";
import { resolve } from "node:path";
import { PGlite, TransactionAbortedError, type Results, type Transaction } from "@electric-sql/pglite";
import { DatabaseError, toDatabaseError } from "./database-error.js";
import type { Database, Queryable, QueryResult } from "./database.js";
import { pgliteParsers } from "./int8-parsers.js";
import { quoteChannel } from "./notify-channel.js";
import { createDataDir, isDataDir } from "./pglite-data-dir.js";

/**
 * Data directories open in this process. PGlite does not lock its directory;
 * two instances on one would corrupt it.
 */
const openDataDirs = new Set<string>();

/**
 * Opens embedded PGlite: a data directory (created first, in a child
 * process, when it holds none) or a database in memory only. The in-memory
 * one runs initdb in this process (≈ 2–4 s, ≈ 0.7 GB RSS): fine for
 * something short-lived, not for a long-running service.
 */
export async function openPglite(options: { dataDir: string } | { inMemory: true }): Promise<Database> {
  const dataDir = "dataDir" in options ? resolve(options.dataDir) : undefined;
  if (dataDir !== undefined) {
    if (openDataDirs.has(dataDir)) {
      throw new DatabaseError(`the PGlite data directory ${dataDir} is already open in this process: share that Database`);
    }
    // Claimed before the first await, so two concurrent opens cannot both get it.
    openDataDirs.add(dataDir);
  }
  let pglite: PGlite;
  try {
    if (dataDir !== undefined) {
      if (!isDataDir(dataDir)) await createDataDir(dataDir);
      pglite = new PGlite(dataDir, { parsers: pgliteParsers });
    } else {
      pglite = new PGlite({ parsers: pgliteParsers });
    }
    await pglite.waitReady;
  } catch (cause) {
    if (dataDir !== undefined) openDataDirs.delete(dataDir);
    throw toDatabaseError(cause, `cannot open the PGlite database in ${dataDir ?? "memory"}`);
  }
  return createPgliteDatabase(pglite, dataDir);
}

function createPgliteDatabase(pglite: PGlite, dataDir: string | undefined): Database {
  // PGlite is one connection: while a transaction runs every other query
  // waits for it. Using the database itself inside `work` would therefore
  // wait for ever; this marks `work`'s async context so that it is refused
  // (database.test.ts "using the database inside its own transaction is refused").
  const insideTransaction = new AsyncLocalStorage<{ open: boolean }>();
  const refuseInsideTransaction = (what: string) => {
    if (insideTransaction.getStore()?.open) {
      throw new DatabaseError(`${what} on the database inside its own transaction would wait for ever on PGlite: use the transaction's tx.query`);
    }
  };
  let closing: Promise<void> | undefined;

  return {
    driver: "pglite",

    async query(sql, params) {
      refuseInsideTransaction("query");
      return run(pglite, sql, params);
    },

    async transaction(work) {
      refuseInsideTransaction("transaction");
      let workError: { error: unknown } | undefined;
      try {
        return await pglite.transaction(async (pgliteTx) => {
          const scope = { open: true };
          const tx: Queryable = { query: (sql, params) => run(pgliteTx, sql, params) };
          try {
            return await insideTransaction.run(scope, () => work(tx));
          } catch (error) {
            workError = { error };
            throw error;
          } finally {
            scope.open = false;
          }
        });
      } catch (error) {
        if (workError !== undefined && workError.error === error) throw error;
        if (error instanceof TransactionAbortedError) {
          throw new DatabaseError("the transaction was rolled back: a statement in it failed (and its error was caught)", { cause: error, code: "25P02" });
        }
        throw toDatabaseError(error);
      }
    },

    async listen(channel, onNotify) {
      const quoted = quoteChannel(channel);
      refuseInsideTransaction("listen");
      const deliver = (payload: string) => {
        try {
          onNotify(payload);
        } catch (error) {
          // Thrown into PGlite it would fail whichever query carried the notification.
          console.error(`@annals/db (PGlite): a listener on channel ${channel} threw: ${(error as Error).message}`);
        }
      };
      let unlisten: () => Promise<void>;
      try {
        unlisten = await pglite.listen(quoted, deliver);
      } catch (cause) {
        throw toDatabaseError(cause, `cannot LISTEN on channel ${channel}`);
      }
      let stopped = false;
      return async () => {
        if (stopped || pglite.closed) return;
        stopped = true;
        await unlisten();
      };
    },

    async notify(channel, payload) {
      refuseInsideTransaction("notify");
      await run(pglite, "select pg_notify($1, $2)", [channel, payload]);
    },

    close() {
      closing ??= (async () => {
        try {
          if (!pglite.closed) await pglite.close();
        } catch (cause) {
          throw toDatabaseError(cause, `cannot close the PGlite database in ${dataDir ?? "memory"}`);
        } finally {
          if (dataDir !== undefined) openDataDirs.delete(dataDir);
        }
      })();
      return closing;
    },
  };
}

async function run<R>(target: PGlite | Transaction, sql: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
  try {
    if (params === undefined || params.length === 0) {
      // As `pg` does without values: the simple query protocol, which runs
      // several statements (migrations) and reports the last one.
      const results = await target.exec(sql);
      return toQueryResult<R>(results[results.length - 1]);
    }
    // PGlite serialises bigint, Date and Uint8Array parameters by the type the server infers.
    return toQueryResult<R>(await target.query<R>(sql, params as unknown[]));
  } catch (cause) {
    throw toDatabaseError(cause);
  }
}

function toQueryResult<R>(result: Results<R> | Results | undefined): QueryResult<R> {
  if (result === undefined) return { rows: [], rowCount: 0 };
  return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
}
