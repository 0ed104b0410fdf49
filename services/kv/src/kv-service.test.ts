// The kv service's input checks, authorisation and sweeper, through real
// clients (connect and grpc-js).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type { kvV1 } from "@annals/proto";
import { signDevToken } from "@annals/runtime";
import { PROTO_ROOT } from "@annals/runtime/testing";
import { TEST_SECRET, bytes, rejects, sleep, startKvHarness, text, type KvHarness } from "./kv-harness.js";

const MAX_VALUE = 1000;

describe("kv service: bad input", () => {
  let harness: KvHarness;
  before(async () => {
    harness = await startKvHarness("kv_input", "memory", { limits: { maxValueBytes: MAX_VALUE } });
  });
  after(async () => {
    await harness?.close();
  });

  test("empty and oversize keys and values are refused, naming the field", async () => {
    const kv = harness.admin;
    await rejects(kv.get({ key: new Uint8Array() }), Code.InvalidArgument, /^key: must not be empty/);
    await rejects(kv.set({ key: new Uint8Array(1025), value: bytes("v") }), Code.InvalidArgument, /^key: is 1025 bytes; at most 1024/);
    await kv.set({ key: new Uint8Array(1024).fill(1), value: new Uint8Array(MAX_VALUE) });
    await rejects(kv.set({ key: bytes("k"), value: new Uint8Array(MAX_VALUE + 1) }), Code.InvalidArgument, /^value: is 1001 bytes; this server accepts at most 1000/);
    await rejects(kv.alreadyProcessed({ eventId: new Uint8Array(), ttlMs: 1000n }), Code.InvalidArgument, /^event_id: /);
    assert.equal((await kv.getInfo({})).maxValueBytes, BigInt(MAX_VALUE));
  });

  test("TTLs: negative where a TTL is optional, zero where one is required, and beyond 100 years are refused", async () => {
    const kv = harness.admin;
    await rejects(kv.set({ key: bytes("k"), value: bytes("v"), ttlMs: -1n }), Code.InvalidArgument, /^ttl_ms: must not be negative/);
    await rejects(kv.setNx({ key: bytes("k"), value: bytes("v"), ttlMs: -1n }), Code.InvalidArgument, /^ttl_ms: /);
    await rejects(kv.mSet({ entries: [{ key: bytes("k"), value: bytes("v") }], ttlMs: -1n }), Code.InvalidArgument, /^ttl_ms: /);
    await rejects(kv.set({ key: bytes("k"), value: bytes("v"), ttlMs: 2n ** 62n }), Code.InvalidArgument, /^ttl_ms: must be at most/);
    await rejects(kv.acquireLock({ key: bytes("k"), ttlMs: 0n }), Code.InvalidArgument, /^ttl_ms: must be at least 1 ms/);
    await rejects(kv.refreshLock({ key: bytes("k"), token: "t", ttlMs: -5n }), Code.InvalidArgument, /^ttl_ms: /);
    await rejects(kv.beginIdempotent({ key: bytes("k"), fingerprint: "f", ttlMs: 0n }), Code.InvalidArgument, /^ttl_ms: /);
    await rejects(kv.alreadyProcessed({ eventId: bytes("e"), ttlMs: 0n }), Code.InvalidArgument, /^ttl_ms: /);
    await rejects(kv.expire({ key: bytes("k"), ttlMs: 2n ** 62n }), Code.InvalidArgument, /^ttl_ms: /);
    assert.equal((await kv.exists({ key: bytes("k") })).exists, false, "nothing was written by the refused calls");
  });

  test("rate limits: limit 0, window 0, a negative cost or one above the limit are refused", async () => {
    const kv = harness.admin;
    const key = bytes("rate");
    await rejects(kv.rateLimit({ key, limit: 0n, windowMs: 1000n }), Code.InvalidArgument, /^limit: must be at least 1/);
    await rejects(kv.rateLimit({ key, limit: 5n, windowMs: 0n }), Code.InvalidArgument, /^window_ms: /);
    await rejects(kv.rateLimit({ key, limit: 5n, windowMs: 1000n, cost: -1n }), Code.InvalidArgument, /^cost: /);
    await rejects(kv.rateLimit({ key, limit: 5n, windowMs: 1000n, cost: 6n }), Code.InvalidArgument, /^cost: is 6, more than the limit 5/);
    await rejects(kv.rateLimit({ key, limit: 5n, windowMs: 1000n, algorithm: 9 as kvV1.RateLimitAlgorithm }), Code.InvalidArgument, /^algorithm: /);
    assert.equal((await kv.rateLimit({ key, limit: 5n, windowMs: 1000n })).count, 1n, "the refused calls counted nothing");
  });

  test("batches: none or more than 1000 keys are refused, a bad key is named by its index, and nothing is half-written", async () => {
    const kv = harness.admin;
    await rejects(kv.mGet({ keys: [] }), Code.InvalidArgument, /^keys: must name at least one key/);
    await rejects(kv.mGet({ keys: Array.from({ length: 1001 }, (_, i) => bytes(`k${i}`)) }), Code.InvalidArgument, /^keys: has 1001 keys/);
    await rejects(kv.deleteMany({ keys: [bytes("a"), bytes("b"), new Uint8Array()] }), Code.InvalidArgument, /^keys\[2\]: must not be empty/);
    await rejects(kv.mSet({ entries: [] }), Code.InvalidArgument, /^entries: /);
    const entries = [
      { key: bytes("batch-a"), value: bytes("1") },
      { key: bytes("batch-b"), value: new Uint8Array(MAX_VALUE + 1) },
    ];
    await rejects(kv.mSet({ entries }), Code.InvalidArgument, /^entries\[1\]\.value: /);
    assert.equal((await kv.exists({ key: bytes("batch-a") })).exists, false, "the valid pair of a refused MSet was not written");
  });

  test("other fields: unknown enum values, empty tokens, long fingerprints, scan limits", async () => {
    const kv = harness.admin;
    await rejects(kv.set({ key: bytes("k"), value: bytes("v"), condition: 7 as kvV1.SetCondition }), Code.InvalidArgument, /^condition: /);
    await rejects(kv.releaseLock({ key: bytes("k"), token: "" }), Code.InvalidArgument, /^token: must not be empty/);
    await rejects(kv.completeIdempotent({ key: bytes("k"), token: "" }), Code.InvalidArgument, /^token: /);
    await rejects(kv.beginIdempotent({ key: bytes("k"), fingerprint: "f".repeat(257), ttlMs: 1000n }), Code.InvalidArgument, /^fingerprint: /);
    await rejects(kv.scan({ pageSize: 10_001 }), Code.InvalidArgument, /^page_size: must be from 0 \(1000\) to 10000/);
    await rejects(kv.scan({ prefix: new Uint8Array(1025) }), Code.InvalidArgument, /^prefix: /);
  });
});

