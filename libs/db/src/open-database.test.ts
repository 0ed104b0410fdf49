// Opening: PGlite data directories (always, whatever the test target) and bad input.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { DatabaseError, openDatabase } from "./index.js";
import { createTestDatabase, testDatabaseTarget } from "./testing.js";

let scratch: string;

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), "annals-db-open-"));
});

after(async () => {
  await rm(scratch, { recursive: true, force: true });
});

test("openDatabase({ dataDir }) creates a new data directory in a child process, then reopens it with its data", async () => {
  const dataDir = join(scratch, "nested", "data");
  const rssBefore = process.memoryUsage().rss;
  // Two opens at once: one creates and opens it, the other is refused (PGlite does not lock its directory).
  const [opened, refused] = await Promise.allSettled([openDatabase({ dataDir }), openDatabase({ dataDir })]);
  assert.equal(opened.status, "fulfilled");
  assert.equal(refused.status, "rejected");
  assert.match(String(refused.reason), /already open in this process/);
  const first = opened.value;
  // initdb in this process would leave it ≈ 0.7 GB larger; opening costs ≈ 0.2–0.3 GB.
  const grownMb = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
  assert.ok(grownMb < 450, `this process grew by ${grownMb.toFixed(0)} MB: was initdb run in-process?`);
  assert.ok(existsSync(join(dataDir, "PG_VERSION")));
  // Built beside its place and renamed in: nothing half-made is left next to it.
  assert.deepEqual(await readdir(join(scratch, "nested")), ["data"]);
  assert.equal(first.driver, "pglite");
  await first.query("create table kept (id int8 primary key, note text)");
  await first.query("insert into kept values ($1, $2)", [9007199254740993n, "still here"]);
  await assert.rejects(openDatabase({ dataDir }), /already open in this process/);
  await first.close();

  const second = await openDatabase({ dataDir });
  try {
    assert.deepEqual((await second.query("select id, note from kept")).rows, [{ id: 9007199254740993n, note: "still here" }]);
  } finally {
    await second.close();
  }
});

test("a directory that holds other files but no data directory is refused", async () => {
  const dataDir = join(scratch, "occupied");
  await mkdir(dataDir);
  await writeFile(join(dataDir, "notes.txt"), "not postgres");
  await assert.rejects(openDatabase({ dataDir }), (error: unknown) => error instanceof DatabaseError && /not empty but holds no PostgreSQL data directory/.test(error.message));
});

test("an unreachable PostgreSQL gives a DatabaseError that names it without the password", async () => {
  await assert.rejects(openDatabase({ url: "postgres://annals:hunter2@127.0.0.1:1/none" }), (error: unknown) => {
    assert.ok(error instanceof DatabaseError);
    assert.match(error.message, /cannot connect to PostgreSQL at postgres:\/\/annals:\*\*\*@127\.0\.0\.1:1\/none/);
    assert.doesNotMatch(error.message, /hunter2/);
    assert.equal(error.code, undefined);
    assert.ok(error.cause instanceof Error);
    return true;
  });
});

test("a malformed url or option is refused before connecting", async () => {
  await assert.rejects(openDatabase({ url: "not a url" }), /invalid url: expected postgres:\/\//);
  await assert.rejects(openDatabase({ url: "mysql://root@127.0.0.1/db" }), /invalid url: expected the postgres:\/\/ or postgresql:\/\/ scheme/);
  await assert.rejects(openDatabase({ url: "postgres://127.0.0.1/db", maxConnections: 0 }), /invalid maxConnections/);
  await assert.rejects(openDatabase({ url: "postgres://127.0.0.1/db", statementTimeoutMs: -1 }), /invalid statementTimeoutMs/);
});

test("postgres: a database that does not exist gives a DatabaseError with its SQLSTATE", { skip: testDatabaseTarget() === "pglite" && "needs ANNALS_TEST_DATABASE_URL" }, async () => {
  const testDb = await createTestDatabase("open");
  try {
    assert.ok("url" in testDb.options);
    const url = new URL(testDb.options.url);
    url.pathname = "/annals_no_such_database";
    await assert.rejects(openDatabase({ url: url.toString() }), (error: unknown) => error instanceof DatabaseError && error.code === "3D000");
  } finally {
    await testDb.drop();
  }
});
