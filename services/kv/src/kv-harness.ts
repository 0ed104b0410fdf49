// Test support (not exported by the package): the kv service in this process
// on a chosen backend, connect clients with tokens of chosen roles, and the
// real Redis server for the redis backend and the differential test.
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { createAnnalsClients, type KvClient } from "@annals/client";
import type { Database } from "@annals/db";
import { createTestDatabase, type TestDatabase } from "@annals/db/testing";
import type { RunningServer } from "@annals/runtime";
import type { BackendName } from "./backend.js";
import { createKvComponent, type KvComponentOptions } from "./component.js";
import type { KvBackendConfig } from "./config.js";

import { startTestServer } from "@annals/runtime/testing";

export { rejects } from "@annals/runtime/testing";

export const TEST_SECRET = "kv-service-test-secret-at-least-32-bytes";

/** The Redis server tests use: ANNALS_TEST_REDIS_URL, or the local one. */
export const TEST_REDIS_URL = process.env.ANNALS_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

/**
 * Whether the test Redis answers. Not reachable: a reason to skip with, or a
 * thrown error when ANNALS_TEST_REQUIRE_REDIS=1 (CI), so that a missing Redis
 * fails the run instead of skipping its tests.
 */
export async function redisSkipReason(): Promise<string | false> {
  const redis = new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 2000, retryStrategy: () => null });
  redis.on("error", () => {});
  try {
    await redis.connect();
    await redis.ping();
    return false;
  } catch (error) {
    const reason = `no Redis at ${TEST_REDIS_URL} (${(error as Error).message}); start it or set ANNALS_TEST_REDIS_URL`;
    if (process.env.ANNALS_TEST_REQUIRE_REDIS === "1") throw new Error(`ANNALS_TEST_REQUIRE_REDIS=1 but ${reason}`);
    return reason;
  } finally {
    redis.disconnect();
  }
}

/** A key prefix of its own on the shared Redis server, so that test runs never collide. */
export function uniqueRedisPrefix(label: string): string {
  return `annals-test:${label}:${randomBytes(6).toString("hex")}:`;
}

/** Deletes every key under a prefix of the test Redis. */
export async function clearRedisPrefix(prefix: string): Promise<void> {
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix.replace(/[*?[\]\\]/g, "\\$&")}*`, "COUNT", 1000);
      if (keys.length > 0) await redis.del(keys);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}

export interface KvHarness {
  backend: BackendName;
  /** A client whose token holds `admin`. */
  admin: KvClient;
  /** A client with the given roles (and key prefixes). */
  clientWith(roles: string[], keyPrefixes?: string[]): Promise<KvClient>;
  /** A client without a token. */
  anonymous: KvClient;
  /** The database of the postgres backend (tables in schema `kv`). */
  db: Database;
  server: RunningServer;
  baseUrl: string;
  close(): Promise<void>;
}

export async function startKvHarness(label: string, backend: BackendName, options: Omit<KvComponentOptions, "db" | "backend"> = {}): Promise<KvHarness> {
  const database: TestDatabase = await createTestDatabase(label);
  const db = await database.open();
  const redisPrefix = backend === "redis" ? uniqueRedisPrefix(label) : undefined;
  const backendConfig: KvBackendConfig = backend === "redis" ? { kind: backend, url: TEST_REDIS_URL, keyPrefix: redisPrefix! } : { kind: backend };
  const { server, baseUrl, tokenWith, close } = await startTestServer({
    label,
    secret: TEST_SECRET,
    components: async (context) => [await createKvComponent({ db, backend: backendConfig, ...options }, context)],
    onClose: async () => {
      await database.drop();
      if (redisPrefix) await clearRedisPrefix(redisPrefix);
    },
  });
  const clientWith = async (roles: string[], keyPrefixes?: string[]) =>
    createAnnalsClients({ baseUrl, token: await tokenWith(roles, keyPrefixes ? { kv_prefixes: keyPrefixes } : {}), unaryTimeoutMs: 60_000 }).kv;
  return {
    backend,
    admin: await clientWith(["admin"]),
    clientWith,
    anonymous: createAnnalsClients({ baseUrl, unaryTimeoutMs: 60_000 }).kv,
    db,
    server,
    baseUrl,
    close,
  };
}


/** UTF-8 bytes of a string, for keys and values. */
export const bytes = (text: string) => new TextEncoder().encode(text);
/** A value as a string, for assertions. */
export const text = (value: Uint8Array) => Buffer.from(value).toString();

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A deterministic pseudo-random sequence in [0, 1) (mulberry32), so that a failing seed reproduces. */
export function seededRandom(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
