import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { PGlite, types as pgliteTypes } from "@electric-sql/pglite";
import { DatabaseError, type Database, type Queryable } from "./database.js";

const PARSERS = { [pgliteTypes.INT8]: (value: string) => BigInt(value) };

/** Whether a directory holds an initialised PostgreSQL data directory. */
export function isDataDir(dir: string): boolean {
  return existsSync(join(dir, "PG_VERSION"));
}

/**
 * Creates a new PGlite data directory in a short-lived child process.
 * Creating one runs initdb (3–4 s) and leaves the process ≈ 0.7 GB larger;
 * opening an existing one takes ≈ 0.4 s and ≈ 160 MB (DESIGN.md, "Runtime
 * choices"), so the long-lived process only ever opens.
 */
export async function createDataDir(dir: string): Promise<void> {
  const absolute = resolve(dir);
  await mkdir(absolute, { recursive: true });
  const script = `
    const { PGlite } = await import(${JSON.stringify(import.meta.resolve("@electric-sql/pglite"))});
    const db = new PGlite(${JSON.stringify(absolute)});
    await db.waitReady;
    await db.close();
  `;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, "exit")) as [number | null];
  if (code !== 0 || !isDataDir(absolute)) {
    throw new DatabaseError(`cannot create a PGlite data directory in ${absolute}: ${stderr.trim() || `exit code ${code}`}`);
  }
}

/** Opens an embedded database: a data directory (created if missing) or memory only. */
export async function openPglite(options: { dataDir: string } | { inMemory: true }): Promise<Database> {
  let db: PGlite;
  try {
    if ("dataDir" in options) {
      if (!isDataDir(options.dataDir)) await createDataDir(options.dataDir);
      db = new PGlite(resolve(options.dataDir), { parsers: PARSERS });
    } else {
      db = new PGlite({ parsers: PARSERS });
    }
    await db.waitReady;
  } catch (cause) {
    if (cause instanceof DatabaseError) throw cause;
    const where = "dataDir" in options ? options.dataDir : "memory";
    throw new DatabaseError(`cannot open the PGlite database in ${where}: ${(cause as Error).message}`, { cause });
  }
  const run: Queryable["query"] = async (sql, params) => {
    const result = await db.query(sql, params ? params.map(serialiseParam) : undefined);
    return { rows: result.rows as never[], rowCount: result.affectedRows ?? result.rows.length };
  };
  return {
    driver: "pglite",
    query: run,
    exec: async (sql) => void (await db.exec(sql)),
    transaction: (work) =>
      db.transaction((tx) =>
        work({
          query: async (sql, params) => {
            const result = await tx.query(sql, params ? params.map(serialiseParam) : undefined);
            return { rows: result.rows as never[], rowCount: result.affectedRows ?? result.rows.length };
          },
          exec: async (sql) => void (await tx.exec(sql)),
        }),
      ),
    listen: async (channel, onNotify) => {
      const stop = await db.listen(channel, onNotify);
      return async () => {
        if (!db.closed) await stop();
      };
    },
    async notify(channel, payload) {
      await db.query("select pg_notify($1, $2)", [channel, payload]);
    },
    async close() {
      if (!db.closed) await db.close();
    },
  };
}

/** bigint parameters travel as decimal text, which PostgreSQL casts to int8 or numeric. */
function serialiseParam(value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}
