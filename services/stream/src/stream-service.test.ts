// The stream service with the log service in one process, through real
// clients: fan-out by pattern, snapshots, resume, slow consumers, caps, auth.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { createAnnalsClients } from "@annals/client";
import * as protoLoader from "@grpc/proto-loader";
import { errorReason, retryDelayMs } from "@annals/runtime";
import { PROTO_ROOT } from "@annals/runtime/testing";
import { subjectMatches } from "@annals/topics";
import { MAX_PAYLOAD_DEPTH } from "@annals/chain";
import { rejects, sleep, startStreamHarness, subscribe, type StreamHarness } from "./stream-harness.js";

const TOPICS = Array.from({ length: 20 }, (_, i) => `evt.t${i % 10}.${["created", "updated"][i % 2]}${i >= 10 ? ".detail" : ""}`);
const PATTERNS = ["evt.>", ">", "evt.t1.>", "evt.t2.*", "evt.*.created", "evt.*.updated.detail", "*.t3.>", "evt.t4.created", "evt.*.*", "evt.t5.updated.*", "other.>", "evt.t9.updated.detail"];

describe("stream service: fan-out", () => {
  let harness: StreamHarness;
  before(async () => {
    harness = await startStreamHarness("stream_fanout", { maxStreamsPerUser: 1000 });
  });
  after(async () => {
    await harness?.close();
  });

  test("200 subscribers with different patterns get exactly their entries of 2,000, in seq order, once each", async () => {
    const subscribers = Array.from({ length: 200 }, (_, i) => {
      const topics = [PATTERNS[i % PATTERNS.length]!, ...(i % 7 === 0 ? [PATTERNS[(i + 3) % PATTERNS.length]!] : [])];
      return { topics, received: subscribe(harness.stream, { logId: "fanout", topics }) };
    });
    await Promise.all(subscribers.map(({ received }) => received.until((r) => r.snapshotDone !== undefined)));
    const kinds: string[] = [];
    for (let batch = 0; batch < 20; batch++) {
      const entries = Array.from({ length: 100 }, (_, i) => {
        const kind = TOPICS[(batch * 100 + i) % TOPICS.length]!;
        kinds.push(kind);
        return { kind, payload: { n: batch * 100 + i } };
      });
      await harness.log.appendBatch({ logId: "fanout", entries });
    }
    for (const { topics, received } of subscribers) {
      const expected = kinds.flatMap((kind, i) => (topics.some((pattern) => subjectMatches(pattern, kind)) ? [BigInt(i + 1)] : []));
      // Over 60 s on the 2-core CI machine with another test file running beside it.
      await received.until((r) => r.events.length >= expected.length, 150_000);
      await sleep(0);
      assert.deepEqual(received.events.map((event) => event.seq), expected, `subscriber of ${topics.join(", ")}`);
    }
    const all = subscribers.find(({ topics }) => topics[0] === "evt.t1.>")!.received.events[0]!;
    assert.equal(all.topic, "evt.t1.updated");
    assert.equal(all.event, "updated", "the event name is the topic minus the pattern's literal prefix");
    assert.deepEqual(all.payload, { n: 1 });
    assert.equal(all.snapshot, false);
    for (const { received } of subscribers) received.cancel();
  });

  test("one upstream log subscription is shared by all subscribers of a log, and ends with the last", async () => {
    const upstreams = async () => Number(/^annals_log_subscribers(?:\{[^}]*\})? (\d+)/m.exec(await harness.metrics())?.[1] ?? "0");
    // The previous test's feed winds down asynchronously; start from none.
    for (const deadline = Date.now() + 5000; (await upstreams()) !== 0 && Date.now() < deadline; ) await sleep(20);
    const before = await upstreams();
    assert.equal(before, 0);
    const streams = Array.from({ length: 5 }, () => subscribe(harness.stream, { logId: "shared", topics: [">"] }));
    await Promise.all(streams.map((s) => s.until((r) => r.snapshotDone !== undefined)));
    assert.equal(await upstreams(), before + 1);
    for (const s of streams) s.cancel();
    const deadline = Date.now() + 5000;
    while ((await upstreams()) !== before && Date.now() < deadline) await sleep(20);
    assert.equal(await upstreams(), before, "the upstream subscription stopped with the last subscriber");
  });

  test("a snapshot holds the latest matching entries in seq order, then SnapshotDone, then live entries", async () => {
    for (let i = 1; i <= 30; i++) await harness.log.append({ logId: "snap", entry: { kind: i % 3 === 0 ? "user.deleted" : "user.seen", payload: { i } } });
    const stream = subscribe(harness.stream, { logId: "snap", topics: ["user.deleted"], snapshotLimit: 4 });
    await stream.until((r) => r.snapshotDone !== undefined);
    assert.deepEqual(stream.events.map((e) => [e.seq, e.snapshot]), [[21n, true], [24n, true], [27n, true], [30n, true]]);
    assert.equal(stream.snapshotDone, 30n);
    await harness.log.append({ logId: "snap", entry: { kind: "user.seen", payload: {} } });
    await harness.log.append({ logId: "snap", entry: { kind: "user.deleted", payload: { live: true } } });
    await stream.until((r) => r.events.length === 5);
    assert.deepEqual([stream.events[4]!.seq, stream.events[4]!.snapshot, stream.events[4]!.event], [32n, false, "deleted"]);
    stream.cancel();
  });

  test("resuming after a seq delivers every matching entry after it, once, with no snapshot", async () => {
    const first = subscribe(harness.stream, { logId: "resume", topics: ["job.>"] });
    await first.until((r) => r.snapshotDone !== undefined);
    for (let i = 0; i < 10; i++) await harness.log.append({ logId: "resume", entry: { kind: i % 2 ? "job.done" : "noise", payload: { i } } });
    await first.until((r) => r.events.length === 5);
    first.cancel();
    const lastSeen = first.events[2]!.seq;
    for (let i = 10; i < 20; i++) await harness.log.append({ logId: "resume", entry: { kind: i % 2 ? "job.done" : "noise", payload: { i } } });
    const resumed = subscribe(harness.stream, { logId: "resume", topics: ["job.>"], resumeAfterSeq: lastSeen });
    await resumed.until((r) => r.events.length === 7);
    assert.equal(resumed.snapshotDone, lastSeen, "SnapshotDone comes at once and names the resume point");
    assert.deepEqual(resumed.events.map((e) => e.seq), [8n, 10n, 12n, 14n, 16n, 18n, 20n]);
    assert.ok(resumed.events.every((e) => !e.snapshot));
    await harness.log.append({ logId: "resume", entry: { kind: "job.done", payload: {} } });
    await resumed.until((r) => r.events.length === 8);
    assert.equal(resumed.events[7]!.seq, 21n);
    resumed.cancel();
  });

  test("a log that does not exist yet can be subscribed to; its first entries arrive live", async () => {
    const stream = subscribe(harness.stream, { logId: "not-yet", topics: [">"] });
    await stream.until((r) => r.snapshotDone !== undefined);
    assert.equal(stream.snapshotDone, 0n);
    await harness.stream.publish({ logId: "not-yet", topic: "first.entry", payload: { hello: "world" } });
    await stream.until((r) => r.events.length === 1);
    assert.deepEqual([stream.events[0]!.seq, stream.events[0]!.topic], [1n, "first.entry"]);
    stream.cancel();
  });

  test("Publish appends through the log service; a repeated req_id is a duplicate, not a second entry", async () => {
    const first = await harness.stream.publish({ logId: "published", topic: "order.placed", payload: { id: 1 }, sourceId: "shop", reqId: "r-1", metadata: { region: "eu" } });
    assert.equal(first.seq, 1n);
    assert.match(first.checksum, /^[0-9a-f]{64}$/);
    const again = await harness.stream.publish({ logId: "published", topic: "order.placed", payload: { id: 1 }, sourceId: "shop", reqId: "r-1", metadata: { region: "eu" } });
    assert.deepEqual([again.seq, again.duplicate], [1n, true]);
    const stored = await harness.log.getEntry({ logId: "published", selector: { case: "seq", value: 1n } });
    assert.deepEqual([stored.entry?.kind, stored.entry?.sourceId, stored.entry?.metadata["region"]], ["order.placed", "shop", "eu"]);
    await rejects(harness.stream.publish({ logId: "published", topic: "order..placed", payload: {} }), Code.InvalidArgument, /^topic: /);
    await rejects(harness.stream.publish({ logId: "bad log", topic: "a", payload: {} }), Code.InvalidArgument, /^log_id: /);
  });

  test("bad subscriptions are refused with INVALID_ARGUMENT naming the field", async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ logId: "x", topics: [] }, /^topics: name at least one/],
      [{ logId: "x", topics: ["a..b"] }, /^topics\[0\]: has an empty token/],
      [{ logId: "x", topics: ["ok", "a.>.b"] }, /^topics\[1\]: may use > only as the last token/],
      [{ logId: "x", topics: ["a.b*"] }, /^topics\[0\]: token "b\*"/],
      [{ logId: "x", topics: Array.from({ length: 33 }, (_, i) => `t${i}`) }, /^topics: has 33 patterns/],
      [{ logId: "x", topics: [">"], snapshotLimit: 1001 }, /^snapshot_limit: /],
      [{ logId: "x", topics: [">"], resumeAfterSeq: -1n }, /^resume_after_seq: /],
      [{ logId: "/x", topics: [">"] }, /^log_id: /],
    ];
    for (const [request, message] of cases) {
      const stream = subscribe(harness.stream, request as never);
      await stream.until((r) => r.ended !== undefined).catch(() => {});
      assert.equal(stream.ended?.code, Code.InvalidArgument, `${JSON.stringify(request, (_, v) => (typeof v === "bigint" ? String(v) : v))}`);
      assert.match(stream.ended!.rawMessage, message);
    }
  });

  test(`the deepest payload the log takes (${MAX_PAYLOAD_DEPTH} levels) arrives in a snapshot and live`, async () => {
    let payload: Record<string, unknown> = { leaf: 1 };
    for (let level = 1; level < MAX_PAYLOAD_DEPTH; level++) payload = { level: payload };
    await harness.log.append({ logId: "deep", entry: { kind: "deep.one", payload: payload as never } });
    const received = subscribe(harness.stream, { logId: "deep", topics: ["deep.>"] });
    await received.until((r) => r.snapshotDone !== undefined);
    await harness.log.append({ logId: "deep", entry: { kind: "deep.two", payload: payload as never } });
    await received.until((r) => r.events.length === 2);
    assert.deepEqual(received.events.map((event) => [event.snapshot, event.payload]), [
      [true, payload],
      [false, payload],
    ]);
    received.cancel();
  });

  test("resuming after a seq past the head is OUT_OF_RANGE naming the head, not a stream that skips entries", async () => {
    await harness.log.appendBatch({ logId: "short", entries: Array.from({ length: 40 }, (_, i) => ({ kind: "s.x", payload: { i } })) });
    const ahead = subscribe(harness.stream, { logId: "short", topics: [">"], resumeAfterSeq: 1_000_000n });
    await assert.rejects(ahead.until(() => false));
    assert.equal(ahead.ended?.code, Code.OutOfRange);
    assert.match(ahead.ended!.message, /resume_after_seq 1000000 is past the head of log "short" \(last seq 40\)/);
    const atHead = subscribe(harness.stream, { logId: "short", topics: [">"], resumeAfterSeq: 40n });
    await atHead.until((r) => r.snapshotDone !== undefined);
    atHead.cancel();
  });

  test("an idle stream gets keepalives naming the last seq considered", async () => {
    const quiet = await startStreamHarness("stream_keepalive", { keepaliveMs: 100 });
    try {
      await quiet.log.append({ logId: "quiet", entry: { kind: "a", payload: {} } });
      await quiet.log.append({ logId: "quiet", entry: { kind: "b", payload: {} } });
      const stream = subscribe(quiet.stream, { logId: "quiet", topics: ["a"] });
      await stream.until((r) => r.keepalives.length >= 3, 5000);
      assert.equal(stream.keepalives.at(-1), 2n);
      stream.cancel();
    } finally {
      await quiet.close();
    }
  });
});

