// One session in memory: a log service of 100 entries behind
// createRouterTransport (Read and GetLog only) and a feed the test drives.
import { metrics } from "@opentelemetry/api";
import assert from "node:assert/strict";
import { setImmediate as tick } from "node:timers/promises";
import { test } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { logV1, streamV1 } from "@annals/proto";
import { encodingOf, errorReason, pushResponses, ResponseGroup, type ResponseSink } from "@annals/runtime";
import { LogReader } from "./log-reader.js";
import { batchFrameEncoding, EntryFrames, FLUSH_SLICE_MS, Session, type FeedLink, type Frame, type SessionRequest } from "./session.js";
import { StreamMetrics } from "./stream-metrics.js";

const HEAD = 100n;
const entries = Array.from({ length: Number(HEAD) }, (_, i) =>
  create(logV1.EntrySchema, { logId: "mem", seq: BigInt(i + 1), kind: i % 2 ? "odd.one" : "even.one", body: { case: "payload", value: { i } } }),
);

const transport = createRouterTransport(({ service }) => {
  service(logV1.LogService, {
    getLog: () => ({ head: { logId: "mem", lastSeq: HEAD } }),
    read(request) {
      const from = request.pageToken ? BigInt(request.pageToken) : request.fromSeq;
      const size = request.pageSize || 100;
      const page =
        request.direction === logV1.ReadDirection.BACKWARD
          ? entries.filter((entry) => entry.seq <= (from || HEAD)).reverse().slice(0, size)
          : entries.filter((entry) => entry.seq >= from).slice(0, size);
      const last = page.at(-1)?.seq;
      // Forward, a page at the head still carries a token, as the contract says.
      const next = request.direction === logV1.ReadDirection.BACKWARD ? (last && last > 1n ? String(last - 1n) : "") : String((last ?? from - 1n) + 1n);
      return { entries: page, nextPageToken: next };
    },
  });
});
const logClient = createClient(logV1.LogService, transport);

function openSession(request: Partial<SessionRequest>, bufferFrames = 10): Session {
  const feed: FeedLink = { position: HEAD, head: { seq: HEAD, wallTimeUs: undefined }, join: async () => HEAD, leave: () => {} };
  return new Session(
    { logId: "mem", patterns: [">"], afterSeq: undefined, snapshotLimit: 50, maxEventsPerFrame: 0, ...request },
    { bufferFrames, keepaliveMs: 60_000, snapshotScanLimit: 10_000 },
    new LogReader(() => logClient, 1),
    feed,
    new StreamMetrics(metrics.getMeter("session-test")),
    () => {},
  );
}

const eventSeqs = (frame: Frame): bigint[] =>
  frame.frame.case === "event" ? [frame.frame.value.entry.seq] : frame.frame.case === "events" ? frame.frame.value.events.map((event) => event.entry.seq) : [];

test("a catch-up leaves in `events` frames of at most max_events_per_frame, every entry once and in order", async () => {
  const session = openSession({ afterSeq: 0n, maxEventsPerFrame: 4, patterns: ["odd.>"] });
  const controller = new AbortController();
  const frames: Frame[] = [];
  for await (const frame of session.frames(controller.signal)) {
    frames.push(frame);
    if (eventSeqs(frame).at(-1) === HEAD) break;
  }
  assert.equal(frames[0]!.frame.case, "caughtUp");
  assert.deepEqual(frames.flatMap(eventSeqs), entries.filter((entry) => entry.seq % 2n === 0n).map((entry) => entry.seq));
  const sizes = frames.slice(1).map((frame) => eventSeqs(frame).length);
  assert.ok(sizes.every((size) => size >= 1 && size <= 4) && sizes.some((size) => size > 1), `sizes ${sizes.join(",")}`);
});

test("without max_events_per_frame every event is an `event` frame", async () => {
  const session = openSession({ afterSeq: 0n });
  const kinds: string[] = [];
  for await (const frame of session.frames(new AbortController().signal)) {
    kinds.push(frame.frame.case);
    if (eventSeqs(frame).at(-1) === HEAD) break;
  }
  assert.deepEqual(new Set(kinds), new Set(["caughtUp", "event"]));
  assert.equal(kinds.length, 101);
});

