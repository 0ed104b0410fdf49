// Differential test: one random sequence of operations, run against the KV
// service (on each backend) and as plain Redis commands on the real server,
// must give the same result at every step.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { Redis, ReplyError } from "ioredis";
import { kvV1 } from "@annals/proto";
import type { KvClient } from "@annals/client";
import type { BackendName } from "./backend.js";
import {
  TEST_REDIS_URL,
  bytes,
  clearRedisPrefix,
  redisSkipReason,
  seededRandom as random,
  startKvHarness,
  text,
  uniqueRedisPrefix,
  type KvHarness,
} from "./kv-harness.js";

const redisSkip = await redisSkipReason();
const STEPS = 800;
const KEYS = ["a", "b", "c", "d", "e", "f"];
const VALUES = ["1", "0", "-5", "12", "x", "", "9223372036854775806", "-9223372036854775807", "007", "1.5"];
const DELTAS = [1n, -3n, 100n, 9223372036854775807n, -9223372036854775808n];

type Step =
  | { op: "get" | "exists" | "ttl" | "incr" | "delete"; key: string }
  | { op: "set"; key: string; value: string; condition: "NX" | "XX" | undefined; ttl: boolean; keepTtl: boolean; get: boolean }
  | { op: "setNx"; key: string; value: string }
  | { op: "incrBy"; key: string; delta: bigint }
  | { op: "expire"; key: string; ttlMs: number }
  | { op: "mGet" | "deleteMany"; keys: string[] }
  | { op: "mSet"; pairs: [string, string][]; ttl: boolean }
  | { op: "scan" };

function steps(seed: number): Step[] {
  const next = random(seed);
  const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)]!;
  const some = () => Array.from({ length: 1 + Math.floor(next() * 4) }, () => pick(KEYS));
  return Array.from({ length: STEPS }, (): Step => {
    const key = pick(KEYS);
    switch (pick(["get", "exists", "ttl", "incr", "delete", "set", "set", "set", "setNx", "incrBy", "incrBy", "expire", "mGet", "deleteMany", "mSet", "scan"] as const)) {
      case "set": {
        const ttl = next() < 0.3;
        return { op: "set", key, value: pick(VALUES), condition: pick([undefined, undefined, "NX", "XX"] as const), ttl, keepTtl: !ttl && next() < 0.3, get: next() < 0.4 };
      }
      case "setNx":
        return { op: "setNx", key, value: pick(VALUES) };
      case "incrBy":
        return { op: "incrBy", key, delta: pick(DELTAS) };
      case "expire":
        return { op: "expire", key, ttlMs: pick([-1, 0, 60_000, 120_000]) };
      case "mGet":
        return { op: "mGet", keys: some() };
      case "deleteMany":
        return { op: "deleteMany", keys: some() };
      case "mSet":
        return { op: "mSet", pairs: some().map((k) => [k, pick(VALUES)]), ttl: next() < 0.3 };
      case "scan":
        return { op: "scan" };
      case "get":
      case "exists":
      case "ttl":
      case "incr":
      case "delete":
        return { op: pick(["get", "exists", "ttl", "incr", "delete"] as const), key };
    }
  });
}

/** A TTL compares by kind: a remaining time differs by the ms between the two calls. */
const ttlKind = (ms: number) => (ms < 0 ? ms : "expires");

/** Errors compare by gRPC code; Redis errors map to the code the service gives for them. */
function redisErrorCode(error: unknown): string {
  if (!(error instanceof ReplyError)) throw error;
  const message = (error as Error).message;
  if (/not an integer/.test(message)) return Code[Code.FailedPrecondition];
  if (/overflow/.test(message)) return Code[Code.OutOfRange];
  return `redis: ${message}`;
}

async function viaRedis(redis: Redis, prefix: string, step: Step): Promise<unknown> {
  const k = (key: string) => prefix + key;
  try {
    switch (step.op) {
      case "get":
        return await redis.get(k(step.key));
      case "exists":
        return Number(await redis.exists(k(step.key))) === 1;
      case "ttl":
        return ttlKind(Number(await redis.pttl(k(step.key))));
      case "delete":
        return Number(await redis.del(k(step.key))) === 1;
      case "incr":
        return String(await redis.incr(k(step.key)));
      case "incrBy":
        return String(await redis.call("INCRBY", k(step.key), step.delta.toString()));
      case "set": {
        const args: (string | number)[] = [k(step.key), step.value];
        if (step.condition) args.push(step.condition);
        if (step.get) args.push("GET");
        if (step.ttl) args.push("PX", 60_000);
        if (step.keepTtl) args.push("KEEPTTL");
        const reply = await redis.call("SET", ...args);
        return step.get ? reply : reply === "OK";
      }
      case "setNx":
        return Number(await redis.setnx(k(step.key), step.value)) === 1;
      case "expire":
        return Number(await redis.pexpire(k(step.key), step.ttlMs)) === 1;
      case "mGet":
        return await redis.mget(step.keys.map(k));
      case "deleteMany":
        return Number(await redis.del([...new Set(step.keys)].map(k)));
      case "mSet": {
        if (!step.ttl) return await redis.mset(step.pairs.flatMap(([key, value]) => [k(key), value]));
        const transaction = redis.multi();
        for (const [key, value] of step.pairs) transaction.set(k(key), value, "PX", 60_000);
        await transaction.exec();
        return "OK";
      }
      case "scan": {
        const found: string[] = [];
        let cursor = "0";
        do {
          const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 100);
          found.push(...keys.map((key) => key.slice(prefix.length)));
          cursor = next;
        } while (cursor !== "0");
        return [...new Set(found)].sort();
      }
    }
  } catch (error) {
    return { error: redisErrorCode(error) };
  }
}

