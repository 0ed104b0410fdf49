// Databases for tests, exported as "@annals/db/testing". With
// ANNALS_TEST_DATABASE_URL a test gets its own database on that PostgreSQL
// server; without it, its own copy of a PGlite template made once per run.
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { cp, mkdtemp, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { DatabaseError, type Database, type DatabaseOptions } from "./database.js";
import { openDatabase } from "./open.js";
import { createDataDir, isDataDir } from "./pglite.js";
import { describeUrl } from "./postgres.js";

export interface TestDatabase {
  /** Options for openDatabase. */
  options: DatabaseOptions;
  /** The same as environment variables, for a child process: DATABASE_URL or ANNALS_DATA_DIR. */
  env: Record<string, string>;
  /** Opens a handle; drop() closes every handle opened here. */
  open(): Promise<Database>;
  /** Closes the handles and removes the database. */
  drop(): Promise<void>;
}

/** Which kind of database createTestDatabase gives in this environment. */
export function testDatabaseTarget(): "postgres" | "pglite" {
  if (process.env.ANNALS_TEST_DATABASE_URL) return "postgres";
  if (process.env.ANNALS_TEST_REQUIRE_POSTGRES === "1") {
    throw new DatabaseError("ANNALS_TEST_REQUIRE_POSTGRES=1 but ANNALS_TEST_DATABASE_URL is not set: refusing to fall back to PGlite");
  }
  return "pglite";
}

/** A fresh, empty database for one test (file); `label` shows up in its name. */
export async function createTestDatabase(label = "test"): Promise<TestDatabase> {
  const handles: Database[] = [];
  const closeHandles = async () => {
    for (const handle of handles.splice(0)) await handle.close();
  };
  const suffix = `${label.toLowerCase().replace(/[^a-z0-9_]/g, "_").slice(0, 30)}_${process.pid}_${randomBytes(4).toString("hex")}`;

  if (testDatabaseTarget() === "postgres") {
    const adminUrl = process.env.ANNALS_TEST_DATABASE_URL!;
    const name = `annals_test_${suffix}`;
    await withAdmin(adminUrl, (admin) => admin.query(`create database ${name}`));
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    const options = { url: url.toString(), maxConnections: 5 };
    return {
      options,
      env: { DATABASE_URL: options.url },
      open: async () => {
        const handle = await openDatabase(options);
        handles.push(handle);
        return handle;
      },
      drop: async () => {
        await closeHandles();
        await withAdmin(adminUrl, (admin) => admin.query(`drop database if exists ${name} with (force)`));
      },
    };
  }

  const dir = await mkdtemp(join(tmpdir(), `annals-test-${suffix}-`));
  await cp(await pgliteTemplate(), dir, { recursive: true });
  const options = { dataDir: dir };
  return {
    options,
    env: { ANNALS_DATA_DIR: dir },
    open: async () => {
      const handle = await openDatabase(options);
      handles.push(handle);
      return handle;
    },
    drop: async () => {
      await closeHandles();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function withAdmin<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
  } catch (cause) {
    throw new DatabaseError(`ANNALS_TEST_DATABASE_URL names ${describeUrl(url)}, which does not answer: ${(cause as Error).message}`, { cause });
  }
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

let template: Promise<string> | undefined;

/**
 * One PGlite data directory per machine and PGlite version, made once by a
 * child process and copied for every test database: initdb takes seconds,
 * a copy milliseconds. Built in a temporary directory and renamed into place,
 * so concurrent test processes never see a half-made template.
 */
function pgliteTemplate(): Promise<string> {
  return (template ??= (async () => {
    const dir = join(tmpdir(), "annals-pglite-template-0.5.16");
    if (isDataDir(dir)) return dir;
    const building = `${dir}.${process.pid}.${randomBytes(4).toString("hex")}`;
    await createDataDir(building);
    try {
      await rename(building, dir);
    } catch (error) {
      // Another process finished first; its template is as good as ours.
      await rm(building, { recursive: true, force: true });
      if (!existsSync(dir)) throw error;
    }
    return dir;
  })());
}
