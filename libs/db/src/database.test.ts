// Queries, values and transactions, on whichever database createTestDatabase
// gives: PGlite by default, PostgreSQL with ANNALS_TEST_DATABASE_URL.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { DatabaseError, openDatabase, type Database, type Queryable } from "./index.js";
import { createTestDatabase, testDatabaseTarget, type TestDatabase } from "./testing.js";

const target = testDatabaseTarget();
let testDb: TestDatabase;
let db: Database;

before(async () => {
  testDb = await createTestDatabase("database");
  db = await testDb.open();
});

after(async () => {
  await testDb?.drop();
});

test(`runs on ${target}, the target this environment asks for`, () => {
  assert.equal(db.driver, target);
});

test("int8 comes out as bigint and bigint parameters round-trip beyond 2^53", async () => {
  const { rows } = await db.query<Record<string, unknown>>(
    `select 9007199254740993::int8 as big, $1::int8 as echoed, $2::int8[] as list,
            '{1,-9007199254740993,null}'::int8[] as literal_list, null::int8 as none,
            7::int4 as small, count(*) as counted
       from (values (1)) as one`,
    [9007199254740995n, [1n, -9007199254740995n]],
  );
  assert.deepEqual(rows[0], {
    big: 9007199254740993n,
    echoed: 9007199254740995n,
    list: [1n, -9007199254740995n],
    literal_list: [1n, -9007199254740993n, null],
    none: null,
    small: 7,
    counted: 1n,
  });

  await db.query("create table big_keys (id int8 primary key, note text)");
  await db.query("insert into big_keys values ($1, $2)", [9223372036854775807n, "max"]);
  const found = await db.query<{ id: bigint; note: string }>("select id, note from big_keys where id = $1", [9223372036854775807n]);
  assert.deepEqual(found.rows, [{ id: 9223372036854775807n, note: "max" }]);
});

test("value mapping: numeric is a string, timestamptz a Date, bytea bytes, jsonb parsed", async () => {
  const when = new Date("2024-01-02T03:04:05.678Z");
  const { rows } = await db.query<{ exact: string; at: Date; echoed_at: Date; bytes: Uint8Array; doc: unknown }>(
    `select 12345678901234567890.125::numeric as exact, timestamptz '2024-05-06T07:08:09.123Z' as at,
            $1::timestamptz as echoed_at, $2::bytea as bytes, $3::jsonb as doc`,
    [when, Uint8Array.of(0, 1, 255), JSON.stringify({ list: [1, 2], ok: true })],
  );
  const row = rows[0]!;
  assert.equal(row.exact, "12345678901234567890.125");
  assert.ok(row.at instanceof Date);
  assert.equal(row.at.toISOString(), "2024-05-06T07:08:09.123Z");
  assert.equal(row.echoed_at.getTime(), when.getTime());
  assert.ok(row.bytes instanceof Uint8Array);
  assert.deepEqual([...row.bytes], [0, 1, 255]);
  assert.deepEqual(row.doc, { list: [1, 2], ok: true });
});

test("rowCount counts rows returned or changed; without params several statements run and the last reports", async () => {
  const multi = await db.query<{ n: bigint }>(
    "create table counted (id int8); insert into counted values (1), (2), (3); select count(*) as n from counted",
  );
  assert.deepEqual(multi.rows, [{ n: 3n }]);
  assert.equal(multi.rowCount, 1);
  assert.equal((await db.query("update counted set id = id + $1", [10])).rowCount, 3);
  assert.equal((await db.query("select id from counted where id > $1", [11])).rowCount, 2);
  assert.equal((await db.query("delete from counted where id = $1", [13n])).rowCount, 1);
  assert.equal((await db.query("create table empty_one (id int8)")).rowCount, 0);
});

test("a server error is a DatabaseError with the SQLSTATE, the constraint and the driver's error as cause", async () => {
  await db.query("create table unique_names (name text constraint unique_names_name unique)");
  await db.query("insert into unique_names values ($1)", ["a"]);
  await assert.rejects(db.query("insert into unique_names values ($1)", ["a"]), (error: unknown) => {
    assert.ok(error instanceof DatabaseError, String(error));
    assert.equal(error.code, "23505");
    assert.equal(error.constraint, "unique_names_name");
    assert.match(error.message, /duplicate key value violates unique constraint/);
    assert.ok(error.cause instanceof Error);
    return true;
  });
  await assert.rejects(db.query("selec 1"), (error: unknown) => error instanceof DatabaseError && error.code === "42601");
});