test("a live subscriber more than the buffer behind ends with ABORTED naming the seq it has (after_seq)", async () => {
  const session = openSession({ afterSeq: HEAD }, 10);
  const stream = session.frames(new AbortController().signal)[Symbol.asyncIterator]();
  assert.equal((await stream.next()).value?.frame.case, "caughtUp");
  await tick();
  const live = (seq: bigint) => new EntryFrames(create(logV1.EntrySchema, { logId: "mem", seq, kind: "live.one" }));
  for (let seq = HEAD + 1n; seq <= HEAD + 3n; seq++) session.offer(live(seq));
  for (let i = 0; i < 3; i++) await stream.next();
  for (let seq = HEAD + 4n; seq <= HEAD + 14n; seq++) session.offer(live(seq));
  const ended = await stream.next().then(
    () => undefined,
    (error: unknown) => ConnectError.from(error),
  );
  assert.equal(ended?.code, Code.Aborted);
  assert.equal(errorReason(ended), "SLOW_CONSUMER");
  assert.match(ended.rawMessage, /resume at once with after_seq 103$/);
});

test("the encoding of an `events` frame spliced from its events' frames is the protobuf encoding of that frame (lengths of 1, 2 and 3 varint bytes)", () => {
  for (const payloadBytes of [0, 200, 20_000]) {
    const events = [1n, 2n, 3n].map((seq) =>
      create(streamV1.EventSchema, { entry: create(logV1.EntrySchema, { logId: "mem", seq, kind: "a.b", body: { case: "payload", value: { text: "x".repeat(payloadBytes) } } }), name: "b" }),
    );
    const parts = events.map((event) => toBinary(streamV1.SubscribeResponseSchema, create(streamV1.SubscribeResponseSchema, { frame: { case: "event", value: event } })));
    const whole = create(streamV1.SubscribeResponseSchema, { frame: { case: "events", value: { events } } });
    assert.deepEqual(new Uint8Array(batchFrameEncoding(parts)), toBinary(streamV1.SubscribeResponseSchema, whole));
  }
});

test("live entries queued for a subscriber that asked for batches leave as one `events` frame, encoded from the frames shared with every other subscriber; one that did not ask gets `event` frames", async () => {
  const batched = openSession({ afterSeq: HEAD, maxEventsPerFrame: 3 }, 100);
  const plain = openSession({ afterSeq: HEAD }, 100);
  const batchedStream = batched.frames(new AbortController().signal);
  const plainStream = plain.frames(new AbortController().signal);
  const streams = [batchedStream, plainStream];
  for (const stream of streams) assert.equal((await stream.next()).value?.frame.case, "caughtUp");
  await tick();
  const shared = [101n, 102n, 103n, 104n].map((seq) => new EntryFrames(create(logV1.EntrySchema, { logId: "mem", seq, kind: "live.one", body: { case: "payload", value: { seq: Number(seq) } } })));
  for (const frames of shared) for (const session of [batched, plain]) session.offer(frames);
  const first = (await batchedStream.next()).value as Frame;
  const second = (await batchedStream.next()).value as Frame;
  assert.deepEqual([first, second].map((frame) => [frame.frame.case, eventSeqs(frame)]), [
    ["events", [101n, 102n, 103n]],
    ["event", [104n]],
  ]);
  // The bytes the gRPC listener sends: the spliced encoding decodes to the frame, and the single event's frame is the shared one.
  const decoded = fromBinary(streamV1.SubscribeResponseSchema, encodingOf(first, streamV1.SubscribeResponseSchema));
  assert.equal(decoded.frame.case, "events");
  assert.deepEqual(decoded.frame.case === "events" ? decoded.frame.value.events.map((event) => [event.entry?.seq, event.name, event.snapshot]) : [], [
    [101n, "live.one", false],
    [102n, "live.one", false],
    [103n, "live.one", false],
  ]);
  const plainFrames: Frame[] = [];
  for (let i = 0; i < 4; i++) plainFrames.push((await plainStream.next()).value as Frame);
  assert.deepEqual(plainFrames.map((frame) => frame.frame.case), ["event", "event", "event", "event"]);
  assert.deepEqual(plainFrames.flatMap(eventSeqs), [101n, 102n, 103n, 104n]);
  assert.equal(second, plainFrames[3], "one frame object for every subscriber of the entry, so it is encoded once");
  for (const stream of streams) await stream.return?.();
});

