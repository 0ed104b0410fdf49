// The helper transitions on a fake clock: what they decide at exact times,
// which the service tests cannot reach with a real clock.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Decide, Stored } from "./backend.js";
import { decideAcquireLock, decideRateLimit, decideReleaseLock, LOCK_RECORD_RETENTION_MS, SLIDING_BUCKETS, type RateAlgorithm } from "./transitions.js";
import { seededRandom as random } from "./kv-harness.js";

/** One key's state as a backend keeps it: applies writes, forgets it at its expiry. */
function fakeStore() {
  let stored: Stored | undefined;
  return <R>(decide: Decide<R>, nowMs: number): R => {
    const live = stored && (stored.expiresAtMs === null || stored.expiresAtMs > nowMs) ? stored : undefined;
    const { result, write } = decide(live, nowMs);
    if (write === "delete") stored = undefined;
    else if (write) stored = write;
    return result;
  };
}

function limiter(algorithm: RateAlgorithm, limit: number, windowMs: number) {
  const apply = fakeStore();
  return (nowMs: number, cost = 1) => apply(decideRateLimit(algorithm, { limit, windowMs, cost }), nowMs);
}

const T0 = 1_700_000_000_000;

test("at a window edge the fixed window lets 2× the limit through; the sliding window lets none of the second burst", () => {
  const windowMs = 1000;
  const start = Math.ceil(T0 / windowMs) * windowMs;
  const fixed = limiter("fixed", 10, windowMs);
  const sliding = limiter("sliding", 10, windowMs);
  const burst = (use: (t: number) => { allowed: boolean }, at: number) => Array.from({ length: 10 }, () => use(at)).filter((u) => u.allowed).length;
  // Ten uses in the last millisecond of a window, ten more in the first of the next.
  assert.equal(burst(fixed, start + 999), 10);
  assert.equal(burst(fixed, start + 1000), 10, "fixed: 20 uses within 2 ms");
  assert.equal(burst(sliding, start + 999), 10);
  assert.equal(burst(sliding, start + 1000), 0, "sliding: the second burst is refused");
  const refused = sliding(start + 1000);
  assert.equal(refused.allowed, false);
  // The burst's bucket leaves the window one window after it ends.
  assert.equal(start + 1000 + refused.retryAfterMs, start + 999 - ((start + 999) % (windowMs / SLIDING_BUCKETS)) + windowMs / SLIDING_BUCKETS + windowMs - 1);
  assert.equal(sliding(start + 1000 + refused.retryAfterMs - 1).allowed, false, "not a millisecond early");
  assert.equal(sliding(start + 1000 + refused.retryAfterMs).allowed, true, "allowed exactly at retry_after");
});

for (const algorithm of ["sliding", "fixed", "gcra"] as const) {
  test(`${algorithm}: a refused use is allowed at retry_after when nothing else happens, never before`, () => {
    const next = random(7);
    for (let round = 0; round < 200; round++) {
      const limit = 1 + Math.floor(next() * 20);
      const windowMs = 10 + Math.floor(next() * 5000);
      const use = limiter(algorithm, limit, windowMs);
      let t = T0 + Math.floor(next() * windowMs);
      let refused;
      for (let i = 0; i < 10 * limit && !refused; i++) {
        const outcome = use(t);
        if (!outcome.allowed) refused = outcome;
        else t += Math.floor(next() * 3);
      }
      assert.ok(refused, "a burst of 10× the limit hits the limit");
      assert.ok(refused.retryAfterMs > 0);
      if (refused.retryAfterMs > 1) assert.equal(use(t + refused.retryAfterMs - 1).allowed, false, `round ${round}: early`);
      assert.equal(use(t + refused.retryAfterMs).allowed, true, `round ${round}: at retry_after`);
    }
  });
}

test("sliding window: no interval of one window ever holds more than the limit, under random traffic", () => {
  const next = random(42);
  for (let round = 0; round < 100; round++) {
    const limit = 1 + Math.floor(next() * 30);
    const windowMs = 1 + Math.floor(next() * 3000);
    const use = limiter("sliding", limit, windowMs);
    const allowed: number[] = [];
    let t = T0 + Math.floor(next() * 100_000);
    for (let i = 0; i < 2000; i++) {
      // Bursts and pauses: many uses in the same millisecond, then gaps up to a window.
      t += next() < 0.7 ? 0 : Math.floor(next() * windowMs * (next() < 0.9 ? 0.1 : 1.5));
      const cost = 1 + Math.floor(next() * Math.min(3, limit));
      if (use(t, cost).allowed) for (let c = 0; c < cost; c++) allowed.push(t);
    }
    // Every interval of length window_ms that holds the most uses ends at an allowed use.
    let first = 0;
    for (let last = 0; last < allowed.length; last++) {
      while (allowed[first]! <= allowed[last]! - windowMs) first++;
      assert.ok(last - first + 1 <= limit, `round ${round}: ${last - first + 1} uses in ${windowMs} ms, limit ${limit}`);
    }
    assert.ok(allowed.length >= limit, `round ${round}: the limiter let traffic through (${allowed.length})`);
  }
});

test("sliding window: steady traffic at the limit's rate is let through (refusals cost at most one sub-window)", () => {
  const use = limiter("sliding", 100, 1000);
  let allowed = 0;
  // One use every 10 ms for 60 s: exactly the limit's rate.
  for (let t = T0; t < T0 + 60_000; t += 10) allowed += Number(use(t).allowed);
  assert.ok(allowed >= 6000 * (1 - 1 / SLIDING_BUCKETS), `${allowed} of 6000 allowed`);
});

test("GCRA: a burst of the limit, then one use per window/limit", () => {
  const use = limiter("gcra", 5, 1000);
  const burst = Array.from({ length: 6 }, () => use(T0).allowed);
  assert.deepEqual(burst, [true, true, true, true, true, false]);
  assert.equal(use(T0 + 199).allowed, false);
  assert.equal(use(T0 + 200).allowed, true);
  assert.equal(use(T0 + 200).allowed, false);
});

test("fencing numbers keep increasing after the lock record expired", () => {
  const apply = fakeStore();
  const first = apply(decideAcquireLock(10), T0);
  assert.ok(first.acquired);
  assert.equal(apply(decideReleaseLock(first.token), T0 + 1), true);
  // A burst of acquisitions moves the fencing number ahead of the clock...
  let fencing = first.fencing;
  for (let i = 0; i < 50; i++) {
    const lock = apply(decideAcquireLock(10), T0 + 2);
    assert.ok(lock.acquired && lock.fencing > fencing);
    fencing = lock.fencing;
    apply(decideReleaseLock(lock.token), T0 + 2);
  }
  // ...and after the record expired the clock has passed it.
  const later = apply(decideAcquireLock(10), T0 + 2 + LOCK_RECORD_RETENTION_MS + 1);
  assert.ok(later.acquired && later.fencing > fencing, `${later.fencing} > ${fencing}`);
});
