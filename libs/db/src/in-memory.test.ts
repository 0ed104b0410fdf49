// `{ inMemory: true }`: PGlite in this process, gone when closed. Its own file
// because it runs initdb here (≈ 0.7 GB), which would skew open-database.test.ts.
import assert from "node:assert/strict";
import { test } from "node:test";
import { openDatabase } from "./index.js";

test("openDatabase({ inMemory: true }) gives a working PGlite database with the same value mapping", async () => {
  const db = await openDatabase({ inMemory: true });
  try {
    assert.equal(db.driver, "pglite");
    await db.query("create table t (id int8)");
    await db.transaction(async (tx) => {
      await tx.query("insert into t values ($1)", [9007199254740993n]);
    });
    assert.deepEqual((await db.query("select id from t")).rows, [{ id: 9007199254740993n }]);
  } finally {
    await db.close();
  }
});
