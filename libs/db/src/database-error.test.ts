import assert from "node:assert/strict";
import { test } from "node:test";
import pg from "pg";
import { toDatabaseError } from "./database-error.js";

test("errors of a database that cannot take work now are marked unavailable; a rejected statement is not", () => {
  const withCode = (code: string, message = "x") => Object.assign(new Error(message), { code });
  for (const cause of [
    withCode("08006", "connection failure"),
    withCode("57P01", "terminating connection due to administrator command"),
    withCode("53300", "too many connections"),
    withCode("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:5432"),
    new Error("timeout exceeded when trying to connect"),
    new Error("Connection terminated unexpectedly"),
  ]) {
    assert.equal(toDatabaseError(cause).unavailable, true, cause.message);
  }
  for (const cause of [withCode("23505", "duplicate key"), withCode("22P02", "invalid input"), new Error("Cannot use a pool after calling end on the pool")]) {
    assert.equal(toDatabaseError(cause).unavailable, false, cause.message);
  }
});

test("a pool that cannot reach its server fails with an unavailable error", async () => {
  // Port 1 on loopback: nothing listens there, so the connection is refused at once.
  const pool = new pg.Pool({ host: "127.0.0.1", port: 1, user: "nobody", database: "nothing", connectionTimeoutMillis: 2000 });
  try {
    const error = await pool.query("select 1").then(
      () => assert.fail("the query succeeded"),
      (failure: unknown) => toDatabaseError(failure),
    );
    assert.equal(error.unavailable, true, error.message);
  } finally {
    await pool.end();
  }
});
