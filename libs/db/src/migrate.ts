import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { DatabaseError, type Database } from "./database.js";

/** One migration: its file name (the order) and its SQL. */
export interface Migration {
  /** The file name, e.g. "0001_logs_and_entries.sql"; migrations apply in name order. */
  id: string;
  sql: string;
}

/** Reads the `*.sql` files of a directory, sorted by name. */
export async function loadMigrations(dir: string): Promise<Migration[]> {
  const names = (await readdir(dir)).filter((name) => name.endsWith(".sql")).sort();
  return Promise.all(names.map(async (id) => ({ id, sql: await readFile(join(dir, id), "utf8") })));
}

export interface MigrateOptions {
  /** The schema that holds the service's tables and its `schema_migrations` record. */
  schema: string;
  migrations: readonly Migration[];
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Applies the migrations not yet applied to a schema, in one transaction.
 * A transaction-scoped advisory lock per schema makes replicas that start at
 * once take turns: the second waits, then finds everything applied. A
 * migration whose text changed after it was applied is refused.
 */
export async function migrate(db: Database, options: MigrateOptions): Promise<{ applied: string[] }> {
  const { schema, migrations } = options;
  if (!SCHEMA_NAME.test(schema)) throw new DatabaseError(`invalid schema name "${schema}"`);
  try {
    return await db.transaction(async (tx) => {
      await tx.query("select pg_advisory_xact_lock(hashtext($1))", [`annals.migrate.${schema}`]);
      await tx.query(`create schema if not exists ${schema}`);
      await tx.query(
        `create table if not exists ${schema}.schema_migrations (
           id text primary key,
           checksum text not null,
           applied_at timestamptz not null default now()
         )`,
      );
      const { rows } = await tx.query<{ id: string; checksum: string }>(`select id, checksum from ${schema}.schema_migrations`);
      const done = new Map(rows.map((row) => [row.id, row.checksum]));
      const applied: string[] = [];
      await tx.query(`set local search_path to ${schema}, public`);
      for (const migration of migrations) {
        const checksum = createHash("sha256").update(migration.sql).digest("hex");
        const recorded = done.get(migration.id);
        if (recorded !== undefined) {
          if (recorded !== checksum) {
            throw new DatabaseError(
              `migration ${schema}/${migration.id} was changed after it was applied (recorded sha256 ${recorded.slice(0, 12)}…, file ${checksum.slice(0, 12)}…); add a new migration instead`,
            );
          }
          continue;
        }
        await tx.exec(migration.sql);
        await tx.query(`insert into ${schema}.schema_migrations (id, checksum) values ($1, $2)`, [migration.id, checksum]);
        applied.push(migration.id);
      }
      return { applied };
    });
  } catch (cause) {
    if (cause instanceof DatabaseError) throw cause;
    throw new DatabaseError(`migrating schema ${schema} failed: ${(cause as Error).message}`, { cause });
  }
}
