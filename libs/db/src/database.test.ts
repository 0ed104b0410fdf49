import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { DatabaseError, migrate, openDatabase, type Database, type Migration } from "./index.js";
import { createTestDatabase, testDatabaseTarget, type TestDatabase } from "./testing.js";

const target = testDatabaseTarget();

describe(`database on ${target}`, () => {
  let testDb: TestDatabase;
  let db: Database;
  before(async () => {
    testDb = await createTestDatabase("db");
    db = await testDb.open();
  });
  after(async () => {
    await testDb?.drop();
  });

  test("runs on the target this environment asks for", () => {
    assert.equal(db.driver, target);
  });

  test("int8 comes out as bigint and bigint parameters round-trip beyond 2^53", async () => {
    const { rows } = await db.query<{ big: bigint; echoed: bigint; small: number }>(
      "select 9007199254740993::int8 as big, $1::int8 as echoed, 7::int4 as small",
      [9007199254740995n],
    );
    assert.equal(rows[0]!.big, 9007199254740993n);
    assert.equal(rows[0]!.echoed, 9007199254740995n);
    assert.equal(rows[0]!.small, 7);
  });

  test("a transaction commits, and one that throws leaves nothing behind", async () => {
    await db.exec("create table tx_test (id int8 primary key, note text not null)");
    await db.transaction(async (tx) => {
      await tx.query("insert into tx_test values (1, 'kept')");
    });
    await assert.rejects(
      db.transaction(async (tx) => {
        await tx.query("insert into tx_test values (2, 'rolled back')");
        throw new Error("boom");
      }),
      /boom/,
    );
    const { rows } = await db.query<{ id: bigint }>("select id from tx_test order by id");
    assert.deepEqual(rows.map((row) => row.id), [1n]);
  });

  test("concurrent read-modify-write transactions do not lose updates", async () => {
    await db.exec("create table counter (id int primary key, value int8 not null); insert into counter values (1, 0)");
    await Promise.all(
      Array.from({ length: 20 }, () =>
        db.transaction(async (tx) => {
          const { rows } = await tx.query<{ value: bigint }>("select value from counter where id = 1 for update");
          await tx.query("update counter set value = $1 where id = 1", [rows[0]!.value + 1n]);
        }),
      ),
    );
    const { rows } = await db.query<{ value: bigint }>("select value from counter");
    assert.equal(rows[0]!.value, 20n);
  });

  test("NOTIFY reaches listeners; a rolled-back transaction's NOTIFY does not", async () => {
    const received: string[] = [];
    const stop = await db.listen("annals_test_channel", (payload) => received.push(payload));
    await db.notify("annals_test_channel", "plain");
    await db.transaction(async (tx) => {
      await tx.query("select pg_notify($1, $2)", ["annals_test_channel", "committed"]);
    });
    await assert.rejects(
      db.transaction(async (tx) => {
        await tx.query("select pg_notify($1, $2)", ["annals_test_channel", "rolled back"]);
        throw new Error("abort");
      }),
    );
    await db.notify("annals_test_channel", "last");
    await waitFor(() => received.includes("last"));
    assert.deepEqual(received, ["plain", "committed", "last"]);
    await stop();
    await db.notify("annals_test_channel", "after stop");
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(received.includes("after stop"), false);
  });

  describe("migrations", () => {
    const first: Migration[] = [
      { id: "0001_a.sql", sql: "create table a (id int8 primary key);\ninsert into a values (1);" },
      { id: "0002_b.sql", sql: "create table b (id int8 primary key references a (id));" },
    ];

    test("apply in order into their schema, once", async () => {
      assert.deepEqual(await migrate(db, { schema: "mig", migrations: first }), { applied: ["0001_a.sql", "0002_b.sql"] });
      assert.deepEqual(await migrate(db, { schema: "mig", migrations: first }), { applied: [] });
      const more = [...first, { id: "0003_c.sql", sql: "alter table b add column note text;" }];
      assert.deepEqual(await migrate(db, { schema: "mig", migrations: more }), { applied: ["0003_c.sql"] });
      const { rows } = await db.query<{ id: bigint }>("select id from mig.a");
      assert.deepEqual(rows, [{ id: 1n }]);
    });

    test("an edited migration is refused, naming it", async () => {
      const edited = [{ id: "0001_a.sql", sql: "create table a (id int8 primary key, extra text);" }];
      await assert.rejects(migrate(db, { schema: "mig", migrations: edited }), (error: unknown) => {
        assert.ok(error instanceof DatabaseError);
        assert.match(error.message, /mig\/0001_a\.sql was changed after it was applied/);
        return true;
      });
    });

    test("a failing migration applies nothing of its batch", async () => {
      const failing = [
        { id: "0001_ok.sql", sql: "create table ok (id int8);" },
        { id: "0002_bad.sql", sql: "create table broken (id int8 references nowhere (id));" },
      ];
      await assert.rejects(migrate(db, { schema: "half", migrations: failing }), DatabaseError);
      const { rows } = await db.query("select 1 from information_schema.tables where table_schema = 'half' and table_name = 'ok'");
      assert.equal(rows.length, 0);
    });

    test("a bad schema name is refused", async () => {
      await assert.rejects(migrate(db, { schema: "x; drop table a", migrations: first }), /invalid schema name/);
    });
  });
});

describe("two replicas migrating at once", () => {
  test(`both succeed and the migration is applied once (${target === "postgres" ? "two pools" : "PGlite: one handle, two concurrent calls"})`, async () => {
    const testDb = await createTestDatabase("db_race");
    try {
      const one = await testDb.open();
      // PGlite allows one process per data directory; there the race is two callers on one handle.
      const two = target === "postgres" ? await testDb.open() : one;
      const migrations: Migration[] = [{ id: "0001_t.sql", sql: "create table t (id int8 primary key);" }];
      const results = await Promise.all([migrate(one, { schema: "race", migrations }), migrate(two, { schema: "race", migrations })]);
      assert.deepEqual(results.map((result) => result.applied.length).sort(), [0, 1]);
      const { rows } = await one.query<{ n: bigint }>("select count(*) as n from race.schema_migrations");
      assert.equal(rows[0]!.n, 1n);
    } finally {
      await testDb.drop();
    }
  });
});

describe("opening", () => {
  test("a new data directory is created (in a child process) and reopened with its data", async () => {
    const dir = await mkdtemp(join(tmpdir(), "annals-db-open-"));
    try {
      const dataDir = join(dir, "data");
      const first = await openDatabase({ dataDir });
      await first.exec("create table kept (note text); insert into kept values ('still here')");
      await first.close();
      const second = await openDatabase({ dataDir });
      const { rows } = await second.query<{ note: string }>("select note from kept");
      await second.close();
      assert.deepEqual(rows, [{ note: "still here" }]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("an unreachable PostgreSQL gives a DatabaseError without the password", async () => {
    await assert.rejects(openDatabase({ url: "postgres://annals:hunter2@127.0.0.1:1/none" }), (error: unknown) => {
      assert.ok(error instanceof DatabaseError);
      assert.match(error.message, /cannot connect to PostgreSQL at postgres:\/\/annals:\*\*\*@127\.0\.0\.1:1\/none/);
      assert.doesNotMatch(error.message, /hunter2/);
      return true;
    });
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
