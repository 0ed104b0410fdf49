// The stream service with the log service in one process, through real
// clients: fan-out by pattern, snapshots, resume, batch frames, event names,
// heartbeats, Publish, slow consumers, caps, auth.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import * as grpc from "@grpc/grpc-js";
import { createAnnalsClients } from "@annals/client";
import * as protoLoader from "@grpc/proto-loader";
import { rpcDetails } from "@annals/proto";
import { errorReason, retryDelayMs } from "@annals/runtime";
import { PROTO_ROOT, until } from "@annals/runtime/testing";
import { subjectMatches } from "@annals/topics";
import { MAX_PAYLOAD_DEPTH } from "@annals/chain";
import { jsonEntry, rejects, seqs, sleep, startStreamHarness, subscribe, type StreamHarness } from "./stream-harness.js";

const range = (from: number, to: number): bigint[] => Array.from({ length: to - from + 1 }, (_, i) => BigInt(from + i));

const TOPICS = Array.from({ length: 20 }, (_, i) => `evt.t${i % 10}.${["created", "updated"][i % 2]}${i >= 10 ? ".detail" : ""}`);
const PATTERNS = ["evt.>", ">", "evt.t1.>", "evt.t2.*", "evt.*.created", "evt.*.updated.detail", "*.t3.>", "evt.t4.created", "evt.*.*", "evt.t5.updated.*", "other.>", "evt.t9.updated.detail"];

