// LISTEN/NOTIFY, on whichever database createTestDatabase gives.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { DatabaseError, openDatabase, type Database } from "./index.js";
import { createTestDatabase, testDatabaseTarget, type TestDatabase } from "./testing.js";

const target = testDatabaseTarget();
let testDb: TestDatabase;
let db: Database;

before(async () => {
  testDb = await createTestDatabase("listen");
  db = await testDb.open();
});

after(async () => {
  await testDb?.drop();
});

test(`NOTIFY reaches every listener of its channel; names are case-sensitive (${target})`, async () => {
  const received: string[] = [];
  const stops = [
    await db.listen("orders", (payload) => received.push(`first ${payload}`)),
    await db.listen("orders", (payload) => received.push(`second ${payload}`)),
    await db.listen("Orders.Upper-Case", (payload) => received.push(`upper ${payload}`)),
  ];
  await db.notify("orders", "o1");
  await db.notify("Orders.Upper-Case", "u1");
  await db.notify("nobody-listens", "lost");
  await waitFor(() => received.length === 3);
  assert.deepEqual(received.sort(), ["first o1", "second o1", "upper u1"]);
  for (const stop of stops) await stop();
});

test("a NOTIFY in a committed transaction arrives on COMMIT; a rolled-back one never does", async () => {
  const received: string[] = [];
  const stop = await db.listen("tx_channel", (payload) => received.push(payload));
  await db.notify("tx_channel", "plain");
  await db.transaction(async (tx) => {
    await tx.query("select pg_notify($1, $2)", ["tx_channel", "committed"]);
  });
  await assert.rejects(
    db.transaction(async (tx) => {
      await tx.query("select pg_notify($1, $2)", ["tx_channel", "rolled back"]);
      throw new Error("abort");
    }),
    /abort/,
  );
  await db.notify("tx_channel", "last");
  await waitFor(() => received.includes("last"));
  assert.deepEqual(received, ["plain", "committed", "last"]);
  await stop();
});

test("unlisten stops one listener; the others of the channel keep theirs", async () => {
  const received: string[] = [];
  const stopA = await db.listen("shared", (payload) => received.push(`a ${payload}`));
  const stopB = await db.listen("shared", (payload) => received.push(`b ${payload}`));
  await stopA();
  await stopA();
  await db.notify("shared", "1");
  await waitFor(() => received.includes("b 1"));
  await stopB();
  await db.notify("shared", "2");
  await sleep(100);
  assert.deepEqual(received, ["b 1"]);
});

test("a listener that throws does not keep the others from their notifications", async () => {
  const received: string[] = [];
  const originalConsoleError = console.error;
  const logged: string[] = [];
  console.error = (message: string) => logged.push(message);
  try {
    const stopThrowing = await db.listen("throwing", () => {
      throw new Error("listener bug");
    });
    const stop = await db.listen("throwing", (payload) => received.push(payload));
    await db.notify("throwing", "still delivered");
    await waitFor(() => received.length === 1);
    assert.deepEqual(received, ["still delivered"]);
    assert.ok(logged.some((line) => line.includes("listener bug")), logged.join("\n"));
    assert.equal((await db.query("select 1")).rowCount, 1);
    await stopThrowing();
    await stop();
  } finally {
    console.error = originalConsoleError;
  }
});

test("a channel name that is empty, too long or holds a double quote is refused", async () => {
  for (const channel of ["", "x".repeat(64), 'say "hi"']) {
    await assert.rejects(db.listen(channel, () => undefined), DatabaseError);
  }
});

test(
  "postgres: the LISTEN connection comes back after being killed, calls onReconnect, and delivers again",
  { skip: target === "pglite" && "PGlite has no connection to lose" },
  async () => {
    const options = testDb.options;
    assert.ok("url" in options);
    const applicationName = `annals-reconnect-${process.pid}`;
    const backgroundErrors: Error[] = [];
    const listening = await openDatabase({ ...options, applicationName, onBackgroundError: (error) => backgroundErrors.push(error) });
    try {
      const received: string[] = [];
      let reconnects = 0;
      const stop = await listening.listen("survives", (payload) => received.push(payload), { onReconnect: () => reconnects++ });
      await db.notify("survives", "before");
      await waitFor(() => received.includes("before"));

      const killed = await db.query(
        "select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1 and datname = current_database()",
        [`${applicationName}:listen`],
      );
      assert.equal(killed.rowCount, 1);
      await waitFor(() => reconnects === 1);
      assert.ok(backgroundErrors.some((error) => /LISTEN connection was lost/.test(error.message)), backgroundErrors.join("\n"));

      await db.notify("survives", "after");
      await waitFor(() => received.includes("after"));
      assert.deepEqual(received, ["before", "after"]);
      await stop();
    } finally {
      await listening.close();
    }
  },
);

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${condition}`);
    await sleep(10);
  }
}
