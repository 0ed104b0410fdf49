// Migrations, on whichever database createTestDatabase gives.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { DatabaseError, loadMigrations, migrate, type Database, type Migration } from "./index.js";
import { createTestDatabase, testDatabaseTarget, type TestDatabase } from "./testing.js";

const target = testDatabaseTarget();
let testDb: TestDatabase;
let db: Database;

before(async () => {
  testDb = await createTestDatabase("migrate");
  db = await testDb.open();
});

after(async () => {
  await testDb?.drop();
});

const first: Migration[] = [
  // Listed out of order on purpose: 0002 needs 0001's table.
  { id: "0002_b.sql", sql: "create table b (id int8 primary key references a (id));" },
  { id: "0001_a.sql", sql: "create table a (id int8 primary key);\ninsert into a values (1);" },
];

test("applies in id order, into its schema, records each with its sha256, and is then a no-op", async () => {
  assert.deepEqual(await migrate(db, { schema: "mig", migrations: first }), { applied: ["0001_a.sql", "0002_b.sql"] });
  const { rows } = await db.query<{ id: string; checksum: string; applied_at: Date }>("select id, checksum, applied_at from mig.schema_migrations order by id");
  assert.deepEqual(
    rows.map((row) => [row.id, row.checksum]),
    [
      ["0001_a.sql", sha256(first[1]!.sql)],
      ["0002_b.sql", sha256(first[0]!.sql)],
    ],
  );
  assert.ok(rows.every((row) => row.applied_at instanceof Date));
  // search_path was the schema: the tables are there, not in public.
  const where = await db.query<{ in_schema: string | null; in_public: string | null }>(
    "select to_regclass('mig.a')::text as in_schema, to_regclass('public.a')::text as in_public",
  );
  assert.deepEqual(where.rows, [{ in_schema: "mig.a", in_public: null }]);

  assert.deepEqual(await migrate(db, { schema: "mig", migrations: first }), { applied: [] });
  const more = [...first, { id: "0003_c.sql", sql: "alter table b add column note text;" }];
  assert.deepEqual(await migrate(db, { schema: "mig", migrations: more }), { applied: ["0003_c.sql"] });
  assert.deepEqual((await db.query("select id from mig.a")).rows, [{ id: 1n }]);
});

test("an edited migration is refused, naming it, and nothing new of that call applies", async () => {
  await migrate(db, { schema: "edited", migrations: [{ id: "0001_a.sql", sql: "create table a (id int8);" }] });
  const edited = [
    { id: "0001_a.sql", sql: "create table a (id int8, extra text);" },
    { id: "0002_new.sql", sql: "create table new_one (id int8);" },
  ];
  await assert.rejects(migrate(db, { schema: "edited", migrations: edited }), (error: unknown) => {
    assert.ok(error instanceof DatabaseError);
    assert.match(error.message, /migration edited\/0001_a\.sql was edited after it was applied/);
    return true;
  });
  assert.equal((await db.query("select to_regclass('edited.new_one') as t")).rows[0]!.t, null);
});

test("a failing migration rolls back every migration of its call, and names it", async () => {
  const failing = [
    { id: "0001_ok.sql", sql: "create table ok (id int8);" },
    { id: "0002_bad.sql", sql: "create table broken (id int8 references nowhere (id));" },
  ];
  await assert.rejects(migrate(db, { schema: "half", migrations: failing }), (error: unknown) => {
    assert.ok(error instanceof DatabaseError);
    assert.match(error.message, /migration half\/0002_bad\.sql failed: relation "nowhere" does not exist/);
    assert.equal(error.code, "42P01");
    return true;
  });
  assert.equal((await db.query("select to_regnamespace('half') as s")).rows[0]!.s, null);
});

test("a bad schema name or a duplicate id is refused", async () => {
  await assert.rejects(migrate(db, { schema: "x; drop table a", migrations: first }), /invalid schema name/);
  await assert.rejects(migrate(db, { schema: "Upper", migrations: first }), /invalid schema name/);
  await assert.rejects(migrate(db, { schema: "dup", migrations: [first[0]!, first[0]!] }), /listed twice/);
});

test(
  target === "postgres"
    ? "postgres: two Database handles migrating at once both succeed, and each migration applies once"
    : "PGlite: two concurrent migrate calls on one handle both succeed, and each migration applies once (two handles on one data directory cannot exist)",
  async () => {
    const one = db;
    const two = target === "postgres" ? await testDb.open() : db;
    assert.equal(one === two, target === "pglite");
    // The sleep widens the window in which a second migrator without the lock would collide.
    const migrations: Migration[] = [{ id: "0001_t.sql", sql: "select pg_sleep(0.2); create table t (id int8 primary key);" }];
    const results = await Promise.all([migrate(one, { schema: "race", migrations }), migrate(two, { schema: "race", migrations })]);
    assert.deepEqual(results.map((result) => result.applied).sort(), [[], ["0001_t.sql"]]);
    assert.deepEqual((await one.query("select count(*) as n from race.schema_migrations")).rows, [{ n: 1n }]);
  },
);

test("loadMigrations reads the .sql files of a directory in name order", async () => {
  const dir = await mkdtemp(join(tmpdir(), "annals-migrations-"));
  try {
    await writeFile(join(dir, "0010_later.sql"), "create table later (id int8);");
    await writeFile(join(dir, "0002_b.sql"), "create table b (id int8);");
    await writeFile(join(dir, "0001_a.sql"), "create table a (id int8);");
    await writeFile(join(dir, "README.md"), "not a migration");
    await mkdir(join(dir, "0003_folder.sql"));
    assert.deepEqual(await loadMigrations(dir), [
      { id: "0001_a.sql", sql: "create table a (id int8);" },
      { id: "0002_b.sql", sql: "create table b (id int8);" },
      { id: "0010_later.sql", sql: "create table later (id int8);" },
    ]);
    await assert.rejects(loadMigrations(join(dir, "missing")), (error: unknown) => error instanceof DatabaseError && /cannot read migrations/.test(error.message));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
