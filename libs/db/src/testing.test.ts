// The test-database helper itself: isolation, the env for child processes,
// drop, and failing loudly instead of quietly testing something else.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { DatabaseError } from "./index.js";
import { createTestDatabase, testDatabaseTarget } from "./testing.js";

const target = testDatabaseTarget();

test(`test databases are separate, and env points a child process at the same one (${target})`, async () => {
  const one = await createTestDatabase("testing one");
  const two = await createTestDatabase("testing_two");
  try {
    assert.deepEqual(Object.keys(one.env), [target === "postgres" ? "DATABASE_URL" : "ANNALS_DATA_DIR"]);
    const dbOne = await one.open();
    const dbTwo = await two.open();
    await dbOne.query("create table marker (note text); insert into marker values ('one')");
    assert.equal((await dbTwo.query("select to_regclass('marker') as t")).rows[0]!.t, null);
    // A PGlite directory is open in one process at a time: let the child have it.
    await dbOne.close();
    const seen = await readMarkerInChildProcess(one.env);
    assert.equal(seen, "one");
  } finally {
    await one.drop();
    await two.drop();
  }
});

test("drop closes what open opened and removes the database", async () => {
  const testDb = await createTestDatabase("testing_drop");
  const db = await testDb.open();
  await testDb.drop();
  await assert.rejects(db.query("select 1"));
  if ("dataDir" in testDb.options) {
    assert.equal(existsSync(testDb.options.dataDir), false);
  } else {
    assert.ok("url" in testDb.options);
    const name = new URL(testDb.options.url).pathname.slice(1);
    assert.match(name, /^annals_test_testing_drop_\d+_[0-9a-f]{8}$/);
    const probe = await createTestDatabase("testing_probe");
    try {
      const other = await probe.open();
      assert.equal((await other.query("select 1 from pg_database where datname = $1", [name])).rowCount, 0);
    } finally {
      await probe.drop();
    }
  }
  await testDb.drop();
});

test("ANNALS_TEST_REQUIRE_POSTGRES=1 without ANNALS_TEST_DATABASE_URL refuses to fall back to PGlite", async () => {
  await withEnv({ ANNALS_TEST_DATABASE_URL: undefined, ANNALS_TEST_REQUIRE_POSTGRES: "1" }, async () => {
    assert.throws(() => testDatabaseTarget(), /ANNALS_TEST_REQUIRE_POSTGRES=1 but ANNALS_TEST_DATABASE_URL is not set/);
    await assert.rejects(createTestDatabase(), DatabaseError);
  });
});

test("an ANNALS_TEST_DATABASE_URL that does not answer fails loudly, never skips", async () => {
  await withEnv({ ANNALS_TEST_DATABASE_URL: "postgres://postgres:secret@127.0.0.1:1/test" }, async () => {
    assert.equal(testDatabaseTarget(), "postgres");
    await assert.rejects(createTestDatabase(), (error: unknown) => {
      assert.ok(error instanceof DatabaseError);
      assert.match(error.message, /ANNALS_TEST_DATABASE_URL=postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/test does not answer/);
      return true;
    });
  });
});

async function withEnv(changes: Record<string, string | undefined>, work: () => Promise<void>): Promise<void> {
  const saved = Object.fromEntries(Object.keys(changes).map((key) => [key, process.env[key]]));
  const apply = (values: Record<string, string | undefined>) => {
    for (const [key, value] of Object.entries(values)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  };
  apply(changes);
  try {
    await work();
  } finally {
    apply(saved);
  }
}

/** Opens the database from `env` in a child process, as a service under test would. */
async function readMarkerInChildProcess(env: Record<string, string>): Promise<string> {
  const script = `
    const { openDatabase } = await import(${JSON.stringify(new URL("./index.js", import.meta.url).href)});
    const env = process.env;
    const db = await openDatabase(env.DATABASE_URL ? { url: env.DATABASE_URL } : { dataDir: env.ANNALS_DATA_DIR });
    const { rows } = await db.query("select note from marker");
    process.stdout.write(rows[0].note);
    await db.close();
  `;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], { env: { PATH: process.env.PATH ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
  assert.equal(code, 0, stderr);
  return stdout;
}
