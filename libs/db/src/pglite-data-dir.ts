// Creating a PGlite data directory runs initdb inside the process that does
// it: 3–4 s, and that process keeps ≈ 0.7 GB RSS afterwards; opening an
// existing one takes ≈ 0.4 s and ≈ 0.2–0.3 GB (measured on the 2-core CI machine).
// So a long-lived process only ever opens; creating is a child's job
// (pglite-data-dir.test.ts "creates a data directory in a child process").
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rename, rm } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { DatabaseError } from "./database-error.js";

/** How long the child process may take to create a data directory, in ms. */
const CREATE_TIMEOUT_MS = 120_000;

/** Whether `dir` holds an initialised PostgreSQL data directory. */
export function isDataDir(dir: string): boolean {
  return existsSync(join(dir, "PG_VERSION"));
}

/**
 * Creates a PGlite data directory at `dir` in a short-lived child process.
 * A missing `dir` is built beside it and renamed into place, so a crash never
 * leaves half a data directory behind and, of two processes creating the same
 * one, the second simply finds it made. An existing `dir` (a mounted volume,
 * say) must be empty; one that holds other files is refused, as initdb does.
 */
export async function createDataDir(dir: string): Promise<void> {
  const target = resolve(dir);
  let entries: string[] | undefined;
  try {
    entries = await readdir(target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new DatabaseError(`cannot read the PGlite data directory ${target}: ${(error as Error).message}`, { cause: error });
    }
  }
  if (entries === undefined) {
    await mkdir(dirname(target), { recursive: true });
    const building = await mkdtemp(`${target}.creating-`);
    try {
      await initdbInChildProcess(building);
      await rename(building, target);
    } catch (error) {
      await rm(building, { recursive: true, force: true });
      if (isDataDir(target)) return;
      throw error;
    }
  } else if (entries.length === 0) {
    await initdbInChildProcess(target);
  } else if (!isDataDir(target)) {
    throw new DatabaseError(
      `${target} is not empty but holds no PostgreSQL data directory (no PG_VERSION): point dataDir at an empty or new directory, e.g. a subdirectory`,
    );
  }
}

async function initdbInChildProcess(dir: string): Promise<void> {
  const script = `
    const { PGlite } = await import(${JSON.stringify(import.meta.resolve("@electric-sql/pglite"))});
    const db = new PGlite(${JSON.stringify(dir)});
    await db.waitReady;
    await db.close();
  `;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-2000);
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), CREATE_TIMEOUT_MS);
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.once("error", (error) => resolve({ code: null, signal: null, error }));
    child.once("close", (code, signal) => resolve({ code, signal }));
  }).finally(() => clearTimeout(timer));
  if (exit.code !== 0 || !isDataDir(dir)) {
    const why = exit.error?.message ?? (stderr.trim() || (exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`));
    throw new DatabaseError(`cannot create a PGlite data directory in ${dir}: ${why}`, exit.error ? { cause: exit.error } : undefined);
  }
}