describe("stream service: slow consumers", () => {
  let harness: StreamHarness;
  before(async () => {
    harness = await startStreamHarness("stream_slow", { bufferFrames: 50 });
  });
  after(async () => {
    await harness?.close();
  });

  test("a subscriber that stops reading is ended with RESOURCE_EXHAUSTED; the others get every entry", async () => {
    const definition = protoLoader.loadSync("annals/stream/v1/stream_service.proto", { includeDirs: [PROTO_ROOT] });
    const Stream = (grpc.loadPackageDefinition(definition) as any).annals.stream.v1.StreamService;
    const client = new Stream(`127.0.0.1:${harness.server.grpcPort}`, grpc.credentials.createInsecure());
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${await harness.tokenWith(["stream.view"])}`);
    const slow = client.Subscribe({ logId: "busy", topics: [">"] }, metadata);
    const status = new Promise<grpc.StatusObject>((resolve) => slow.on("status", resolve));
    slow.on("error", () => {});
    await new Promise((resolve) => slow.once("data", resolve));
    slow.pause();
    const healthy = subscribe(harness.stream, { logId: "busy", topics: [">"] });
    await healthy.until((r) => r.snapshotDone !== undefined);
    const big = "x".repeat(4000);
    for (let batch = 0; batch < 20; batch++) {
      await harness.log.appendBatch({ logId: "busy", entries: Array.from({ length: 100 }, (_, i) => ({ kind: "load.item", payload: { i: batch * 100 + i, big } })) });
    }
    await healthy.until((r) => r.events.length === 2000, 60_000);
    assert.deepEqual(healthy.events.map((e) => Number(e.seq)), Array.from({ length: 2000 }, (_, i) => i + 1));
    slow.resume();
    const ended = await status;
    assert.equal(ended.code, grpc.status.RESOURCE_EXHAUSTED, `${ended.code}: ${ended.details}`);
    assert.match(ended.details, /fell more than 50 events behind .* resume after seq \d+/);
    client.close();
    assert.match(await harness.metrics(), /annals_stream_slow_consumer_disconnects_total(\{[^}]*\})? 1\b/);
    healthy.cancel();
  });
});

describe("stream service: auth and caps", () => {
  let harness: StreamHarness;
  before(async () => {
    harness = await startStreamHarness("stream_caps", { maxStreamsPerUser: 2, maxStreams: 4 });
  });
  after(async () => {
    await harness?.close();
  });

  const ended = async (stream: ReturnType<typeof subscribe>) => {
    await stream.until((r) => r.ended !== undefined).catch(() => {});
    return stream.ended;
  };

  test("no token, a token without stream.view, and a log the token does not list are refused", async () => {
    const anonymous = createAnnalsClients({ baseUrl: harness.baseUrl }).stream;
    assert.equal((await ended(subscribe(anonymous, { logId: "x", topics: [">"] })))?.code, Code.Unauthenticated);
    const writer = await harness.clientWith(["log.write"]);
    assert.equal((await ended(subscribe(writer, { logId: "x", topics: [">"] })))?.code, Code.PermissionDenied);
    const narrow = await harness.clientWith(["stream.view", "log.write"], { logs: ["mine"] });
    assert.equal((await ended(subscribe(narrow, { logId: "theirs", topics: [">"] })))?.code, Code.PermissionDenied);
    await rejects(narrow.publish({ logId: "theirs", topic: "a", payload: {} }), Code.PermissionDenied);
    const viewer = await harness.clientWith(["stream.view"]);
    await rejects(viewer.publish({ logId: "mine", topic: "a", payload: {} }), Code.PermissionDenied, /log\.write/);
  });

  test("a user's streams beyond the cap are refused with RESOURCE_EXHAUSTED and a retry delay; the global cap too", async () => {
    const alice = await harness.clientWith(["stream.view"], { subject: "alice" });
    const bob = await harness.clientWith(["stream.view"], { subject: "bob" });
    const open = [subscribe(alice, { logId: "c", topics: [">"] }), subscribe(alice, { logId: "c", topics: [">"] })];
    await Promise.all(open.map((s) => s.until((r) => r.snapshotDone !== undefined)));
    const third = await ended(subscribe(alice, { logId: "c", topics: [">"] }));
    assert.equal(third?.code, Code.ResourceExhausted);
    assert.equal(errorReason(third!), "STREAM_LIMIT_PER_USER");
    assert.ok((retryDelayMs(third!) ?? 0) > 0, "with RetryInfo");
    open.push(subscribe(bob, { logId: "c", topics: [">"] }), subscribe(bob, { logId: "c", topics: [">"] }));
    await Promise.all(open.map((s) => s.until((r) => r.snapshotDone !== undefined)));
    const carol = await harness.clientWith(["stream.view"], { subject: "carol" });
    const fifth = await ended(subscribe(carol, { logId: "c", topics: [">"] }));
    assert.equal(errorReason(fifth!), "STREAM_LIMIT_GLOBAL");
    open[0]!.cancel();
    await sleep(100);
    const again = subscribe(alice, { logId: "c", topics: [">"] });
    await again.until((r) => r.snapshotDone !== undefined);
    for (const s of [...open, again]) s.cancel();
  });
});
