// The redis backend's key index (redis-backend.ts) against the real Redis
// server: every write keeps it equal to the live keys, expired keys leave it,
// and keys written before it existed join it at connect.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import type { SetCondition } from "./backend.js";
import { TEST_REDIS_URL, bytes, clearRedisPrefix, redisSkipReason, seededRandom, sleep, text, uniqueRedisPrefix } from "./kv-harness.js";
import { RedisBackend } from "./redis-backend.js";

const redisSkip = await redisSkipReason();

describe("redis backend: the key index behind Scan", { skip: redisSkip }, () => {
  let redis: Redis;
  const prefixes: string[] = [];
  /** A backend on a key prefix of its own. */
  const connect = async (prefix = uniqueRedisPrefix("kv-index")) => {
    prefixes.push(prefix);
    return { prefix, backend: await RedisBackend.connect({ url: TEST_REDIS_URL, keyPrefix: prefix }) };
  };
  /** The index's members, the expiry index's members with their scores, and the entries with their expiry, as Redis holds them. */
  const snapshot = async (prefix: string) => {
    const indexed = (await redis.zrange(`${prefix}i:keys`, 0, -1)).sort();
    const expiring = Object.fromEntries(chunk(await redis.zrange(`${prefix}i:expiring`, 0, -1, "WITHSCORES")));
    const entries: string[] = [];
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}k:*`, "COUNT", 1000);
      entries.push(...keys.map((key) => key.slice(`${prefix}k:`.length)));
      cursor = next;
    } while (cursor !== "0");
    const expiries: Record<string, string> = {};
    for (const key of entries) {
      const at = Number(await redis.call("PEXPIRETIME", `${prefix}k:${key}`));
      if (at > 0) expiries[key] = String(at);
    }
    return { indexed, expiring, entries: [...new Set(entries)].sort(), expiries };
  };

  before(() => {
    redis = new Redis(TEST_REDIS_URL);
  });
  after(async () => {
    for (const prefix of prefixes) await clearRedisPrefix(prefix);
    redis?.disconnect();
  });

  test("after every kind of write the index holds exactly the live keys, and the expiry index their expiries", async () => {
    const { prefix, backend } = await connect();
    const next = seededRandom(14);
    const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)]!;
    const names = Array.from({ length: 12 }, (_, i) => `key${i}`);
    const conditions: SetCondition[] = ["always", "ifAbsent", "ifPresent"];
    const kinds = new Set<string>();
    try {
      for (let step = 0; step < 600; step++) {
        const key = bytes(pick(names));
        const kind = pick(["set", "setTtl", "setKeepTtl", "mset", "msetTtl", "delete", "expire", "persistBySet", "incr"] as const);
        kinds.add(kind);
        switch (kind) {
          case "set":
          case "setTtl":
          case "setKeepTtl":
            await backend.set(key, bytes(String(step)), {
              ttlMs: kind === "setTtl" ? 60_000 : 0,
              condition: pick(conditions),
              keepTtl: kind === "setKeepTtl",
              returnPrevious: next() < 0.5,
            });
            break;
          case "persistBySet":
            await backend.set(key, bytes("7"), { ttlMs: 0, condition: "always", keepTtl: false, returnPrevious: false });
            break;
          case "mset":
          case "msetTtl":
            await backend.mset([...new Set([pick(names), pick(names), pick(names)])].map((name) => [bytes(name), bytes("1")] as const), kind === "msetTtl" ? 60_000 : 0);
            break;
          case "delete":
            await backend.delete([...new Set([pick(names), pick(names)])].map(bytes));
            break;
          case "expire":
            await backend.expire(key, pick([0, 30_000, 90_000]));
            break;
          case "incr":
            await backend.incrBy(key, 1n).catch(() => undefined);
            break;
        }
        const state = await snapshot(prefix);
        assert.deepEqual(state.indexed, state.entries, `step ${step} (${kind}): the index holds the live keys`);
        assert.deepEqual(state.expiring, state.expiries, `step ${step} (${kind}): the expiry index holds each TTL`);
      }
      assert.equal(kinds.size, 9, "every kind of write ran");
    } finally {
      await backend.close();
    }
  });

  test("keys that expired leave both indexes at the next sweep, or when a Scan meets them", async () => {
    const { prefix, backend } = await connect();
    try {
      const options = { condition: "always", keepTtl: false, returnPrevious: false } as const;
      await backend.set(bytes("brief"), bytes("1"), { ...options, ttlMs: 50 });
      await backend.set(bytes("extended"), bytes("1"), { ...options, ttlMs: 50 });
      await backend.set(bytes("kept"), bytes("1"), { ...options, ttlMs: 0 });
      // Straight on Redis, past the index: its expiry index entry is now too early.
      await redis.pexpire(`${prefix}k:extended`, 60_000);
      await sleep(150);
      assert.equal(await backend.sweep(), 1, "one key had gone");
      const swept = await snapshot(prefix);
      assert.deepEqual(swept.indexed, ["extended", "kept"]);
      assert.deepEqual(Object.keys(swept.expiring), ["extended"], "the extended key is scored with its new expiry");
      assert.equal(swept.expiring.extended, swept.expiries.extended);

      await backend.set(bytes("brief"), bytes("1"), { ...options, ttlMs: 50 });
      await sleep(150);
      const page = await backend.scan(new Uint8Array(), new Uint8Array(), 10, false);
      assert.deepEqual(page.entries.map((entry) => text(entry.key)), ["extended", "kept"]);
      assert.deepEqual((await snapshot(prefix)).indexed, ["extended", "kept"], "the Scan dropped the expired member");
    } finally {
      await backend.close();
    }
  });

  test("a Scan page past many expired members ends early with a cursor, and the next page goes on after it", async () => {
    const { prefix, backend } = await connect();
    try {
      // 1,500 members whose keys are gone (as after expiry), between two live keys.
      await redis.zadd(`${prefix}i:keys`, ...Array.from({ length: 1500 }, (_, i) => [0, `m${String(i).padStart(4, "0")}`]).flat());
      await backend.mset([[bytes("a"), bytes("1")], [bytes("z"), bytes("2")]], 0);
      const first = await backend.scan(new Uint8Array(), new Uint8Array(), 5, true);
      assert.deepEqual(first.entries.map((entry) => text(entry.key)), ["a"]);
      assert.ok(first.nextCursor.length > 0, "the page stopped inside the expired members");
      const rest = await backend.scan(new Uint8Array(), first.nextCursor, 5, true);
      assert.deepEqual(rest.entries.map((entry) => [text(entry.key), text(entry.value!)]), [["z", "2"]]);
      assert.equal(rest.nextCursor.length, 0);
      assert.deepEqual((await snapshot(prefix)).indexed, ["a", "z"]);
    } finally {
      await backend.close();
    }
  });

  test("keys written before the index existed are indexed at connect, once", async () => {
    const prefix = uniqueRedisPrefix("kv-index-upgrade");
    prefixes.push(prefix);
    // What a version of the service without the index left behind.
    await redis.set(`${prefix}k:old-plain`, "1");
    await redis.set(`${prefix}k:old-expiring`, "2", "PX", 60_000);
    const { backend } = await connect(prefix);
    try {
      const page = await backend.scan(bytes("old-"), new Uint8Array(), 10, true);
      assert.deepEqual(page.entries.map((entry) => text(entry.key)), ["old-expiring", "old-plain"]);
      const state = await snapshot(prefix);
      assert.deepEqual(state.expiring, state.expiries);
      // Once indexed, a restart does not walk the keyspace again.
      await redis.set(`${prefix}k:written-past-the-index`, "3");
      const { backend: restarted } = await connect(prefix);
      assert.equal((await restarted.scan(bytes("written-"), new Uint8Array(), 10, false)).entries.length, 0);
      await restarted.close();
    } finally {
      await backend.close();
    }
  });
});

/** [member, score, member, score…] as [[member, score]…]. */
function chunk(flat: string[]): [string, string][] {
  return Array.from({ length: flat.length / 2 }, (_, i) => [flat[2 * i]!, flat[2 * i + 1]!]);
}