describe("kv service: authorisation", () => {
  let harness: KvHarness;
  before(async () => {
    harness = await startKvHarness("kv_auth", "memory");
  });
  after(async () => {
    await harness?.close();
  });

  test("no token is UNAUTHENTICATED; a token without the method's role is PERMISSION_DENIED", async () => {
    await rejects(harness.anonymous.get({ key: bytes("k") }), Code.Unauthenticated, /bearer token/);
    const reader = await harness.clientWith(["kv.read"]);
    const writer = await harness.clientWith(["kv.write"]);
    await writer.set({ key: bytes("k"), value: bytes("v") });
    assert.equal(text((await reader.get({ key: bytes("k") })).value), "v");
    await rejects(reader.set({ key: bytes("k"), value: bytes("w") }), Code.PermissionDenied, /kv\.write/);
    await rejects(reader.rateLimit({ key: bytes("k"), limit: 1n, windowMs: 1000n }), Code.PermissionDenied);
    await rejects(reader.acquireLock({ key: bytes("k"), ttlMs: 1000n }), Code.PermissionDenied);
    await rejects(writer.get({ key: bytes("k") }), Code.PermissionDenied, /kv\.read/);
    await rejects(writer.scan({}), Code.PermissionDenied);
  });

  test("a token with key prefixes touches only keys under them, in every method", async () => {
    const tenant = await harness.clientWith(["kv.read", "kv.write"], ["tenant-a:", "shared:"]);
    await tenant.set({ key: bytes("tenant-a:x"), value: bytes("1") });
    await tenant.set({ key: bytes("shared:y"), value: bytes("2") });
    await harness.admin.set({ key: bytes("tenant-b:z"), value: bytes("3") });
    await rejects(tenant.get({ key: bytes("tenant-b:z") }), Code.PermissionDenied, /tenant-a:/);
    await rejects(tenant.set({ key: bytes("tenant-b:z"), value: bytes("4") }), Code.PermissionDenied);
    await rejects(tenant.mGet({ keys: [bytes("tenant-a:x"), bytes("tenant-b:z")] }), Code.PermissionDenied, /keys\[1\]/);
    await rejects(tenant.scan({}), Code.PermissionDenied, /prefix/);
    await rejects(tenant.scan({ prefix: bytes("tenant") }), Code.PermissionDenied);
    await rejects(tenant.acquireLock({ key: bytes("tenant-b:lock"), ttlMs: 1000n }), Code.PermissionDenied);
    await rejects(tenant.rateLimit({ key: bytes("other"), limit: 1n, windowMs: 1000n }), Code.PermissionDenied);
    const page = await tenant.scan({ prefix: bytes("tenant-a:") });
    assert.deepEqual(page.entries.map((e) => text(e.key)), ["tenant-a:x"]);
    assert.equal(text((await harness.admin.get({ key: bytes("tenant-b:z") })).value), "3", "the refused Set changed nothing");
  });

  test("grpc-js, as an independent client, sets and reads bytes and gets the gRPC status codes", async () => {
    const definition = protoLoader.loadSync("annals/kv/v1/kv_service.proto", { includeDirs: [PROTO_ROOT], longs: String });
    const Kv = (grpc.loadPackageDefinition(definition) as any).annals.kv.v1.KvService;
    const client = new Kv(`127.0.0.1:${harness.server.grpcPort}`, grpc.credentials.createInsecure());
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${await signDevToken({ secret: TEST_SECRET, subject: "grpc-js", roles: ["kv.read", "kv.write"] })}`);
    const call = <T>(method: string, request: object) =>
      new Promise<T>((resolve, reject) =>
        client[method].call(client, request, metadata, (error: grpc.ServiceError | null, response: T) => (error ? reject(error) : resolve(response))),
      );
    try {
      await call("Set", { key: Buffer.from([1, 2, 3]), value: Buffer.from("grpc-js"), ttlMs: "60000" });
      const got = await call<{ found: boolean; value: Buffer }>("Get", { key: Buffer.from([1, 2, 3]) });
      assert.deepEqual([got.found, got.value.toString()], [true, "grpc-js"]);
      const incremented = await call<{ value: string }>("IncrBy", { key: Buffer.from("counter"), delta: "-9223372036854775807" });
      assert.equal(incremented.value, "-9223372036854775807", "int64 values cross the wire exactly");
      const error = await call("Incr", { key: Buffer.from([1, 2, 3]) }).catch((failure: grpc.ServiceError) => failure);
      assert.equal((error as grpc.ServiceError).code, grpc.status.FAILED_PRECONDITION);
    } finally {
      client.close();
    }
  });
});

describe("kv service: the sweeper", () => {
  let harness: KvHarness;
  before(async () => {
    harness = await startKvHarness("kv_sweep", "postgres", { sweepIntervalMs: 100 });
  });
  after(async () => {
    await harness?.close();
  });

  test("deletes expired keys and helper states from the tables, and leaves live ones", async () => {
    const kv = harness.admin;
    // Long enough that the counts below are taken before anything expires, even on a loaded machine.
    await kv.mSet({ entries: Array.from({ length: 30 }, (_, i) => ({ key: bytes(`gone-${i}`), value: bytes("x") })), ttlMs: 1500n });
    await kv.set({ key: bytes("stays"), value: bytes("y") });
    await kv.set({ key: bytes("stays-with-ttl"), value: bytes("z"), ttlMs: 600_000n });
    await kv.alreadyProcessed({ eventId: bytes("evt"), ttlMs: 1500n });
    const count = async () => {
      const { rows } = await harness.db.query<{ entries: bigint; states: bigint }>(
        "select (select count(*) from kv.entries) as entries, (select count(*) from kv.states) as states",
      );
      return [Number(rows[0]!.entries), Number(rows[0]!.states)];
    };
    assert.deepEqual(await count(), [32, 1]);
    const deadline = Date.now() + 10_000;
    // One sweep deletes the expired entries, then the expired states: wait for both.
    while (String(await count()) !== "2,0" && Date.now() < deadline) await sleep(50);
    assert.deepEqual(await count(), [2, 0]);
    const scrape = await fetch(`http://127.0.0.1:${harness.server.httpPort}/metrics`).then((response) => response.text());
    assert.match(scrape, /annals_kv_keys_swept_total\{[^}]*backend="postgres"[^}]*\} 31/);
    assert.match(scrape, /annals_kv_operations_total\{[^}]*method="mSet"[^}]*\} 1/);
  });
});
