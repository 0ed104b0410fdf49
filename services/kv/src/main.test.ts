import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { createAnnalsClients } from "@annals/client";
import { createTestDatabase, type TestDatabase } from "@annals/db/testing";
import { signDevToken } from "@annals/runtime";
import { inspectService, runProcessToExit, startServiceProcess, type ServiceProcess } from "@annals/runtime/testing";
import { TEST_REDIS_URL, clearRedisPrefix, redisSkipReason, uniqueRedisPrefix } from "./kv-harness.js";

const MAIN = fileURLToPath(new URL("./main.js", import.meta.url));
const SECRET = "kv-service-test-secret-at-least-32-bytes";
const redisSkip = await redisSkipReason();

describe("the standalone kv service", () => {
  let database: TestDatabase;
  let service: ServiceProcess;
  before(async () => {
    database = await createTestDatabase("kv_main");
    service = await startServiceProcess({ script: MAIN, env: { ...database.env, ANNALS_AUTH_JWT_SECRET: SECRET } });
  });
  after(async () => {
    await service?.stop();
    await database?.drop();
  });

  test("answers health and reflection to grpc-js and buf curl", async () => {
    const seen = await inspectService(service.grpcPort, "annals.kv.v1.KvService");
    assert.equal(seen.health, "SERVING");
    assert.ok(seen.listedByReflection);
    assert.ok(seen.methods.includes("annals.kv.v1.KvService/Get"), `methods: ${seen.methods}`);
  });
});

describe("the standalone kv service on Redis (ANNALS_KV_BACKEND=redis)", { skip: redisSkip }, () => {
  const prefix = uniqueRedisPrefix("kv-main");
  let database: TestDatabase;
  let service: ServiceProcess;
  before(async () => {
    database = await createTestDatabase("kv_main_redis");
    service = await startServiceProcess({
      script: MAIN,
      env: { ...database.env, ANNALS_AUTH_JWT_SECRET: SECRET, ANNALS_KV_BACKEND: "redis", REDIS_URL: TEST_REDIS_URL, ANNALS_KV_REDIS_PREFIX: prefix },
    });
  });
  after(async () => {
    await service?.stop();
    await database?.drop();
    await clearRedisPrefix(prefix);
  });

  test("keeps its keys in Redis under the configured prefix", async () => {
    const token = await signDevToken({ secret: SECRET, subject: "test", roles: ["kv.read", "kv.write"] });
    const { kv } = createAnnalsClients({ baseUrl: `http://127.0.0.1:${service.grpcPort}`, token });
    assert.equal((await kv.getInfo({})).backend, "redis");
    await kv.set({ key: new TextEncoder().encode("where"), value: new TextEncoder().encode("redis") });
    const redis = new Redis(TEST_REDIS_URL);
    try {
      assert.equal(await redis.get(`${prefix}k:where`), "redis");
    } finally {
      redis.disconnect();
    }
  });
});

describe("the standalone kv service on the memory backend", () => {
  // Regression: it opened a pool on DATABASE_URL, or created a PGlite
  // database (seconds of initdb, hundreds of MB), that the backend never used.
  let service: ServiceProcess;
  let dataDir: string;
  before(async () => {
    dataDir = join(mkdtempSync(join(tmpdir(), "annals-kv-nodb-")), "never-created");
    // A database that cannot be reached, and a data directory that must not appear: opening either would show.
    service = await startServiceProcess({ script: MAIN, env: { ANNALS_AUTH_JWT_SECRET: SECRET, ANNALS_KV_BACKEND: "memory", DATABASE_URL: "postgres://annals@127.0.0.1:1/none", ANNALS_DATA_DIR: dataDir } });
  });
  after(async () => {
    await service?.stop();
    rmSync(dirname(dataDir), { recursive: true, force: true });
  });

  test("opens no database", async () => {
    const token = await signDevToken({ secret: SECRET, subject: "test", roles: ["kv.read", "kv.write"] });
    const { kv } = createAnnalsClients({ baseUrl: `http://127.0.0.1:${service.grpcPort}`, token });
    assert.equal((await kv.getInfo({})).backend, "memory");
    await kv.set({ key: new TextEncoder().encode("k"), value: new TextEncoder().encode("v") });
    assert.equal(existsSync(dataDir), false, "no PGlite data directory was created");
  });
});

describe("kv configuration errors", () => {
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ["an unknown backend", { ANNALS_KV_BACKEND: "etcd" }, /^annals-kv: configuration error: ANNALS_KV_BACKEND\b/],
    ["the redis backend without REDIS_URL", { ANNALS_KV_BACKEND: "redis" }, /^annals-kv: configuration error: REDIS_URL\b/],
    ["a REDIS_URL that is not a redis URL", { ANNALS_KV_BACKEND: "redis", REDIS_URL: "http://127.0.0.1:6379" }, /^annals-kv: configuration error: REDIS_URL\b/],
    ["a value limit of 0", { ANNALS_KV_MAX_VALUE_BYTES: "0" }, /^annals-kv: configuration error: ANNALS_KV_MAX_VALUE_BYTES\b/],
    ["a pool size that is not a number", { DATABASE_URL: "postgres://127.0.0.1:1/kv", ANNALS_DATABASE_POOL_SIZE: "ten" }, /^annals-kv: configuration error: ANNALS_DATABASE_POOL_SIZE\b/],
    ["a pool size of 0", { DATABASE_URL: "postgres://127.0.0.1:1/kv", ANNALS_DATABASE_POOL_SIZE: "0" }, /^annals-kv: configuration error: ANNALS_DATABASE_POOL_SIZE\b/],
  ];
  for (const [label, env, expected] of cases) {
    test(`${label} stops the service with one line naming the variable`, async () => {
      const result = await runProcessToExit([MAIN], { ANNALS_DATA_DIR: ":memory:", ANNALS_AUTH_JWT_SECRET: SECRET, ...env });
      assert.equal(result.code, 2, result.stderr);
      const lines = result.stderr.trim().split("\n");
      assert.equal(lines.length, 1, `one line, got:\n${result.stderr}`);
      assert.match(lines[0]!, expected);
    });
  }

  test("a Redis that does not answer stops the service with a message naming it, and no password", async () => {
    const result = await runProcessToExit([MAIN], {
      ANNALS_DATA_DIR: ":memory:",
      ANNALS_AUTH_JWT_SECRET: SECRET,
      ANNALS_KV_BACKEND: "redis",
      REDIS_URL: "redis://:hunter2@127.0.0.1:1",
    });
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /cannot reach Redis at redis:\/\/127\.0\.0\.1:1/);
    assert.doesNotMatch(result.stderr, /hunter2/);
  });
});