async function viaService(kv: KvClient, step: Step): Promise<unknown> {
  try {
    switch (step.op) {
      case "get": {
        const got = await kv.get({ key: bytes(step.key) });
        return got.found ? text(got.value) : null;
      }
      case "exists":
        return (await kv.exists({ key: bytes(step.key) })).exists;
      case "ttl":
        return ttlKind(Number((await kv.ttl({ key: bytes(step.key) })).ttlMs));
      case "delete":
        return (await kv.delete({ key: bytes(step.key) })).deleted;
      case "incr":
        return String((await kv.incr({ key: bytes(step.key) })).value);
      case "incrBy":
        return String((await kv.incrBy({ key: bytes(step.key), delta: step.delta })).value);
      case "set": {
        const condition = { NX: kvV1.SetCondition.IF_ABSENT, XX: kvV1.SetCondition.IF_PRESENT, none: kvV1.SetCondition.UNSPECIFIED }[step.condition ?? "none"];
        const set = await kv.set({ key: bytes(step.key), value: bytes(step.value), condition, ttlMs: step.ttl ? 60_000n : 0n, keepTtl: step.keepTtl, returnPrevious: step.get });
        return step.get ? (set.previousFound ? text(set.previous) : null) : set.written;
      }
      case "setNx":
        return (await kv.setNx({ key: bytes(step.key), value: bytes(step.value) })).written;
      case "expire":
        return (await kv.expire({ key: bytes(step.key), ttlMs: BigInt(step.ttlMs) })).applied;
      case "mGet":
        return (await kv.mGet({ keys: step.keys.map(bytes) })).values.map((value) => (value.found ? text(value.value) : null));
      case "deleteMany":
        return Number((await kv.deleteMany({ keys: step.keys.map(bytes) })).deletedCount);
      case "mSet":
        await kv.mSet({ entries: step.pairs.map(([key, value]) => ({ key: bytes(key), value: bytes(value) })), ttlMs: step.ttl ? 60_000n : 0n });
        return "OK";
      case "scan": {
        const found: string[] = [];
        let cursor: Uint8Array = new Uint8Array();
        do {
          const page = await kv.scan({ pageSize: 4, cursor });
          found.push(...page.entries.map((entry) => text(entry.key)));
          cursor = page.nextCursor;
        } while (cursor.length > 0);
        return [...new Set(found)].sort();
      }
    }
  } catch (error) {
    return { error: Code[ConnectError.from(error).code] };
  }
}

describe("differential: the KV service against plain Redis commands", { skip: redisSkip }, () => {
  let redis: Redis;
  const harnesses: KvHarness[] = [];
  before(async () => {
    // Integer replies as strings: INCR results span the whole 64-bit range.
    redis = new Redis(TEST_REDIS_URL, { stringNumbers: true });
  });
  after(async () => {
    redis?.disconnect();
    for (const harness of harnesses) await harness.close();
  });

  for (const backend of ["memory", "postgres", "redis"] as BackendName[]) {
    test(`${STEPS} random operations on the ${backend} backend give Redis's results at every step`, async () => {
      const harness = await startKvHarness(`kv_diff_${backend}`, backend);
      harnesses.push(harness);
      const prefix = uniqueRedisPrefix(`diff-${backend}`);
      const seed = 20261123 + backend.length;
      const kinds = new Set<string>();
      try {
        for (const [i, step] of steps(seed).entries()) {
          const expected = await viaRedis(redis, prefix, step);
          const actual = await viaService(harness.admin, step);
          assert.deepEqual(actual, expected, `seed ${seed}, step ${i}: ${JSON.stringify(step, (_, v) => (typeof v === "bigint" ? String(v) : v))}`);
          kinds.add(`${step.op}:${JSON.stringify(expected)?.startsWith('{"error"') ? "error" : "ok"}`);
        }
      } finally {
        await clearRedisPrefix(prefix);
      }
      // The sequence reached the interesting outcomes, not only the easy ones.
      for (const kind of ["incr:error", "incrBy:error", "incrBy:ok", "set:ok", "scan:ok", "expire:ok"]) assert.ok(kinds.has(kind), `covered ${kind}`);
    });
  }
});