test("frameGroups hands over every frame queued at once as one group, in order, with the frame kinds the subscriber asked for; a lone frame comes as it is", async () => {
  const batched = openSession({ afterSeq: HEAD, maxEventsPerFrame: 2 }, 100);
  const plain = openSession({ afterSeq: HEAD }, 100);
  const batchedStream = batched.frameGroups(new AbortController().signal);
  const plainStream = plain.frameGroups(new AbortController().signal);
  for (const stream of [batchedStream, plainStream]) assert.equal(((await stream.next()).value as Frame).frame.case, "caughtUp");
  await tick();
  const live = [101n, 102n, 103n, 104n, 105n].map((seq) => new EntryFrames(create(logV1.EntrySchema, { logId: "mem", seq, kind: "live.one" })));
  for (const frames of live) for (const session of [batched, plain]) session.offer(frames);
  const framesOf = (value: Frame | ResponseGroup<Frame> | undefined) => (value instanceof ResponseGroup ? value.messages : []);
  const plainGroup = framesOf((await plainStream.next()).value);
  assert.deepEqual(plainGroup.map((frame) => frame.frame.case), ["event", "event", "event", "event", "event"], "an older client never gets an `events` frame");
  assert.deepEqual(plainGroup.flatMap(eventSeqs), [101n, 102n, 103n, 104n, 105n]);
  const batchedGroup = framesOf((await batchedStream.next()).value);
  assert.deepEqual(batchedGroup.map((frame) => [frame.frame.case, eventSeqs(frame)]), [
    ["events", [101n, 102n]],
    ["events", [103n, 104n]],
    ["event", [105n]],
  ]);
  plain.offer(new EntryFrames(create(logV1.EntrySchema, { logId: "mem", seq: 106n, kind: "live.one" })));
  const lone = (await plainStream.next()).value;
  assert.ok(!(lone instanceof ResponseGroup));
  assert.deepEqual(eventSeqs(lone as Frame), [106n]);
  for (const stream of [batchedStream, plainStream]) await stream.return?.();
});

test("a group holds at most 64 frames, so that frames out of the session's queue (and out of the slow-consumer check) stay few", async () => {
  const session = openSession({ afterSeq: HEAD }, 100);
  const stream = session.frameGroups(new AbortController().signal);
  assert.equal(((await stream.next()).value as Frame).frame.case, "caughtUp");
  await tick();
  for (let seq = HEAD + 1n; seq <= HEAD + 70n; seq++) session.offer(new EntryFrames(create(logV1.EntrySchema, { logId: "mem", seq, kind: "live.one" })));
  const size = async () => {
    const { value } = await stream.next();
    return value instanceof ResponseGroup ? value.messages.length : 1;
  };
  assert.equal(await size(), 64);
  assert.equal(await size(), 6);
  await stream.return?.();
});

/** A sink that records what is written to it, one array per write, and says it is full when told to. */
function recordingSink() {
  const writes: Frame[][] = [];
  let full = false;
  let drain: (() => void) | undefined;
  const sink: ResponseSink = {
    write(messages) {
      writes.push(messages as Frame[]);
      return !full;
    },
    drained: () => new Promise<void>((resolve) => (drain = resolve)),
  };
  return {
    sink,
    writes,
    fill: () => (full = true),
    drain: () => {
      full = false;
      drain?.();
    },
  };
}