describe("stream service: fan-out", () => {
  let harness: StreamHarness;
  before(async () => {
    // These tests check what subscribers get, not when they count as slow (the next describe does):
    // the log service hands the feed a whole commit at once, and 200 clients in this process read
    // ~2k events/s in all on 2 shared cores, so a buffer that holds a whole burst keeps them apart.
    harness = await startStreamHarness("stream_fanout", { maxStreamsPerUser: 1000, bufferFrames: 5000 });
  });
  after(async () => {
    await harness?.close();
  });

  test("200 subscribers with different patterns get exactly their entries of 2,000, in seq order, once each", async () => {
    const subscribers = Array.from({ length: 200 }, (_, i) => {
      const kinds = [PATTERNS[i % PATTERNS.length]!, ...(i % 7 === 0 ? [PATTERNS[(i + 3) % PATTERNS.length]!] : [])];
      return { kinds, received: subscribe(harness.stream, { logId: "fanout", kinds }) };
    });
    await Promise.all(subscribers.map(({ received }) => received.until((r) => r.caughtUp !== undefined)));
    const kinds: string[] = [];
    for (let batch = 0; batch < 20; batch++) {
      const entries = Array.from({ length: 100 }, (_, i) => {
        const kind = TOPICS[(batch * 100 + i) % TOPICS.length]!;
        kinds.push(kind);
        return jsonEntry(kind, { n: batch * 100 + i });
      });
      await harness.log.appendBatch({ logId: "fanout", entries });
    }
    for (const { kinds: patterns, received } of subscribers) {
      const expected = kinds.flatMap((kind, i) => (patterns.some((pattern) => subjectMatches(pattern, kind)) ? [BigInt(i + 1)] : []));
      // Over 60 s on the 2-core CI machine with another test file running beside it.
      await received.until((r) => r.events.length >= expected.length, 150_000);
      await sleep(0);
      assert.deepEqual(seqs(received.events), expected, `subscriber of ${patterns.join(", ")}`);
      assert.deepEqual(received.batchSizes, [], "no `events` frame for a subscriber that did not ask for them");
    }
    const first = subscribers.find(({ kinds: patterns }) => patterns[0] === "evt.t1.>")!.received.events[0]!;
    assert.equal(first.entry?.kind, "evt.t1.updated");
    assert.equal(first.name, "updated", "the event name is the kind minus the pattern's literal prefix");
    assert.deepEqual(first.entry?.body, { case: "payload", value: { n: 1 } });
    assert.equal(first.snapshot, false);
    const stored = await harness.log.getEntry({ logId: "fanout", selector: { case: "seq", value: 2n } });
    assert.deepEqual(first.entry, stored.entry, "the event carries the entry as the log service stores it");
    for (const { received } of subscribers) received.cancel();
  });

  test("one upstream log subscription is shared by all subscribers of a log, and ends with the last", async () => {
    const upstreams = async () => Number(/^annals_log_subscribers(?:\{[^}]*\})? (\d+)/m.exec(await harness.metrics())?.[1] ?? "0");
    // The previous test's feed winds down asynchronously; start from none.
    await until("the previous feed to stop", async () => (await upstreams()) === 0);
    const before = await upstreams();
    assert.equal(before, 0);
    const streams = Array.from({ length: 5 }, () => subscribe(harness.stream, { logId: "shared", kinds: [">"] }));
    await Promise.all(streams.map((s) => s.until((r) => r.caughtUp !== undefined)));
    assert.equal(await upstreams(), before + 1);
    for (const s of streams) s.cancel();
    await until("the upstream subscription to stop with the last subscriber", async () => (await upstreams()) === before);
  });

  test("a snapshot holds the latest matching entries in seq order, then CaughtUp, then live entries", async () => {
    for (let i = 1; i <= 30; i++) await harness.log.append({ logId: "snap", entry: jsonEntry(i % 3 === 0 ? "user.deleted" : "user.seen", { i }) });
    const delivered = async () => Number(/^annals_stream_events_delivered_total(?:\{[^}]*\})? (\d+)/m.exec(await harness.metrics())?.[1] ?? "0");
    const deliveredBefore = await delivered();
    const stream = subscribe(harness.stream, { logId: "snap", kinds: ["user.deleted"], snapshotLimit: 4 });
    await stream.until((r) => r.caughtUp !== undefined);
    assert.deepEqual(stream.events.map((e) => [e.entry?.seq, e.snapshot]), [[21n, true], [24n, true], [27n, true], [30n, true]]);
    assert.equal(stream.caughtUp, 30n);
    await harness.log.append({ logId: "snap", entry: jsonEntry("user.seen", {}) });
    await harness.log.append({ logId: "snap", entry: jsonEntry("user.deleted", { live: true }) });
    await stream.until((r) => r.events.length === 5);
    assert.deepEqual([stream.events[4]!.entry?.seq, stream.events[4]!.snapshot, stream.events[4]!.name], [32n, false, "deleted"]);
    assert.equal((await delivered()) - deliveredBefore, 5, "annals.stream.events.delivered counts the snapshot's and the live events");
    stream.cancel();
  });

  test("resuming after a seq delivers every matching entry after it, once, with no snapshot", async () => {
    const first = subscribe(harness.stream, { logId: "resume", kinds: ["job.>"] });
    await first.until((r) => r.caughtUp !== undefined);
    for (let i = 0; i < 10; i++) await harness.log.append({ logId: "resume", entry: jsonEntry(i % 2 ? "job.done" : "noise", { i }) });
    await first.until((r) => r.events.length === 5);
    first.cancel();
    const lastSeen = first.events[2]!.entry!.seq;
    for (let i = 10; i < 20; i++) await harness.log.append({ logId: "resume", entry: jsonEntry(i % 2 ? "job.done" : "noise", { i }) });
    const resumed = subscribe(harness.stream, { logId: "resume", kinds: ["job.>"], afterSeq: lastSeen });
    await resumed.until((r) => r.events.length === 7);
    assert.equal(resumed.caughtUp, lastSeen, "CaughtUp comes at once and names the resume point");
    assert.deepEqual(seqs(resumed.events), [8n, 10n, 12n, 14n, 16n, 18n, 20n]);
    assert.ok(resumed.events.every((e) => !e.snapshot));
    await harness.log.append({ logId: "resume", entry: jsonEntry("job.done", {}) });
    await resumed.until((r) => r.events.length === 8);
    assert.equal(resumed.events[7]!.entry?.seq, 21n);
    resumed.cancel();
    const fromStart = subscribe(harness.stream, { logId: "resume", kinds: ["job.>"], afterSeq: 0n });
    await fromStart.until((r) => r.events.length === 11);
    assert.deepEqual(seqs(fromStart.events), [2n, 4n, 6n, 8n, 10n, 12n, 14n, 16n, 18n, 20n, 21n], "after_seq 0: every matching entry from the first");
    fromStart.cancel();
  });

  test("a log that does not exist yet can be subscribed to; its first entries arrive live", async () => {
    const stream = subscribe(harness.stream, { logId: "not-yet", kinds: [">"] });
    await stream.until((r) => r.caughtUp !== undefined);
    assert.equal(stream.caughtUp, 0n);
    await harness.stream.publish({ logId: "not-yet", entry: jsonEntry("first.entry", { hello: "world" }) });
    await stream.until((r) => r.events.length === 1);
    assert.deepEqual([stream.events[0]!.entry?.seq, stream.events[0]!.entry?.kind], [1n, "first.entry"]);
    stream.cancel();
  });

  test("a subscriber that asked for max_events_per_frame gets multi-event frames when behind, every entry once in order; one that did not gets none", async () => {
    const kindOf = (i: number) => ["b.x", "b.y", "c.z"][i % 3]!;
    await harness.log.appendBatch({ logId: "batched", entries: Array.from({ length: 1000 }, (_, i) => jsonEntry(kindOf(i), { i })) });
    await harness.log.appendBatch({ logId: "batched", entries: Array.from({ length: 500 }, (_, i) => jsonEntry(kindOf(1000 + i), { i: 1000 + i })) });
    const behind = subscribe(harness.stream, { logId: "batched", kinds: ["b.>"], afterSeq: 0n, maxEventsPerFrame: 100 });
    const plain = subscribe(harness.stream, { logId: "batched", kinds: ["b.>"], afterSeq: 0n });
    const snapshotted = subscribe(harness.stream, { logId: "batched", kinds: ["b.x"], snapshotLimit: 1000, maxEventsPerFrame: 7 });
    await snapshotted.until((r) => r.caughtUp !== undefined);
    for (let batch = 0; batch < 5; batch++) {
      await harness.log.appendBatch({ logId: "batched", entries: Array.from({ length: 100 }, (_, i) => jsonEntry(kindOf(1500 + batch * 100 + i), {})) });
    }
    const matching = (pattern: string) => range(1, 2000).filter((seq) => subjectMatches(pattern, kindOf(Number(seq) - 1)));
    for (const [received, expected] of [[behind, matching("b.>")], [plain, matching("b.>")], [snapshotted, matching("b.x")]] as const) {
      await received.until((r) => r.events.length >= expected.length, 60_000);
      await sleep(50);
      assert.deepEqual(seqs(received.events), expected);
    }
    assert.ok(behind.batchSizes.some((size) => size > 1), `multi-event frames: ${behind.batchSizes.join(",")}`);
    assert.ok(behind.batchSizes.every((size) => size >= 1 && size <= 100), `at most 100 a frame: ${behind.batchSizes.join(",")}`);
    assert.ok(snapshotted.batchSizes.every((size) => size <= 7) && snapshotted.batchSizes.length > 0);
    assert.deepEqual(
      snapshotted.events.map((event) => event.snapshot),
      matching("b.x").map((seq) => seq <= 1500n),
      "the snapshot's events are flagged, the live ones not",
    );
    assert.deepEqual(plain.batchSizes, [], "no `events` frame for a subscriber that did not ask");
    for (const received of [behind, plain, snapshotted]) received.cancel();
  });

  test("the event name does not depend on the order of the patterns: the most specific matching one names it", async () => {
    const streams = [["a.>", "a.b.>"], ["a.b.>", "a.>"]].map((kinds) => subscribe(harness.stream, { logId: "names", kinds }));
    await Promise.all(streams.map((s) => s.until((r) => r.caughtUp !== undefined)));
    await harness.log.appendBatch({ logId: "names", entries: [jsonEntry("a.b.c", {}), jsonEntry("a.x.y", {}), jsonEntry("a.b", {})] });
    for (const stream of streams) {
      await stream.until((r) => r.events.length === 3);
      assert.deepEqual(stream.events.map((event) => event.name), ["c", "x.y", "b"]);
      stream.cancel();
    }
  });

  test("Publish appends through the log service; a repeated request_id is a duplicate, not a second entry", async () => {
    const entry = jsonEntry("order.placed", { id: 1 }, { sourceId: "shop", requestId: "r-1", metadata: { region: "eu" } });
    const first = await harness.stream.publish({ logId: "published", entry });
    assert.deepEqual([first.result?.seq, first.result?.duplicate], [1n, false]);
    assert.match(first.result!.checksum, /^[0-9a-f]{64}$/);
    const again = await harness.stream.publish({ logId: "published", entry });
    assert.deepEqual([again.result?.seq, again.result?.duplicate, again.result?.uuid], [1n, true, first.result?.uuid]);
    const stored = await harness.log.getEntry({ logId: "published", selector: { case: "seq", value: 1n } });
    assert.deepEqual([stored.entry?.kind, stored.entry?.sourceId, stored.entry?.metadata["region"], stored.entry?.requestId], ["order.placed", "shop", "eu", "r-1"]);
    await rejects(harness.stream.publish({ logId: "published", entry: jsonEntry("order..placed", {}) }), Code.InvalidArgument, /^entry\.kind: /);
    await rejects(harness.stream.publish({ logId: "bad log", entry: jsonEntry("a", {}) }), Code.InvalidArgument, /^log_id: /);
  });

  test("Publish of a binary payload stores the bytes with digest SHA-256 of them; a bad one is the log service's INVALID_ARGUMENT, details and all", async () => {
    const bytes = new Uint8Array([0, 1, 2, 0xfe, 0xff, 10, 13, 0]);
    const contentType = "application/x-protobuf; messageType=acme.Blob";
    const published = await harness.stream.publish({ logId: "binary", entry: { kind: "blob.put", body: { case: "binaryPayload", value: bytes }, contentType } });
    const stored = (await harness.log.getEntry({ logId: "binary", selector: { case: "seq", value: published.result!.seq } })).entry!;
    assert.deepEqual(stored.body, { case: "binaryPayload", value: bytes });
    assert.equal(stored.contentType, contentType);
    assert.equal(stored.payloadDigest, createHash("sha256").update(bytes).digest("hex"));
    const stream = subscribe(harness.stream, { logId: "binary", kinds: ["blob.>"] });
    await stream.until((r) => r.caughtUp !== undefined && r.events.length === 1);
    assert.deepEqual(stream.events[0]!.entry, stored);
    stream.cancel();

    const refused = await rejects(
      harness.stream.publish({ logId: "binary", entry: { kind: "blob.put", body: { case: "binaryPayload", value: bytes } } }),
      Code.InvalidArgument,
      /content_type/,
    );
    const [violation] = refused.findDetails(rpcDetails.BadRequestSchema)[0]?.fieldViolations ?? [];
    assert.equal(errorReason(refused), "INVALID_ARGUMENT");
    assert.match(violation?.field ?? "", /content_type/, "the log service's BadRequest detail passes through");
  });

  test("Publish passes an AppendCondition on to the log service: its refusal comes back with reason and metadata (Connect and grpc-js clients)", async () => {
    const logId = "conditional";
    const placed = await harness.stream.publish({ logId, entry: jsonEntry("order.placed", { id: 1 }), condition: { expectedLastSeq: 0n } });
    assert.equal(placed.result!.seq, 1n);
    const refused = await rejects(
      harness.stream.publish({ logId, entry: jsonEntry("order.placed", { id: 2 }), condition: { expectedLastSeq: 0n } }),
      Code.FailedPrecondition,
      /^append condition failed on log "conditional"/,
    );
    assert.equal(errorReason(refused), "APPEND_CONDITION_FAILED");
    assert.deepEqual(refused.findDetails(rpcDetails.ErrorInfoSchema)[0]!.metadata, { log: logId, head: "1" });
    await rejects(harness.stream.publish({ logId, entry: jsonEntry("order.placed", {}), condition: { kinds: ["order.>.x"] } }), Code.InvalidArgument, /^condition\.kinds\[0\]: /);

    // An independent client, from the .proto files: the query form.
    const definition = protoLoader.loadSync("annals/stream/v1/stream_service.proto", { includeDirs: [PROTO_ROOT], longs: String });
    const Stream = (grpc.loadPackageDefinition(definition) as any).annals.stream.v1.StreamService;
    const client = new Stream(`127.0.0.1:${harness.server.grpcPort}`, grpc.credentials.createInsecure());
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${await harness.tokenWith(["log.write"])}`);
    const publish = (kind: string, condition: Record<string, unknown>) =>
      new Promise<{ error: grpc.ServiceError | null; response?: { result: { seq: string } } }>((resolve) =>
        client.Publish(
          { logId, entry: { kind, payload: { fields: {} } }, condition },
          metadata,
          (error: grpc.ServiceError | null, response?: { result: { seq: string } }) => resolve({ error, response }),
        ),
      );
    const shipped = await publish("order.shipped", { afterSeq: "1", kinds: ["order.shipped", "order.cancelled"] });
    assert.equal(shipped.error, null);
    assert.equal(shipped.response!.result.seq, "2");
    const late = await publish("order.cancelled", { afterSeq: "1", kinds: ["order.shipped", "order.cancelled"] });
    assert.equal(late.error?.code, grpc.status.FAILED_PRECONDITION);
    assert.match(late.error?.details ?? "", /entry 2 \(after seq 1\) matches the condition's query/);
    const other = await publish("order.noted", { afterSeq: "2", kinds: ["order.shipped", "order.cancelled"] });
    assert.equal(other.response?.result.seq, "3", "an entry of another kind after after_seq does not fail it");
    client.close();
    assert.equal((await harness.log.getLog({ logId })).head!.lastSeq, 3n);
  });

  test("bad subscriptions are refused with INVALID_ARGUMENT naming the field", async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ logId: "x", kinds: [] }, /^kinds: /],
      [{ logId: "x", kinds: ["a..b"] }, /^kinds\[0\]: has an empty token/],
      [{ logId: "x", kinds: ["ok", "a.>.b"] }, /^kinds\[1\]: may use > only as the last token/],
      [{ logId: "x", kinds: ["a.b*"] }, /^kinds\[0\]: token "b\*"/],
      [{ logId: "x", kinds: Array.from({ length: 33 }, (_, i) => `t${i}`) }, /^kinds: has 33 patterns/],
      [{ logId: "x", kinds: [">"], snapshotLimit: 1001 }, /^snapshot_limit: /],
      [{ logId: "x", kinds: [">"], snapshotLimit: -1 }, /^snapshot_limit: /],
      [{ logId: "x", kinds: [">"], maxEventsPerFrame: 1001 }, /^max_events_per_frame: must be between 0 and 1000/],
      [{ logId: "x", kinds: [">"], maxEventsPerFrame: -1 }, /^max_events_per_frame: /],
      [{ logId: "x", kinds: [">"], afterSeq: -1n }, /^after_seq: /],
      [{ logId: "/x", kinds: [">"] }, /^log_id: /],
    ];
    for (const [request, message] of cases) {
      const stream = subscribe(harness.stream, request);
      await stream.until((r) => r.ended !== undefined).catch(() => {});
      assert.equal(stream.ended?.code, Code.InvalidArgument, `${JSON.stringify(request, (_, v) => (typeof v === "bigint" ? String(v) : v))}`);
      assert.match(stream.ended.rawMessage, message);
    }
  });

  test(`the deepest payload the log takes (${MAX_PAYLOAD_DEPTH} levels) arrives in a snapshot and live`, async () => {
    let payload: Record<string, unknown> = { leaf: 1 };
    for (let level = 1; level < MAX_PAYLOAD_DEPTH; level++) payload = { level: payload };
    await harness.log.append({ logId: "deep", entry: jsonEntry("deep.one", payload as never) });
    const received = subscribe(harness.stream, { logId: "deep", kinds: ["deep.>"] });
    await received.until((r) => r.caughtUp !== undefined);
    await harness.log.append({ logId: "deep", entry: jsonEntry("deep.two", payload as never) });
    await received.until((r) => r.events.length === 2);
    assert.deepEqual(received.events.map((event) => [event.snapshot, event.entry?.body.value]), [
      [true, payload],
      [false, payload],
    ]);
    received.cancel();
  });

  test("resuming after a seq past the head is OUT_OF_RANGE naming the head, not a stream that skips entries", async () => {
    await harness.log.appendBatch({ logId: "short", entries: Array.from({ length: 40 }, (_, i) => jsonEntry("s.x", { i })) });
    const ahead = subscribe(harness.stream, { logId: "short", kinds: [">"], afterSeq: 1_000_000n });
    await assert.rejects(ahead.until(() => false));
    assert.equal(ahead.ended?.code, Code.OutOfRange);
    assert.match(ahead.ended.message, /after_seq 1000000 is past the head of log "short" \(last seq 40\)/);
    const atHead = subscribe(harness.stream, { logId: "short", kinds: [">"], afterSeq: 40n });
    await atHead.until((r) => r.caughtUp !== undefined);
    atHead.cancel();
  });

  test("an idle stream gets heartbeats naming the last seq considered, the head and the head's time", async () => {
    const quiet = await startStreamHarness("stream_keepalive", { keepaliveMs: 100 });
    try {
      await quiet.log.append({ logId: "quiet", entry: jsonEntry("a", {}) });
      await quiet.log.append({ logId: "quiet", entry: jsonEntry("b", {}) });
      const stream = subscribe(quiet.stream, { logId: "quiet", kinds: ["a"] });
      await stream.until((r) => r.heartbeats.length >= 3, 5000);
      assert.deepEqual([stream.heartbeats.at(-1)!.lastSeq, stream.heartbeats.at(-1)!.headSeq], [2n, 2n]);
      // An entry the subscriber does not get still moves its position, and dates the head.
      const { result } = await quiet.log.append({ logId: "quiet", entry: jsonEntry("b", {}) });
      await stream.until((r) => r.heartbeats.at(-1)!.lastSeq === 3n, 5000);
      const beat = stream.heartbeats.at(-1)!;
      assert.equal(beat.headSeq, 3n);
      assert.equal(beat.headTime!.seconds * 1_000_000n + BigInt(beat.headTime!.nanos / 1000), result!.wallTimeUs);
      assert.equal(stream.events.length, 1);
      stream.cancel();
    } finally {
      await quiet.close();
    }
  });
});

describe("stream service: slow consumers", () => {
  let harness: StreamHarness;
  before(async () => {
    harness = await startStreamHarness("stream_slow", { bufferFrames: 250 });
  });
  after(async () => {
    await harness?.close();
  });

  test("a subscriber that stops reading is ended with ABORTED naming the after_seq to resume at; the others get every entry", async () => {
    const definition = protoLoader.loadSync("annals/stream/v1/stream_service.proto", { includeDirs: [PROTO_ROOT], longs: String });
    const Stream = (grpc.loadPackageDefinition(definition) as any).annals.stream.v1.StreamService;
    const client = new Stream(`127.0.0.1:${harness.server.grpcPort}`, grpc.credentials.createInsecure());
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${await harness.tokenWith(["stream.view"])}`);
    const slow = client.Subscribe({ logId: "busy", kinds: [">"] }, metadata);
    const slowSeqs: bigint[] = [];
    const status = new Promise<grpc.StatusObject>((resolve) => slow.on("status", resolve));
    slow.on("error", () => {});
    await new Promise((resolve) => slow.once("data", resolve));
    slow.pause();
    slow.on("data", (response: { event?: { entry: { seq: string } } }) => {
      if (response.event) slowSeqs.push(BigInt(response.event.entry.seq));
    });
    const healthy = subscribe(harness.stream, { logId: "busy", kinds: [">"] });
    await healthy.until((r) => r.caughtUp !== undefined);
    const big = "x".repeat(4000);
    // The healthy subscriber keeps up with the producer: a 100-entry commit reaches the feed at once, and
    // the next waits until it has read it (its client shares this process, so appends flat out would
    // starve it; the old one-entry-per-frame upstream hid that by pacing the feed).
    for (let batch = 0; batch < 20; batch++) {
      await harness.log.appendBatch({ logId: "busy", entries: Array.from({ length: 100 }, (_, i) => jsonEntry("load.item", { i: batch * 100 + i, big })) });
      await healthy.until((r) => r.events.length === (batch + 1) * 100, 60_000);
    }
    assert.deepEqual(seqs(healthy.events), range(1, 2000));
    slow.resume();
    const ended = await status;
    assert.equal(ended.code, grpc.status.ABORTED, `${ended.code}: ${ended.details}`);
    assert.match(ended.details, /fell more than 250 events behind .* resume at once with after_seq \d+/);
    client.close();
    // The details as a Connect client reads them from the same trailer.
    const trailer = new Headers({ "grpc-status": String(ended.code), "grpc-message": encodeURIComponent(ended.details) });
    trailer.set("grpc-status-details-bin", (ended.metadata.get("grpc-status-details-bin")[0] as Buffer).toString("base64"));
    const error = findTrailerError(trailer)!;
    assert.equal(errorReason(error), "SLOW_CONSUMER");
    const afterSeq = BigInt(error.findDetails(rpcDetails.ErrorInfoSchema)[0]!.metadata["after_seq"]!);
    assert.equal(retryDelayMs(error), undefined, "resume at once: no RetryInfo");
    await until("the slow subscriber to read up to after_seq", async () => slowSeqs.at(-1) === afterSeq, 5000);
    assert.deepEqual(slowSeqs, range(1, Number(afterSeq)), "the slow subscriber got every entry up to after_seq");
    const resumed = subscribe(harness.stream, { logId: "busy", kinds: [">"], afterSeq });
    await resumed.until((r) => r.events.length === 2000 - Number(afterSeq), 60_000);
    assert.deepEqual(seqs(resumed.events), range(Number(afterSeq) + 1, 2000), "resuming there misses nothing and repeats nothing");
    assert.match(await harness.metrics(), /annals_stream_slow_consumer_disconnects_total(\{[^}]*\})? 1\b/);
    for (const received of [healthy, resumed]) received.cancel();
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
    assert.equal((await ended(subscribe(anonymous, { logId: "x", kinds: [">"] })))?.code, Code.Unauthenticated);
    const writer = await harness.clientWith(["log.write"]);
    assert.equal((await ended(subscribe(writer, { logId: "x", kinds: [">"] })))?.code, Code.PermissionDenied);
    const narrow = await harness.clientWith(["stream.view", "log.write"], { logs: ["mine"] });
    assert.equal((await ended(subscribe(narrow, { logId: "theirs", kinds: [">"] })))?.code, Code.PermissionDenied);
    await rejects(narrow.publish({ logId: "theirs", entry: jsonEntry("a", {}) }), Code.PermissionDenied);
    const viewer = await harness.clientWith(["stream.view"]);
    await rejects(viewer.publish({ logId: "mine", entry: jsonEntry("a", {}) }), Code.PermissionDenied, /log\.write/);
  });

  test("a user's streams beyond the cap are refused with RESOURCE_EXHAUSTED and a retry delay; the global cap too", async () => {
    const alice = await harness.clientWith(["stream.view"], { subject: "alice" });
    const bob = await harness.clientWith(["stream.view"], { subject: "bob" });
    const open = [subscribe(alice, { logId: "c", kinds: [">"] }), subscribe(alice, { logId: "c", kinds: [">"] })];
    await Promise.all(open.map((s) => s.until((r) => r.caughtUp !== undefined)));
    const third = await ended(subscribe(alice, { logId: "c", kinds: [">"] }));
    assert.equal(third?.code, Code.ResourceExhausted);
    assert.equal(errorReason(third), "STREAM_LIMIT_PER_USER");
    assert.ok((retryDelayMs(third) ?? 0) > 0, "with RetryInfo");
    open.push(subscribe(bob, { logId: "c", kinds: [">"] }), subscribe(bob, { logId: "c", kinds: [">"] }));
    await Promise.all(open.map((s) => s.until((r) => r.caughtUp !== undefined)));
    const carol = await harness.clientWith(["stream.view"], { subject: "carol" });
    const fifth = await ended(subscribe(carol, { logId: "c", kinds: [">"] }));
    assert.equal(errorReason(fifth!), "STREAM_LIMIT_GLOBAL");
    open[0]!.cancel();
    await sleep(100);
    const again = subscribe(alice, { logId: "c", kinds: [">"] });
    await again.until((r) => r.caughtUp !== undefined);
    for (const s of [...open, again]) s.cancel();
  });
});
