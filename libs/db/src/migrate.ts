import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { DatabaseError, toDatabaseError } from "./database-error.js";
import type { Database } from "./database.js";

/** One migration: its file name, which orders it, and its SQL. */
export interface Migration {
  /** The file name, e.g. "0001_init.sql"; migrations apply in name order. */
  id: string;
  /** One or more statements, run in the migration's schema; no BEGIN/COMMIT of its own. */
  sql: string;
}

/** Reads the `*.sql` files of a directory (not its subdirectories), sorted by name. */
export async function loadMigrations(dir: string): Promise<Migration[]> {
  let names: string[];
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    names = entries.filter((entry) => entry.isFile() && entry.name.endsWith(".sql")).map((entry) => entry.name);
  } catch (cause) {
    throw new DatabaseError(`cannot read migrations from ${dir}: ${(cause as Error).message}`, { cause });
  }
  names.sort(compareIds);
  return Promise.all(names.map(async (id) => ({ id, sql: await readFile(join(dir, id), "utf8") })));
}

export interface MigrateOptions {
  /** The schema that holds the service's tables and its `schema_migrations` record: lower case, digits, `_`. */
  schema: string;
  /** All the service's migrations, applied or not; applied in `id` order. */
  migrations: readonly Migration[];
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Applies the migrations a schema has not had yet, in one transaction, and
 * returns their ids. Creates the schema and its `schema_migrations` table
 * when missing. The transaction first takes an advisory lock per schema, so
 * replicas starting at once take turns: the second waits, then finds
 * everything applied (migrate.test.ts "concurrent migrate"). Each migration
 * runs with `search_path` set to the schema, so it creates its tables there.
 * A migration whose SQL changed after it was applied is refused, naming it
 * (its sha256 is recorded): add a new migration instead. A migration that
 * fails rolls back every migration of this call. Migrations that cannot run
 * inside a transaction (CREATE INDEX CONCURRENTLY) are not supported.
 */
export async function migrate(db: Database, options: MigrateOptions): Promise<{ applied: string[] }> {
  const { schema } = options;
  if (!SCHEMA_NAME.test(schema)) {
    throw new DatabaseError(`invalid schema name ${JSON.stringify(schema)}: expected lower-case letters, digits and _ (at most 63)`);
  }
  const migrations = [...options.migrations].sort((a, b) => compareIds(a.id, b.id));
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i]!.id === migrations[i - 1]!.id) throw new DatabaseError(`migration ${schema}/${migrations[i]!.id} is listed twice`);
  }
  const checksums = new Map(migrations.map((migration) => [migration.id, sha256(migration.sql)]));
  const table = `"${schema}".schema_migrations`;

  return db.transaction(async (tx) => {
    await tx.query("select pg_advisory_xact_lock(hashtext($1))", [`annals.migrate.${schema}`]);
    await tx.query(`create schema if not exists "${schema}"`);
    await tx.query(
      `create table if not exists ${table} (
         id text primary key,
         checksum text not null,
         applied_at timestamptz default now()
       )`,
    );
    const { rows } = await tx.query<{ id: string; checksum: string }>(`select id, checksum from ${table}`);
    const recorded = new Map(rows.map((row) => [row.id, row.checksum]));
    // Check every applied migration before applying anything new.
    for (const migration of migrations) {
      const was = recorded.get(migration.id);
      const is = checksums.get(migration.id)!;
      if (was !== undefined && was !== is) {
        throw new DatabaseError(
          `migration ${schema}/${migration.id} was edited after it was applied (recorded sha256 ${was.slice(0, 12)}…, file ${is.slice(0, 12)}…): restore it and add a new migration instead`,
        );
      }
    }
    const applied: string[] = [];
    for (const migration of migrations) {
      if (recorded.has(migration.id)) continue;
      try {
        // Again for each one, in case the one before changed it.
        await tx.query(`set local search_path to "${schema}"`);
        await tx.query(migration.sql);
      } catch (cause) {
        throw toDatabaseError(cause, `migration ${schema}/${migration.id} failed`);
      }
      await tx.query(`insert into ${table} (id, checksum) values ($1, $2)`, [migration.id, checksums.get(migration.id)!]);
      applied.push(migration.id);
    }
    return { applied };
  });
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** Name order by code unit, as the file names sort in a listing; not locale-dependent. */
function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