test("pushed to a sink, the frames queued in one turn go in one write, a full sink is written to again only once it drained, and the push ends with the stream", async () => {
  const session = openSession({ afterSeq: HEAD, maxEventsPerFrame: 2 }, 100);
  const controller = new AbortController();
  const { sink, writes, fill, drain } = recordingSink();
  const pushed = session.frameGroups(controller.signal)[pushResponses](sink);
  await tick();
  assert.deepEqual(writes.map((write) => write.map((frame) => frame.frame.case)), [["caughtUp"]]);
  const offer = (seq: bigint) => session.offer(new EntryFrames(create(logV1.EntrySchema, { logId: "mem", seq, kind: "live.one" })));
  for (const seq of [101n, 102n, 103n]) offer(seq);
  assert.equal(writes.length, 1, "nothing is written while the feed is still offering");
  await tick();
  assert.deepEqual(writes.slice(1).map((write) => write.map(eventSeqs)), [[[101n, 102n], [103n]]]);
  fill();
  offer(104n);
  await tick();
  assert.equal(writes.length, 3);
  offer(105n);
  offer(106n);
  await tick();
  assert.equal(writes.length, 3, "a full sink is not written to");
  drain();
  await tick();
  assert.deepEqual(writes.slice(3).map((write) => write.map(eventSeqs)), [[[105n, 106n]]]);
  controller.abort();
  await pushed;
});

test("a pushed session ends its push with the error it fails with, and with the sink's own error when a write throws", async () => {
  const failing = openSession({ afterSeq: HEAD }, 100);
  const pushed = failing.frameGroups(new AbortController().signal)[pushResponses](recordingSink().sink);
  await tick();
  failing.fail(new ConnectError("the feed stopped", Code.FailedPrecondition));
  await assert.rejects(pushed, (error: unknown) => ConnectError.from(error).code === Code.FailedPrecondition);

  const tooLarge = openSession({ afterSeq: HEAD }, 100);
  const refusing: ResponseSink = {
    write: () => {
      throw new ConnectError("Sent message larger than max (5000000 vs. 4194304)", Code.ResourceExhausted);
    },
    drained: () => Promise.resolve(),
  };
  await assert.rejects(tooLarge.frameGroups(new AbortController().signal)[pushResponses](refusing), (error: unknown) => ConnectError.from(error).code === Code.ResourceExhausted);
});

test("a flush that runs past its slice lets the event loop turn, then writes the remaining sessions' frames", async () => {
  // Each write takes 1 ms: the 4 × FLUSH_SLICE_MS sessions' writes take four slices.
  const busyFor = (ms: number) => {
    for (const until = performance.now() + ms; performance.now() < until; );
  };
  const count = 4 * FLUSH_SLICE_MS;
  const written: number[] = [];
  const controllers = Array.from({ length: count }, () => new AbortController());
  const sessions = controllers.map((controller, i) => {
    const session = openSession({ afterSeq: HEAD }, 100);
    const sink: ResponseSink = {
      write(messages) {
        if (messages.some((frame) => (frame as Frame).frame.case === "event")) {
          busyFor(1);
          written.push(i);
        }
        return true;
      },
      drained: () => Promise.resolve(),
    };
    return { session, pushed: session.frameGroups(controller.signal)[pushResponses](sink) };
  });
  await tick();
  const frames = new EntryFrames(create(logV1.EntrySchema, { logId: "mem", seq: HEAD + 1n, kind: "live.one" }));
  for (const { session } of sessions) session.offer(frames);
  let writtenWhenTheLoopTurned: number | undefined;
  setImmediate(() => (writtenWhenTheLoopTurned = written.length));
  while (written.length < count) await tick();
  assert.deepEqual(written, [...Array(count).keys()], "every session written once, in the order they were queued");
  assert.ok(writtenWhenTheLoopTurned !== undefined && writtenWhenTheLoopTurned > 0 && writtenWhenTheLoopTurned < count, `the loop turned after ${writtenWhenTheLoopTurned} of ${count} writes`);
  for (const controller of controllers) controller.abort();
  await Promise.all(sessions.map(({ pushed }) => pushed));
});