test("a transaction commits; one that throws rolls back and rethrows the very same error", async () => {
  await db.query("create table tx_test (id int8 primary key, note text not null)");
  const result = await db.transaction(async (tx) => {
    await tx.query("insert into tx_test values ($1, $2)", [1n, "kept"]);
    return "done";
  });
  assert.equal(result, "done");
  const boom = new Error("boom");
  await assert.rejects(
    db.transaction(async (tx) => {
      await tx.query("insert into tx_test values ($1, $2)", [2n, "rolled back"]);
      throw boom;
    }),
    (error: unknown) => error === boom,
  );
  const { rows } = await db.query<{ id: bigint }>("select id from tx_test order by id");
  assert.deepEqual(rows, [{ id: 1n }]);
});

test("a transaction whose failed statement was caught does not commit", async () => {
  await db.query("create table swallowed (id int8)");
  await assert.rejects(
    db.transaction(async (tx) => {
      await tx.query("insert into swallowed values (1)");
      await tx.query("select 1 / 0").catch(() => undefined);
    }),
    (error: unknown) => error instanceof DatabaseError && error.code === "25P02",
  );
  assert.equal((await db.query("select * from swallowed")).rowCount, 0);
});

test("a transaction's tx cannot be used after it ended", async () => {
  let kept: Queryable | undefined;
  await db.transaction(async (tx) => {
    kept = tx;
  });
  await assert.rejects(kept!.query("select 1"), DatabaseError);
});

test(`concurrent transactions lose no update (${target === "pglite" ? "PGlite: run one after another" : "postgres: run side by side, row lock"})`, async () => {
  await db.query("create table counter (id int primary key, value int8 not null); insert into counter values (1, 0)");
  const events: string[] = [];
  await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      db.transaction(async (tx) => {
        events.push(`begin ${i}`);
        const { rows } = await tx.query<{ value: bigint }>("select value from counter where id = 1 for update");
        await sleep(5);
        await tx.query("update counter set value = $1 where id = 1", [rows[0]!.value + 1n]);
        events.push(`end ${i}`);
      }),
    ),
  );
  const { rows } = await db.query<{ value: bigint }>("select value from counter");
  assert.equal(rows[0]!.value, 10n);
  const strictlyOneAfterAnother = events.every((event, index) =>
    index % 2 === 0 ? event.startsWith("begin") : event === `end ${events[index - 1]!.slice("begin ".length)}`,
  );
  // PGlite has one connection: a transaction starts only when the one before has finished.
  // The pool runs them at once; the row lock keeps the count right.
  assert.equal(strictlyOneAfterAnother, target === "pglite", events.join(", "));
});

test(`a query outside a transaction ${target === "pglite" ? "waits for it (PGlite)" : "runs beside it (postgres)"}`, async () => {
  await db.query("create table waiting (id int8)");
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let inserted!: () => void;
  const insertDone = new Promise<void>((resolve) => (inserted = resolve));
  const transaction = db.transaction(async (tx) => {
    await tx.query("insert into waiting values (1)");
    inserted();
    await gate;
  });
  await insertDone;
  let settled = false;
  const outside = db.query<{ n: bigint }>("select count(*) as n from waiting").then((result) => ((settled = true), result));
  await sleep(100);
  assert.equal(settled, target === "postgres");
  release();
  await transaction;
  const { rows } = await outside;
  // Waiting, it sees the committed row; beside it (read committed), it does not.
  assert.equal(rows[0]!.n, target === "pglite" ? 1n : 0n);
});

test(`using the database itself inside its own transaction ${target === "pglite" ? "is refused (PGlite would wait for ever)" : "uses another connection (postgres)"}`, async () => {
  const attempt = db.transaction(async (tx) => {
    await tx.query("select 1");
    const { rows } = await db.query<{ one: number }>("select 1 as one");
    return rows[0]!.one;
  });
  if (target === "pglite") {
    await assert.rejects(attempt, (error: unknown) => error instanceof DatabaseError && /inside its own transaction/.test(error.message));
    // Afterwards the database works as before.
    assert.equal((await db.query("select 1 as one")).rowCount, 1);
  } else {
    assert.equal(await attempt, 1);
  }
});

test("statementTimeoutMs cancels a statement that runs too long", { skip: target === "pglite" && "a postgres option" }, async () => {
  const options = testDb.options;
  assert.ok("url" in options);
  const impatient = await openDatabase({ ...options, statementTimeoutMs: 100 });
  try {
    await assert.rejects(impatient.query("select pg_sleep(2)"), (error: unknown) => error instanceof DatabaseError && error.code === "57014");
  } finally {
    await impatient.close();
  }
});

test("close is safe to call twice", async () => {
  const second = target === "postgres" ? await openDatabase(testDb.options) : undefined;
  if (second) {
    await second.close();
    await second.close();
    await assert.rejects(second.query("select 1"), DatabaseError);
  }
  // On PGlite the shared handle is closed by drop(), which closes it again.
  await db.close();
  await db.close();
  db = await testDb.open();
  assert.equal((await db.query("select 1")).rowCount, 1);
});
