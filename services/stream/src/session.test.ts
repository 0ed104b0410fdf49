// One session in memory: a log service of 100 entries behind
// createRouterTransport (Read and GetLog only) and a feed the test drives.
import { metrics } from "@opentelemetry/api";
import assert from "node:assert/strict";
import { setImmediate as tick } from "node:timers/promises";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { logV1 } from "@annals/proto";
import { errorReason } from "@annals/runtime";
import { LogReader } from "./log-reader.js";
import { EntryFrames, Session, type FeedLink, type Frame, type SessionRequest } from "./session.js";
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
