// The KV helpers of @annals/client under concurrency, against each backend.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { alreadyProcessed, guardedGet, idempotentExecute, rateLimit } from "@annals/client";
import type { BackendName } from "./backend.js";
import { redisSkipReason, rejects, sleep, startKvHarness, type KvHarness } from "./kv-harness.js";

const redisSkip = await redisSkipReason();
const BACKENDS: { backend: BackendName; skip: string | false }[] = [
  { backend: "memory", skip: false },
  { backend: "postgres", skip: false },
  { backend: "redis", skip: redisSkip },
];

for (const { backend, skip } of BACKENDS) {
  describe(`client KV helpers: ${backend} backend`, { skip }, () => {
    let harness: KvHarness;
    before(async () => {
      harness = await startKvHarness(`kv_helpers_${backend}`, backend);
    });
    after(async () => {
      await harness?.close();
    });

    test("100 concurrent guardedGet misses: compute runs once and every caller gets its value", async () => {
      let runs = 0;
      const compute = async () => {
        runs++;
        await sleep(200);
        return { report: "expensive", run: runs };
      };
      const values = await Promise.all(Array.from({ length: 100 }, () => guardedGet(harness.admin, "cache:report", compute, { ttlMs: 60_000 })));
      assert.equal(runs, 1);
      for (const value of values) assert.deepEqual(value, { report: "expensive", run: 1 });
      assert.deepEqual(await guardedGet(harness.admin, "cache:report", compute, { ttlMs: 60_000 }), { report: "expensive", run: 1 });
      assert.equal(runs, 1, "a hit does not compute");
    });

    test("guardedGet: a failing compute releases the lock and the next caller computes", async () => {
      await assert.rejects(
        guardedGet(harness.admin, "cache:flaky", async () => {
          throw new Error("backend down");
        }, { ttlMs: 60_000 }),
        /backend down/,
      );
      assert.equal(await guardedGet(harness.admin, "cache:flaky", async () => "recovered", { ttlMs: 60_000 }), "recovered");
    });

    test("guardedGet: when the lock holder vanished, a waiter takes over after the lock TTL", async () => {
      const started = Date.now();
      const held = await harness.admin.acquireLock({ key: new TextEncoder().encode("cache:orphan"), ttlMs: 300n });
      assert.ok(held.acquired);
      const value = await guardedGet(harness.admin, "cache:orphan", async () => "taken over", { ttlMs: 60_000, lockTtlMs: 5000 });
      assert.equal(value, "taken over");
      assert.ok(Date.now() - started >= 290, `it waited for the orphaned lock to expire (${Date.now() - started} ms)`);
      assert.equal((await harness.admin.releaseLock({ key: new TextEncoder().encode("cache:orphan"), token: held.token })).released, false);
    });

    test("20 concurrent idempotentExecute with one key: compute runs once and every caller gets the same response", async () => {
      let runs = 0;
      const results = await Promise.all(
        Array.from({ length: 20 }, () =>
          idempotentExecute(harness.admin, { key: "idem:order-1", fingerprint: "sha256:1", ttlMs: 60_000 }, async () => {
            runs++;
            await sleep(150);
            return { status: 201, body: { orderId: 1, run: runs } };
          }),
        ),
      );
      assert.equal(runs, 1);
      assert.equal(results.filter((result) => !result.replayed).length, 1, "one caller ran it");
      for (const result of results) assert.deepEqual([result.status, result.body], [201, { orderId: 1, run: 1 }]);
      const later = await idempotentExecute(harness.admin, { key: "idem:order-1", fingerprint: "sha256:1", ttlMs: 60_000 }, async () => {
        throw new Error("must not run");
      });
      assert.deepEqual([later.replayed, later.status], [true, 201]);
      await rejects(
        idempotentExecute(harness.admin, { key: "idem:order-1", fingerprint: "sha256:2", ttlMs: 60_000 }, async () => ({ status: 200, body: null })),
        Code.AlreadyExists,
        /different request/,
      );
    });

    test("idempotentExecute: a failed compute gives the key up, so a retry runs it", async () => {
      const options = { key: "idem:retry", fingerprint: "f", ttlMs: 60_000 };
      await assert.rejects(idempotentExecute(harness.admin, options, async () => Promise.reject(new Error("payment provider timeout"))), /timeout/);
      const retried = await idempotentExecute(harness.admin, options, async () => ({ status: 200, body: "paid" }));
      assert.deepEqual([retried.replayed, retried.body], [false, "paid"]);
    });

    test("alreadyProcessed and rateLimit answer as the RPCs do", async () => {
      assert.equal(await alreadyProcessed(harness.admin, "delivery-1", 60_000), false);
      assert.equal(await alreadyProcessed(harness.admin, "delivery-1", 60_000), true);
      const decisions = [];
      for (let i = 0; i < 3; i++) decisions.push(await rateLimit(harness.admin, "login:alice", { limit: 2, windowMs: 60_000 }));
      assert.deepEqual(decisions.map((d) => [d.allowed, d.remaining]), [[true, 1], [true, 0], [false, 0]]);
      assert.ok(decisions[2]!.retryAfterMs > 0);
    });
  });
}
