// One conformance suite, run through the gRPC service against every backend:
// memory, postgres (PostgreSQL or PGlite, as the test database is) and the
// real Redis server.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { kvV1 } from "@annals/proto";
import type { KvClient } from "@annals/client";
import type { BackendName } from "./backend.js";
import { bytes, redisSkipReason, rejects, sleep, startKvHarness, text, type KvHarness } from "./kv-harness.js";

const redisSkip = await redisSkipReason();
const BACKENDS: { backend: BackendName; skip: string | false }[] = [
  { backend: "memory", skip: false },
  { backend: "postgres", skip: false },
  { backend: "redis", skip: redisSkip },
];
/** A TTL short enough to wait out, and the wait. */
const SHORT_TTL = 60n;
const PAST_SHORT_TTL = 150;

for (const { backend, skip } of BACKENDS) {
  describe(`KV conformance: ${backend} backend`, { skip }, () => {
    let harness: KvHarness;
    let kv: KvClient;
    let n = 0;
    /** A key of its own for each use, so tests never see each other's keys. */
    const fresh = (name = "k") => bytes(`${name}:${++n}`);

    before(async () => {
      harness = await startKvHarness(`kv_conf_${backend}`, backend);
      kv = harness.admin;
    });
    after(async () => {
      await harness?.close();
    });

    test("GetInfo names the backend and what it supports", async () => {
      const info = await kv.getInfo({});
      assert.equal(info.backend, backend);
      assert.deepEqual([info.supportsTtl, info.supportsScan, info.supportsBatch], [true, true, true]);
      assert.equal(info.maxValueBytes, 1024n * 1024n);
    });

    test("Set, Get, Exists and Delete with binary keys and values, the empty value included", async () => {
      const key = Uint8Array.from([0, 255, 10, 0x2a, 0x5b]);
      const value = Uint8Array.from([0, 1, 2, 255, 254, 0]);
      assert.deepEqual(await kv.get({ key }).then((r) => [r.found, r.value.length]), [false, 0]);
      assert.equal((await kv.set({ key, value })).written, true);
      const got = await kv.get({ key });
      assert.equal(got.found, true);
      assert.deepEqual(Buffer.from(got.value), Buffer.from(value));
      assert.equal((await kv.exists({ key })).exists, true);
      assert.equal((await kv.delete({ key })).deleted, true);
      assert.equal((await kv.delete({ key })).deleted, false);
      assert.equal((await kv.exists({ key })).exists, false);
      const empty = fresh();
      await kv.set({ key: empty, value: new Uint8Array() });
      assert.deepEqual(await kv.get({ key: empty }).then((r) => [r.found, r.value.length]), [true, 0]);
    });

    test("Set NX and XX write only when the key is absent or present, and GET returns what was there", async () => {
      const key = fresh();
      const nxAbsent = await kv.set({ key, value: bytes("a"), condition: kvV1.SetCondition.IF_ABSENT, returnPrevious: true });
      assert.deepEqual([nxAbsent.written, nxAbsent.previousFound], [true, false]);
      const nxPresent = await kv.set({ key, value: bytes("b"), condition: kvV1.SetCondition.IF_ABSENT, returnPrevious: true });
      assert.deepEqual([nxPresent.written, nxPresent.previousFound, text(nxPresent.previous)], [false, true, "a"]);
      assert.equal((await kv.set({ key, value: bytes("b"), condition: kvV1.SetCondition.IF_ABSENT })).written, false);
      assert.equal(text((await kv.get({ key })).value), "a");

      const xxPresent = await kv.set({ key, value: bytes("c"), condition: kvV1.SetCondition.IF_PRESENT, returnPrevious: true });
      assert.deepEqual([xxPresent.written, text(xxPresent.previous)], [true, "a"]);
      const absent = fresh();
      assert.equal((await kv.set({ key: absent, value: bytes("x"), condition: kvV1.SetCondition.IF_PRESENT })).written, false);
      const xxAbsent = await kv.set({ key: absent, value: bytes("x"), condition: kvV1.SetCondition.IF_PRESENT, returnPrevious: true });
      assert.deepEqual([xxAbsent.written, xxAbsent.previousFound], [false, false]);
      assert.equal((await kv.exists({ key: absent })).exists, false);

      const plain = await kv.set({ key, value: bytes("d"), returnPrevious: true });
      assert.deepEqual([plain.written, text(plain.previous)], [true, "c"]);
      assert.equal(text((await kv.get({ key })).value), "d");
    });

    test("Ttl is -2 for a missing key, -1 without expiry, and the remaining ms otherwise", async () => {
      const key = fresh();
      assert.equal((await kv.ttl({ key })).ttlMs, -2n);
      await kv.set({ key, value: bytes("v") });
      assert.equal((await kv.ttl({ key })).ttlMs, -1n);
      await kv.set({ key, value: bytes("v"), ttlMs: 60_000n });
      const ttl = (await kv.ttl({ key })).ttlMs;
      assert.ok(ttl > 55_000n && ttl <= 60_000n, `ttl ${ttl}`);
    });

    test("Set clears the TTL unless KEEPTTL; KEEPTTL keeps it; KEEPTTL with a TTL is refused", async () => {
      const key = fresh();
      await kv.set({ key, value: bytes("1"), ttlMs: 60_000n });
      await kv.set({ key, value: bytes("2"), keepTtl: true });
      assert.ok((await kv.ttl({ key })).ttlMs > 0n, "KEEPTTL kept the TTL");
      assert.equal(text((await kv.get({ key })).value), "2");
      await kv.set({ key, value: bytes("3") });
      assert.equal((await kv.ttl({ key })).ttlMs, -1n, "a plain Set cleared the TTL");
      const noTtl = fresh();
      await kv.set({ key: noTtl, value: bytes("1"), keepTtl: true });
      assert.equal((await kv.ttl({ key: noTtl })).ttlMs, -1n);
      await rejects(kv.set({ key, value: bytes("4"), keepTtl: true, ttlMs: 10n }), Code.InvalidArgument, /keep_ttl/);
      assert.equal(text((await kv.get({ key })).value), "3");
    });

    test("an expired key is absent for Get, Exists, MGet, Scan, Ttl, Delete and Expire; Incr and SetNx start over", async () => {
      const scanPrefix = `expiring:${++n}:`;
      const [a, b, c, d, live] = ["a", "b", "c", "d", "live"].map((name) => bytes(scanPrefix + name));
      for (const key of [a!, b!, c!, d!]) await kv.set({ key, value: bytes("41"), ttlMs: SHORT_TTL });
      await kv.set({ key: live!, value: bytes("here") });
      await sleep(PAST_SHORT_TTL);
      assert.equal((await kv.get({ key: a! })).found, false);
      assert.equal((await kv.exists({ key: a! })).exists, false);
      assert.deepEqual((await kv.mGet({ keys: [a!, live!] })).values.map((v) => v.found), [false, true]);
      assert.deepEqual((await kv.scan({ prefix: bytes(scanPrefix) })).entries.map((e) => text(e.key)), [scanPrefix + "live"]);
      assert.equal((await kv.ttl({ key: a! })).ttlMs, -2n);
      assert.equal((await kv.expire({ key: a!, ttlMs: 60_000n })).applied, false);
      assert.equal((await kv.deleteMany({ keys: [a!, live!] })).deletedCount, 1n);
      assert.equal((await kv.incr({ key: b! })).value, 1n, "Incr on an expired key starts at 0");
      assert.equal((await kv.ttl({ key: b! })).ttlMs, -1n, "and the new value has no TTL");
      assert.equal((await kv.setNx({ key: c!, value: bytes("new") })).written, true);
      assert.equal(text((await kv.get({ key: c! })).value), "new");
      assert.equal((await kv.set({ key: d!, value: bytes("x"), condition: kvV1.SetCondition.IF_PRESENT })).written, false);
      const keep = await kv.set({ key: d!, value: bytes("y"), keepTtl: true, returnPrevious: true });
      assert.deepEqual([keep.written, keep.previousFound], [true, false]);
      assert.equal((await kv.ttl({ key: d! })).ttlMs, -1n, "KEEPTTL keeps nothing of an expired key");
    });

    test("Expire sets a TTL on a present key, deletes it when ≤ 0, and reports false for a missing key", async () => {
      const key = fresh();
      assert.equal((await kv.expire({ key, ttlMs: 1000n })).applied, false);
      await kv.set({ key, value: bytes("v") });
      assert.equal((await kv.expire({ key, ttlMs: 30_000n })).applied, true);
      const ttl = (await kv.ttl({ key })).ttlMs;
      assert.ok(ttl > 25_000n && ttl <= 30_000n, `ttl ${ttl}`);
      assert.equal((await kv.expire({ key, ttlMs: 0n })).applied, true);
      assert.equal((await kv.exists({ key })).exists, false);
      await kv.set({ key, value: bytes("v") });
      assert.equal((await kv.expire({ key, ttlMs: -5n })).applied, true);
      assert.equal((await kv.exists({ key })).exists, false);
      await kv.set({ key, value: bytes("v"), ttlMs: SHORT_TTL });
      await sleep(PAST_SHORT_TTL);
      assert.equal((await kv.exists({ key })).exists, false, "a key whose Expire TTL passed is gone");
    });

    test("MGet answers in request order; MSet writes all pairs with one TTL, the last of a repeated key winning", async () => {
      const [a, b, missing] = [fresh(), fresh(), fresh()];
      await kv.mSet({ entries: [{ key: a, value: bytes("1") }, { key: b, value: bytes("2") }, { key: a, value: bytes("3") }] });
      const values = (await kv.mGet({ keys: [b, missing, a, b] })).values;
      assert.deepEqual(values.map((v) => (v.found ? text(v.value) : null)), ["2", null, "3", "2"]);
      assert.equal((await kv.ttl({ key: a })).ttlMs, -1n);
      await kv.set({ key: b, value: bytes("old") });
      await kv.mSet({ entries: [{ key: a, value: bytes("4") }, { key: b, value: bytes("5") }], ttlMs: 60_000n });
      for (const key of [a, b]) assert.ok((await kv.ttl({ key })).ttlMs > 50_000n, "every pair got the TTL");
      await kv.mSet({ entries: [{ key: a, value: bytes("6") }, { key: b, value: bytes("7") }], ttlMs: SHORT_TTL });
      await sleep(PAST_SHORT_TTL);
      assert.deepEqual((await kv.mGet({ keys: [a, b] })).values.map((v) => v.found), [false, false]);
    });

    test("DeleteMany counts the keys that existed, a repeated key once", async () => {
      const [a, b, missing] = [fresh(), fresh(), fresh()];
      await kv.mSet({ entries: [{ key: a, value: bytes("1") }, { key: b, value: bytes("2") }] });
      assert.equal((await kv.deleteMany({ keys: [a, missing, a, b] })).deletedCount, 2n);
      assert.equal((await kv.deleteMany({ keys: [a, b] })).deletedCount, 0n);
    });

    test("Incr and IncrBy count from 0, keep the TTL and accept negative deltas", async () => {
      const key = fresh();
      assert.equal((await kv.incr({ key })).value, 1n);
      assert.equal((await kv.incrBy({ key, delta: 41n })).value, 42n);
      assert.equal((await kv.incrBy({ key, delta: -50n })).value, -8n);
      assert.equal((await kv.incrBy({ key, delta: 0n })).value, -8n);
      assert.equal(text((await kv.get({ key })).value), "-8");
      await kv.expire({ key, ttlMs: 60_000n });
      await kv.incr({ key });
      assert.ok((await kv.ttl({ key })).ttlMs > 0n, "Incr kept the TTL");
    });

    test("Incr on a value that is not a Redis integer fails with FAILED_PRECONDITION and changes nothing", async () => {
      for (const value of ["abc", "1.5", " 1", "1 ", "+1", "01", "-0", "", "9223372036854775808", "1e3", "0x10"]) {
        const key = fresh();
        await kv.set({ key, value: bytes(value) });
        await rejects(kv.incr({ key }), Code.FailedPrecondition, /not a decimal 64-bit integer/);
        assert.equal(text((await kv.get({ key })).value), value, `value ${JSON.stringify(value)} unchanged`);
      }
      const binary = fresh();
      await kv.set({ key: binary, value: Uint8Array.from([0x31, 0x00]) });
      await rejects(kv.incrBy({ key: binary, delta: 1n }), Code.FailedPrecondition);
    });

    test("Incr never wraps: an overflow fails with OUT_OF_RANGE and the value stays", async () => {
      const key = fresh();
      await kv.set({ key, value: bytes("9223372036854775806") });
      assert.equal((await kv.incr({ key })).value, 9223372036854775807n);
      await rejects(kv.incr({ key }), Code.OutOfRange, /64-bit range/);
      assert.equal(text((await kv.get({ key })).value), "9223372036854775807");
      const low = fresh();
      await kv.set({ key: low, value: bytes("-9223372036854775808") });
      await rejects(kv.incrBy({ key: low, delta: -1n }), Code.OutOfRange);
      assert.equal((await kv.incrBy({ key: low, delta: 9223372036854775807n })).value, -1n);
    });

    test("Scan keeps byte order within a page when the matching keys are scattered among many others", async () => {
      // Regression: on Redis a page gathered from several SCAN steps was sorted per step only,
      // so it came out of order whenever the keyspace was large (e.g. other tests' keys beside).
      const prefix = `scatter:${++n}:`;
      for (let batch = 0; batch < 3; batch++) {
        await kv.mSet({ entries: Array.from({ length: 1000 }, (_, i) => ({ key: bytes(`${prefix}other:${batch}:${i}`), value: bytes("x") })) });
      }
      const names = Array.from({ length: 25 }, (_, i) => `${prefix}match:${String(i).padStart(2, "0")}`);
      await kv.mSet({ entries: names.map((name) => ({ key: bytes(name), value: bytes("v") })) });
      const seen: string[] = [];
      let cursor: Uint8Array = new Uint8Array();
      for (let pages = 0; pages === 0 || (cursor.length > 0 && pages < 500); pages++) {
        const page = await kv.scan({ prefix: bytes(`${prefix}match:`), pageSize: 7, cursor });
        const keys = page.entries.map((entry) => text(entry.key));
        assert.deepEqual(keys, [...keys].sort(), "a page is in byte order");
        seen.push(...keys);
        cursor = page.nextCursor;
      }
      assert.deepEqual([...new Set(seen)].sort(), names);
    });

    test("Scan pages through a prefix in byte order with a resumable cursor, values on request", async () => {
      const prefix = `scan:${++n}:`;
      const names = Array.from({ length: 25 }, (_, i) => `${prefix}${String(i).padStart(2, "0")}`);
      await kv.mSet({ entries: names.map((name) => ({ key: bytes(name), value: bytes(`v-${name}`) })) });
      await kv.set({ key: bytes(`scan:${n};outside`), value: bytes("x") });
      const seen: string[] = [];
      let cursor: Uint8Array = new Uint8Array();
      let pages = 0;
      do {
        const page = await kv.scan({ prefix: bytes(prefix), pageSize: 7, cursor, includeValues: true });
        const keys = page.entries.map((entry) => text(entry.key));
        assert.ok(keys.length <= 7, `page of ${keys.length}`);
        assert.deepEqual(keys, [...keys].sort(), "a page is in byte order");
        for (const entry of page.entries) assert.equal(text(entry.value), `v-${text(entry.key)}`);
        seen.push(...keys);
        cursor = page.nextCursor;
        pages++;
      } while (cursor.length > 0 && pages < 50);
      assert.deepEqual([...new Set(seen)].sort(), names);
      const keysOnly = await kv.scan({ prefix: bytes(prefix), pageSize: 100 });
      assert.equal(keysOnly.entries.length, 25);
      assert.equal(keysOnly.nextCursor.length, 0, "a scan that fits one page ends with an empty cursor");
      assert.ok(keysOnly.entries.every((entry) => entry.value.length === 0));
    });

    test("Scan returns every key present throughout, while other keys come and go between pages", async () => {
      const prefix = `churn:${++n}:`;
      const stable = Array.from({ length: 60 }, (_, i) => `${prefix}s${String(i).padStart(2, "0")}`);
      await kv.mSet({ entries: stable.map((name) => ({ key: bytes(name), value: bytes("s") })) });
      const seen = new Set<string>();
      let cursor: Uint8Array = new Uint8Array();
      let round = 0;
      do {
        const page = await kv.scan({ prefix: bytes(prefix), pageSize: 9, cursor });
        for (const entry of page.entries) seen.add(text(entry.key));
        cursor = page.nextCursor;
        // Churn: add keys on both sides of the cursor and delete some that were added before.
        await kv.mSet({ entries: [{ key: bytes(`${prefix}a${round}`), value: bytes("t") }, { key: bytes(`${prefix}t${round}`), value: bytes("t") }] });
        if (round > 0) await kv.deleteMany({ keys: [bytes(`${prefix}a${round - 1}`), bytes(`${prefix}t${round - 1}`)] });
        round++;
      } while (cursor.length > 0 && round < 200);
      for (const name of stable) assert.ok(seen.has(name), `${name} returned`);
    });

    // Issue 14: on redis, pages were sorted only within one SCAN batch, and a page that ended inside a
    // batch re-ran that SCAN step on the next call, which after a rehash returns other keys: keys present
    // throughout were skipped or repeated.
    test("Scan keeps byte order across pages and returns each key once while the keyspace grows and shrinks", async () => {
      const prefix = `order:${++n}:`;
      const stable = Array.from({ length: 1000 }, (_, i) => `${prefix}s${String(i).padStart(4, "0")}`);
      await kv.mSet({ entries: stable.map((name) => ({ key: bytes(name), value: bytes("s") })) });
      // Keys outside the prefix, so that the store's own iteration mixes them with ours.
      await kv.mSet({ entries: Array.from({ length: 1000 }, (_, i) => ({ key: bytes(`order-other:${n}:${i}`), value: bytes("o") })) });
      let writing = true;
      const writer = (async () => {
        for (let i = 0; writing; i++) {
          await kv.set({ key: bytes(`${prefix}w${i % 300}`), value: bytes("w") });
          if (i % 3 === 0) await kv.delete({ key: bytes(`${prefix}w${(i + 150) % 300}`) });
        }
      })();
      const returned: string[] = [];
      let cursor: Uint8Array = new Uint8Array();
      let round = 0;
      try {
        do {
          const page = await kv.scan({ prefix: bytes(prefix), pageSize: 37, cursor });
          returned.push(...page.entries.map((entry) => text(entry.key)));
          cursor = page.nextCursor;
          // Between pages, 300 keys arrive on both sides of the cursor and the previous 300 leave.
          const churn = (r: number) => Array.from({ length: 150 }, (_, i) => [`${prefix}a${r}:${i}`, `${prefix}t${r}:${i}`]).flat();
          await kv.mSet({ entries: churn(round).map((name) => ({ key: bytes(name), value: bytes("t") })) });
          if (round > 0) await kv.deleteMany({ keys: churn(round - 1).map(bytes) });
          round++;
        } while (cursor.length > 0 && round < 1000);
      } finally {
        writing = false;
        await writer;
      }
      const seen = new Set(returned);
      assert.deepEqual(
        {
          missing: stable.filter((name) => !seen.has(name)),
          repeated: returned.length - seen.size,
          outOfOrder: returned.filter((key, i) => i > 0 && Buffer.compare(Buffer.from(returned[i - 1]!), Buffer.from(key)) > 0).length,
        },
        { missing: [], repeated: 0, outOfOrder: 0 },
        `${round} pages: every key present throughout returned once, in byte order over all pages`,
      );
    });

    test("Scan takes a prefix literally (glob characters included) and an empty prefix lists every key", async () => {
      const prefix = `glob*[?]\\${++n}:`;
      await kv.set({ key: bytes(`${prefix}x`), value: bytes("1") });
      await kv.set({ key: bytes(`glob-${n}:x`), value: bytes("2") });
      assert.deepEqual((await kv.scan({ prefix: bytes(prefix) })).entries.map((e) => text(e.key)), [`${prefix}x`]);
      const all = new Set<string>();
      let cursor: Uint8Array = new Uint8Array();
      do {
        const page = await kv.scan({ pageSize: 500, cursor });
        for (const entry of page.entries) all.add(text(entry.key));
        cursor = page.nextCursor;
      } while (cursor.length > 0);
      assert.ok(all.has(`${prefix}x`) && all.has(`glob-${n}:x`), "the empty prefix lists keys of any prefix");
    });

    test("Scan refuses a cursor that no scan of this prefix handed out", async () => {
      const prefix = `cursor:${++n}:`;
      await kv.mSet({ entries: ["a", "b", "c"].map((name) => ({ key: bytes(prefix + name), value: bytes("v") })) });
      const page = await kv.scan({ prefix: bytes(prefix), pageSize: 1 });
      assert.ok(page.nextCursor.length > 0);
      await rejects(kv.scan({ prefix: bytes("other:"), cursor: page.nextCursor }), Code.InvalidArgument, /^cursor: /);
      await rejects(kv.scan({ pageSize: 10_001 }), Code.InvalidArgument, /^page_size: /);
    });

    test("50 concurrent SetNx on one key: exactly one wins", async () => {
      const key = fresh();
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => kv.setNx({ key, value: bytes(`caller-${i}`) })));
      const winners = results.flatMap((result, i) => (result.written ? [i] : []));
      assert.equal(winners.length, 1);
      assert.equal(text((await kv.get({ key })).value), `caller-${winners[0]}`);
    });

    test("50 concurrent Incr on one key end at 50, each result seen once", async () => {
      const key = fresh();
      const results = await Promise.all(Array.from({ length: 50 }, () => kv.incr({ key })));
      assert.deepEqual(results.map((r) => Number(r.value)).sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i + 1));
      assert.equal(text((await kv.get({ key })).value), "50");
    });

    // The contended paths of the helpers (postgres: compare-and-set, then the row lock; redis: compare-and-set).
    test("100 concurrent RateLimit uses of one key: exactly the limit is allowed, each count seen once", async () => {
      const key = fresh("rate");
      // Sliding window of an hour: no window edge to cross while the calls run.
      const uses = await Promise.all(Array.from({ length: 100 }, () => kv.rateLimit({ key, limit: 60n, windowMs: 3_600_000n })));
      const allowed = uses.filter((use) => use.allowed);
      assert.deepEqual(allowed.map((use) => Number(use.count)).sort((a, b) => a - b), Array.from({ length: 60 }, (_, i) => i + 1));
      assert.ok(uses.filter((use) => !use.allowed).every((use) => use.count === 60n && use.remaining === 0n));
    });

    test("100 concurrent AcquireLock on one free key: exactly one holds it", async () => {
      const key = fresh("lock");
      const attempts = await Promise.all(Array.from({ length: 100 }, () => kv.acquireLock({ key, ttlMs: 60_000n })));
      const holders = attempts.filter((attempt) => attempt.acquired);
      assert.equal(holders.length, 1);
      assert.equal((await kv.releaseLock({ key, token: holders[0]!.token })).released, true);
    });

    test("50 concurrent Set with GET on one key: the previous values returned chain every write exactly once", async () => {
      const key = fresh();
      await kv.set({ key, value: bytes("start") });
      const values = Array.from({ length: 50 }, (_, i) => `v${i}`);
      const sets = await Promise.all(values.map((value) => kv.set({ key, value: bytes(value), returnPrevious: true })));
      const last = text((await kv.get({ key })).value);
      // Each write replaced exactly one other: "start" and every value but the last are each returned once.
      assert.deepEqual(sets.map((set) => text(set.previous)).sort(), ["start", ...values.filter((value) => value !== last)].sort());
    });

    test("RateLimit, fixed window: the counter and its expiry are set together; the limit+1-th use is refused", async () => {
      const key = fresh("rate");
      // Windows of an hour: the calls below cross a window edge (and start over) only once an hour.
      const window = { key, limit: 3n, windowMs: 3_600_000n, algorithm: kvV1.RateLimitAlgorithm.FIXED_WINDOW };
      for (let i = 1; i <= 3; i++) {
        const use = await kv.rateLimit(window);
        assert.deepEqual([use.allowed, use.count, use.remaining, use.limit], [true, BigInt(i), BigInt(3 - i), 3n]);
        assert.ok(use.resetAfterMs > 0n && use.resetAfterMs <= 3_600_000n);
      }
      const refused = await kv.rateLimit(window);
      assert.deepEqual([refused.allowed, refused.count, refused.remaining], [false, 3n, 0n]);
      assert.ok(refused.retryAfterMs > 0n && refused.retryAfterMs <= 3_600_000n, `retry after ${refused.retryAfterMs}`);
      assert.equal((await kv.exists({ key })).exists, false, "the helper's state is not a plain key");
    });

    test("RateLimit, sliding window and GCRA: allow the limit, refuse the next with a retry delay, allow again after it", async () => {
      for (const algorithm of [kvV1.RateLimitAlgorithm.SLIDING_WINDOW, kvV1.RateLimitAlgorithm.GCRA, kvV1.RateLimitAlgorithm.UNSPECIFIED]) {
        // The five calls must fit in one 1.5 s window (GCRA spaces uses 375 ms apart); on a
        // loaded machine they may not, and the round says nothing: it is run again on a fresh key.
        let request;
        let uses;
        for (let round = 1; ; round++) {
          request = { key: fresh("rate"), limit: 4n, windowMs: 1500n, algorithm };
          uses = [];
          const started = Date.now();
          for (let i = 0; i < 5; i++) uses.push(await kv.rateLimit(request));
          if (Date.now() - started < 1500 || round === 5) break;
        }
        assert.deepEqual(uses.map((u) => u.allowed), [true, true, true, true, false], `algorithm ${algorithm}`);
        const refused = uses[4]!;
        assert.equal(refused.remaining, 0n);
        assert.ok(refused.retryAfterMs > 0n && refused.retryAfterMs <= 1600n, `retry after ${refused.retryAfterMs}`);
        await sleep(Number(refused.retryAfterMs) + 5);
        assert.equal((await kv.rateLimit(request)).allowed, true, `allowed after retry_after (algorithm ${algorithm})`);
      }
    });

    test("RateLimit at a window edge: the fixed window lets 2× the limit through, the sliding window only the limit", async () => {
      // Fixed windows start at multiples of window_ms on the backend's clock, which is this machine's.
      const windowMs = 4000;
      const lead = 1000;
      const untilEdge = (windowMs - (Date.now() % windowMs)) % windowMs;
      await sleep(untilEdge > lead ? untilEdge - lead : untilEdge + windowMs - lead);
      const fixed = { key: fresh("edge"), limit: 10n, windowMs: BigInt(windowMs), algorithm: kvV1.RateLimitAlgorithm.FIXED_WINDOW };
      const sliding = { key: fresh("edge"), limit: 10n, windowMs: BigInt(windowMs), algorithm: kvV1.RateLimitAlgorithm.SLIDING_WINDOW };
      const burst = async () => {
        const uses = [];
        for (let i = 0; i < 10; i++) uses.push(await kv.rateLimit(fixed), await kv.rateLimit(sliding));
        return { fixed: uses.filter((_, i) => i % 2 === 0), sliding: uses.filter((_, i) => i % 2 === 1) };
      };
      const before = await burst();
      const edge = Math.ceil(Date.now() / windowMs) * windowMs;
      await sleep(edge - Date.now() + 20);
      const after = await burst();
      assert.deepEqual(before.fixed.map((u) => Number(u.count)), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], "the first burst fit before the edge");
      assert.equal(after.fixed.filter((u) => u.allowed).length, 10, "fixed window: 10 more right after the edge, 20 within a second");
      assert.equal(before.sliding.filter((u) => u.allowed).length, 10);
      assert.equal(after.sliding.filter((u) => u.allowed).length, 0, "sliding window: none of the second burst");
      assert.ok(after.sliding.every((u) => u.retryAfterMs > 0n && u.remaining === 0n));
    });

    test("RateLimit with a cost counts it, and refuses a cost the remaining budget cannot cover", async () => {
      const key = fresh("rate");
      const first = await kv.rateLimit({ key, limit: 10n, windowMs: 60_000n, cost: 7n });
      assert.deepEqual([first.allowed, first.count, first.remaining], [true, 7n, 3n]);
      const second = await kv.rateLimit({ key, limit: 10n, windowMs: 60_000n, cost: 4n });
      assert.deepEqual([second.allowed, second.count, second.remaining], [false, 7n, 3n]);
      assert.equal((await kv.rateLimit({ key, limit: 10n, windowMs: 60_000n, cost: 3n })).allowed, true);
    });

    test("locks: one holder at a time, release and refresh only by the owner's token, fencing numbers increase", async () => {
      const key = fresh("lock");
      const first = await kv.acquireLock({ key, ttlMs: 10_000n });
      assert.equal(first.acquired, true);
      assert.ok(first.token.length >= 16 && first.fencing > 0n);
      const busy = await kv.acquireLock({ key, ttlMs: 10_000n });
      assert.deepEqual([busy.acquired, busy.token, busy.fencing], [false, "", 0n]);
      assert.ok(busy.retryAfterMs > 0n && busy.retryAfterMs <= 10_000n);
      assert.equal((await kv.releaseLock({ key, token: "not-the-token" })).released, false);
      assert.equal((await kv.refreshLock({ key, token: "not-the-token", ttlMs: 10_000n })).refreshed, false);
      assert.equal((await kv.refreshLock({ key, token: first.token, ttlMs: 20_000n })).refreshed, true);
      assert.equal((await kv.releaseLock({ key, token: first.token })).released, true);
      assert.equal((await kv.releaseLock({ key, token: first.token })).released, false, "a second release finds no lock");
      const second = await kv.acquireLock({ key, ttlMs: 10_000n });
      assert.equal(second.acquired, true);
      assert.ok(second.fencing > first.fencing, `fencing ${second.fencing} > ${first.fencing}`);
      assert.notEqual(second.token, first.token);
      assert.equal((await kv.exists({ key })).exists, false, "the lock is not a plain key");
    });

    test("a lock whose TTL passed and that another owner took is not released or refreshed by the first owner", async () => {
      const key = fresh("lock");
      const first = await kv.acquireLock({ key, ttlMs: SHORT_TTL });
      await sleep(PAST_SHORT_TTL);
      const second = await kv.acquireLock({ key, ttlMs: 10_000n });
      assert.equal(second.acquired, true);
      assert.ok(second.fencing > first.fencing);
      assert.equal((await kv.releaseLock({ key, token: first.token })).released, false);
      assert.equal((await kv.refreshLock({ key, token: first.token, ttlMs: 10_000n })).refreshed, false);
      assert.equal((await kv.acquireLock({ key, ttlMs: 10_000n })).acquired, false, "the second owner still holds it");
      assert.equal((await kv.releaseLock({ key, token: second.token })).released, true);
    });

    test("a lock that expired without a new owner is free again, and its old token cannot release it", async () => {
      const key = fresh("lock");
      const first = await kv.acquireLock({ key, ttlMs: SHORT_TTL });
      await sleep(PAST_SHORT_TTL);
      assert.equal((await kv.releaseLock({ key, token: first.token })).released, false);
      assert.equal((await kv.acquireLock({ key, ttlMs: 1000n })).acquired, true);
    });

    test("idempotency keys: NEW, then IN_PROGRESS for others, then COMPLETED with the stored response", async () => {
      const key = fresh("idem");
      const begin = await kv.beginIdempotent({ key, fingerprint: "sha256:aa", ttlMs: 60_000n });
      assert.equal(begin.state, kvV1.IdempotencyState.NEW);
      assert.ok(begin.token.length > 0);
      const concurrent = await kv.beginIdempotent({ key, fingerprint: "sha256:aa", ttlMs: 60_000n });
      assert.equal(concurrent.state, kvV1.IdempotencyState.IN_PROGRESS);
      assert.ok(concurrent.retryAfterMs > 0n && concurrent.retryAfterMs <= 60_000n);
      await rejects(kv.beginIdempotent({ key, fingerprint: "sha256:bb", ttlMs: 60_000n }), Code.AlreadyExists, /different request/);
      await rejects(kv.completeIdempotent({ key, token: "someone-else", response: { body: bytes("x"), status: 200 } }), Code.FailedPrecondition, /does not hold/);
      await kv.completeIdempotent({ key, token: begin.token, response: { body: bytes('{"id":7}'), status: 201 } });
      await kv.completeIdempotent({ key, token: begin.token, response: { body: bytes('{"id":7}'), status: 201 } });
      await rejects(kv.completeIdempotent({ key, token: begin.token, response: { body: bytes("other"), status: 201 } }), Code.FailedPrecondition);
      const replay = await kv.beginIdempotent({ key, fingerprint: "sha256:aa", ttlMs: 60_000n });
      assert.equal(replay.state, kvV1.IdempotencyState.COMPLETED);
      assert.deepEqual([text(replay.response!.body), replay.response!.status], ['{"id":7}', 201]);
      await rejects(kv.beginIdempotent({ key, fingerprint: "sha256:bb", ttlMs: 60_000n }), Code.AlreadyExists);
      assert.equal((await kv.abortIdempotent({ key, token: begin.token })).aborted, false, "a completed key stays completed");
    });

    test("idempotency keys: an aborted claim lets the next caller in; an expired claim too", async () => {
      const key = fresh("idem");
      const begin = await kv.beginIdempotent({ key, fingerprint: "f", ttlMs: 60_000n });
      assert.equal((await kv.abortIdempotent({ key, token: "other" })).aborted, false);
      assert.equal((await kv.abortIdempotent({ key, token: begin.token })).aborted, true);
      const next = await kv.beginIdempotent({ key, fingerprint: "f", ttlMs: SHORT_TTL });
      assert.equal(next.state, kvV1.IdempotencyState.NEW);
      await sleep(PAST_SHORT_TTL);
      await rejects(kv.completeIdempotent({ key, token: next.token, response: { body: bytes("late") } }), Code.FailedPrecondition);
      assert.equal((await kv.beginIdempotent({ key, fingerprint: "other", ttlMs: 1000n })).state, kvV1.IdempotencyState.NEW);
    });

    test("AlreadyProcessed marks an event id once, atomically, for its TTL", async () => {
      const id = fresh("evt");
      const results = await Promise.all(Array.from({ length: 20 }, () => kv.alreadyProcessed({ eventId: id, ttlMs: 60_000n })));
      assert.equal(results.filter((r) => !r.alreadyProcessed).length, 1, "exactly one caller saw it first");
      assert.equal((await kv.alreadyProcessed({ eventId: id, ttlMs: 60_000n })).alreadyProcessed, true);
      const brief = fresh("evt");
      assert.equal((await kv.alreadyProcessed({ eventId: brief, ttlMs: SHORT_TTL })).alreadyProcessed, false);
      await sleep(PAST_SHORT_TTL);
      assert.equal((await kv.alreadyProcessed({ eventId: brief, ttlMs: 60_000n })).alreadyProcessed, false, "forgotten after the TTL");
    });
  });
}
