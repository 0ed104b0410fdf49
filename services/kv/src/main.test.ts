import assert from "node:assert/strict";
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

describe("kv configuration errors", () => {
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ["an unknown backend", { ANNALS_KV_BACKEND: "etcd" }, /^annals-kv: configuration error: ANNALS_KV_BACKEND\b/],
    ["the redis backend without REDIS_URL", { ANNALS_KV_BACKEND: "redis" }, /^annals-kv: configuration error: REDIS_URL\b/],
    ["a REDIS_URL that is not a redis URL", { ANNALS_KV_BACKEND: "redis", REDIS_URL: "http://127.0.0.1:6379" }, /^annals-kv: configuration error: REDIS_URL\b/],
    ["a value limit of 0", { ANNALS_KV_MAX_VALUE_BYTES: "0" }, /^annals-kv: configuration error: ANNALS_KV_MAX_VALUE_BYTES\b/],
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
