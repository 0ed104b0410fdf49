// Databases for tests, exported as "@annals/db/testing".
//
// Environment (read here only, never by the library itself):
//   ANNALS_TEST_DATABASE_URL       every test database is a new database on this
//                                  PostgreSQL server (postgres://user@host:5432/db;
//                                  the user may CREATE and DROP DATABASE);
//                                  unset: a copy of a PGlite template.
//   ANNALS_TEST_REQUIRE_POSTGRES=1 refuse to fall back to PGlite, so a CI job whose
//                                  database variable went missing fails loudly.
import { randomBytes } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { cp, mkdir, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { DatabaseError } from "./database-error.js";
import type { Database, DatabaseOptions } from "./database.js";
import { openDatabase } from "./open-database.js";
import { createDataDir, isDataDir } from "./pglite-data-dir.js";
import { describeUrl } from "./postgres-database.js";

export interface TestDatabase {
  /** Options for openDatabase: `{ url }` on postgres, `{ dataDir }` on PGlite. */
  options: DatabaseOptions;
  /** The same for a child process: DATABASE_URL=… or ANNALS_DATA_DIR=… */
  env: Record<string, string>;
  /** Opens a handle; drop() closes every handle opened here. On PGlite one handle at a time. */
  open(): Promise<Database>;
  /** Closes the handles opened here and removes the database (stop child processes first). */
  drop(): Promise<void>;
}

/** Which kind of database createTestDatabase gives in this environment. */
export function testDatabaseTarget(): "postgres" | "pglite" {
  if (process.env.ANNALS_TEST_DATABASE_URL) return "postgres";
  if (process.env.ANNALS_TEST_REQUIRE_POSTGRES === "1") {
    throw new DatabaseError(
      "ANNALS_TEST_REQUIRE_POSTGRES=1 but ANNALS_TEST_DATABASE_URL is not set: refusing to test on PGlite instead of PostgreSQL",
    );
  }
  return "pglite";
}

/**
 * A new, empty database of its own for one test (or test file). `label`
 * (default "test") shows up in its name, to tell leftovers apart. Never skips:
 * if ANNALS_TEST_DATABASE_URL names a server that does not answer, it throws.
 */
export async function createTestDatabase(label = "test"): Promise<TestDatabase> {
  const target = testDatabaseTarget();
  const safeLabel = label.toLowerCase().replace(/[^a-z0-9_]/g, "_").slice(0, 20);
  const handles = new Set<Database>();
  const track = async (open: Promise<Database>) => {
    const handle = await open;
    handles.add(handle);
    return handle;
  };
  const closeHandles = async () => {
    const closing = [...handles].map((handle) => handle.close());
    handles.clear();
    await Promise.allSettled(closing);
  };
  if (target === "postgres") return createPostgresTestDatabase(process.env.ANNALS_TEST_DATABASE_URL!, safeLabel, track, closeHandles);

  const dir = await mkdtemp(join(tmpdir(), `annals-test-${safeLabel}-`));
  removeAtExit(dir);
  await cp(await pgliteTemplate(), dir, { recursive: true });
  const options = { dataDir: dir };
  let dropping: Promise<void> | undefined;
  return {
    options,
    env: { ANNALS_DATA_DIR: dir },
    open: () => track(openDatabase(options)),
    drop: () =>
      (dropping ??= (async () => {
        await closeHandles();
        await rm(dir, { recursive: true, force: true });
        undropped.delete(dir);
      })()),
  };
}

/** PGlite test directories not dropped yet. */
const undropped = new Set<string>();
let exitHandlerInstalled = false;

/** A test that dies before drop() still leaves no 40 MB directory behind. */
function removeAtExit(dir: string): void {
  if (!exitHandlerInstalled) {
    exitHandlerInstalled = true;
    process.once("exit", () => {
      for (const left of undropped) rmSync(left, { recursive: true, force: true });
    });
  }
  undropped.add(dir);
}

async function createPostgresTestDatabase(
  adminUrl: string,
  label: string,
  track: (open: Promise<Database>) => Promise<Database>,
  closeHandles: () => Promise<void>,
): Promise<TestDatabase> {
  let url: URL;
  try {
    url = new URL(adminUrl);
  } catch (cause) {
    throw new DatabaseError("ANNALS_TEST_DATABASE_URL is not a URL: expected postgres://user@host:5432/database", { cause });
  }
  const name = `annals_test_${label}_${process.pid}_${randomBytes(4).toString("hex")}`;
  await withAdmin(adminUrl, (admin) => admin.query(`create database "${name}"`));
  url.pathname = `/${name}`;
  const options = { url: url.toString(), maxConnections: 5, applicationName: `annals-test-${label}` };
  let dropping: Promise<void> | undefined;
  return {
    options,
    env: { DATABASE_URL: options.url },
    open: () => track(openDatabase(options)),
    drop: () =>
      (dropping ??= (async () => {
        await closeHandles();
        // FORCE ends connections a test left open (a child process that did not stop).
        await withAdmin(adminUrl, (admin) => admin.query(`drop database if exists "${name}" with (force)`));
      })()),
  };
}

async function withAdmin<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000, application_name: "annals-test-admin" });
  try {
    await client.connect();
  } catch (cause) {
    await client.end().catch(() => undefined);
    throw new DatabaseError(
      `ANNALS_TEST_DATABASE_URL=${describeUrl(url)} does not answer (${(cause as Error).message}): start that PostgreSQL server, or unset the variable to test on PGlite`,
      { cause },
    );
  }
  try {
    return await work(client);
  } catch (cause) {
    throw new DatabaseError(`on the ANNALS_TEST_DATABASE_URL server: ${(cause as Error).message}`, { cause });
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** How long a template build may hold its lock before another process takes over, in ms. */
const TEMPLATE_LOCK_STALE_MS = 180_000;

let template: Promise<string> | undefined;

/**
 * One PGlite data directory per machine and PGlite version, made once by a
 * child process and copied for every test database: initdb takes seconds and
 * ≈ 0.7 GB, a copy well under a second. createDataDir builds it beside its
 * place and renames it in, so no process ever copies a half-made template;
 * a lock directory keeps test processes that start together from each
 * running initdb at once. Nothing ever opens the template itself.
 */
function pgliteTemplate(): Promise<string> {
  template ??= (async () => {
    const dir = join(tmpdir(), `annals-pglite-template-${pgliteVersion()}`);
    const lock = `${dir}.lock`;
    const deadline = Date.now() + 2 * TEMPLATE_LOCK_STALE_MS;
    while (!isDataDir(dir)) {
      if (Date.now() > deadline) throw new DatabaseError(`gave up waiting for the PGlite template ${dir} (lock ${lock})`);
      try {
        await mkdir(lock);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
        // Another process is building it; a lock left by a killed process goes stale.
        const since = await stat(lock).then((info) => Date.now() - info.mtimeMs, () => 0);
        if (since > TEMPLATE_LOCK_STALE_MS) await rm(lock, { recursive: true, force: true });
        else await new Promise((resolve) => setTimeout(resolve, 200));
        continue;
      }
      try {
        if (!isDataDir(dir)) await createDataDir(dir);
      } finally {
        await rm(lock, { recursive: true, force: true });
      }
    }
    return dir;
  })();
  // A failed build is retried by the next test rather than cached.
  template.catch(() => (template = undefined));
  return template;
}

function pgliteVersion(): string {
  const packageJson = new URL("../package.json", import.meta.resolve("@electric-sql/pglite"));
  return (JSON.parse(readFileSync(fileURLToPath(packageJson), "utf8")) as { version: string }).version;
}
