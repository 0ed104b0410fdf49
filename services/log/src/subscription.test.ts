import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createAnnalsClients, type LogClient } from "@annals/client";
import { Code } from "@connectrpc/connect";
import { fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { logV1 } from "@annals/proto";
import { errorReason, ResponseGroup } from "@annals/runtime";
import { KindFilter } from "@annals/topics";
import { eventWaiter, until } from "@annals/runtime/testing";
import { AppendNotifier } from "./append-notifier.js";
import { entry, firstFrame, rejects, startLogHarness, type LogHarness } from "./log-harness.js";
import { subscription } from "./subscription.js";

let harness: LogHarness;

before(async () => {
  harness = await startLogHarness("log_subscribe");
});

after(async () => {
  await harness?.close();
});

type Event = logV1.SubscribeResponse["frame"];
type SubscribeInit = MessageInitShape<typeof logV1.SubscribeRequestSchema>;

/**
 * An open Subscribe stream read in the background, so a test can append
 * while it runs and wait for what it expects.
 */
function subscribe(client: LogClient, request: SubscribeInit) {
  const controller = new AbortController();
  const events: Event[] = [];
  const waiter = eventWaiter(() => `received ${events.length} events`);
  const done = (async () => {
    for await (const message of client.subscribe(request, { signal: controller.signal })) {
      events.push(message.frame);
      waiter.changed();
    }
  })();
  // Observed through `done` by the tests that expect an error.
  done.then(
    () => waiter.ended("cleanly"),
    (error: unknown) => waiter.ended(String(error)),
  );
  return {
    events,
    done,
    entries: () => events.flatMap((event) => (event.case === "entry" ? [event.value] : event.case === "entries" ? event.value.entries : [])),
    /** Resolves once `check` holds over the events received so far (fails after 20 s, or when the stream ends first). */
    until: (check: () => boolean): Promise<void> => waiter.until("the condition", check, 20_000),
    cancel: () => controller.abort(),
  };
}

function seqsOf(entries: logV1.Entry[]): number[] {
  return entries.map((e) => Number(e.seq));
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

async function appendMany(logId: string, count: number, kind = "sub.e"): Promise<void> {
  for (let done = 0; done < count; done += 1000) {
    const entries = Array.from({ length: Math.min(1000, count - done) }, (_, i) => entry(kind, { n: done + i }));
    await harness.admin.appendBatch({ logId, entries });
  }
}

describe("Subscribe", () => {
  test("catches up across pages, marks caught-up once, then follows concurrent appends without gap or duplicate", async () => {
    await appendMany("follow", 2500);
    const stream = subscribe(harness.admin, { logId: "follow", afterSeq: 0n });
    await stream.until(() => stream.events.some((event) => event.case === "caughtUp"));
    const caughtUp = stream.events.filter((event) => event.case === "caughtUp");
    assert.equal(caughtUp.length, 1);
    assert.equal(caughtUp[0]!.value.seq, 2500n);
    assert.deepEqual(seqsOf(stream.entries()), range(1, 2500));

    // 30 writers × 10 appends, racing the stream's reads.
    await Promise.all(
      Array.from({ length: 30 }, async (_, writer) => {
        for (let i = 0; i < 10; i++) await harness.admin.append({ logId: "follow", entry: entry("sub.live", { writer, i }) });
      }),
    );
    await stream.until(() => stream.entries().length >= 2800);
    stream.cancel();
    assert.deepEqual(seqsOf(stream.entries()), range(1, 2800));
    assert.equal(stream.events.filter((event) => event.case === "caughtUp").length, 1);
    const live = stream.entries().slice(2500);
    assert.ok(live.every((e) => e.kind === "sub.live"));
  });

  test("without after_seq it starts at the tail, and it waits for a log that does not exist yet", async () => {
    await appendMany("tail", 5);
    const tail = subscribe(harness.admin, { logId: "tail" });
    await tail.until(() => tail.events.length > 0);
    assert.deepEqual(tail.events[0], { case: "caughtUp", value: tail.events[0]!.value });
    assert.equal((tail.events[0].value as logV1.CaughtUp).seq, 5n);

    const fresh = subscribe(harness.admin, { logId: "not-yet", afterSeq: 0n });
    await fresh.until(() => fresh.events.some((event) => event.case === "caughtUp"));
    assert.equal((fresh.events[0]!.value as logV1.CaughtUp).seq, 0n);

    await harness.admin.append({ logId: "tail", entry: entry("sub.after", {}) });
    await harness.admin.append({ logId: "not-yet", entry: entry("sub.first", {}) });
    await tail.until(() => tail.entries().length === 1);
    await fresh.until(() => fresh.entries().length === 1);
    tail.cancel();
    fresh.cancel();
    assert.deepEqual(seqsOf(tail.entries()), [6]);
    assert.deepEqual(seqsOf(fresh.entries()), [1]);
  });

  test("a kind filter with NATS wildcards passes only matching entries and still reports its position", async () => {
    const kinds = ["order.created", "order.item.added", "audit.login", "audit.user.deleted", "orders.created", "order", "billing.paid"];
    await harness.admin.appendBatch({ logId: "filtered", entries: kinds.map((kind) => entry(kind, {})) });
    const stream = subscribe(harness.admin, { logId: "filtered", afterSeq: 0n, kinds: ["order.*", "audit.>"] });
    await stream.until(() => stream.events.some((event) => event.case === "caughtUp"));
    assert.deepEqual(
      stream.entries().map((e) => e.kind),
      ["order.created", "audit.login", "audit.user.deleted"],
    );
    // The position covers the skipped entries too: the marker is at the head.
    assert.equal((stream.events.at(-1)!.value as logV1.CaughtUp).seq, 7n);
    await harness.admin.append({ logId: "filtered", entry: entry("billing.refund", {}) });
    await harness.admin.append({ logId: "filtered", entry: entry("order.shipped", {}) });
    await stream.until(() => stream.entries().length === 4);
    stream.cancel();
    assert.deepEqual(seqsOf(stream.entries()), [1, 3, 4, 9]);
  });

  test("an idle stream sends heartbeats carrying its position", async () => {
    await appendMany("idle", 3);
    const stream = subscribe(harness.admin, { logId: "idle", afterSeq: 0n, heartbeatIntervalMs: 1000n });
    await stream.until(() => stream.events.some((event) => event.case === "heartbeat"));
    stream.cancel();
    const heartbeat = stream.events.find((event) => event.case === "heartbeat")!.value;
    assert.deepEqual([heartbeat.lastSeq, heartbeat.headSeq], [3n, 3n]);
    const head = (await harness.admin.read({ logId: "idle", fromSeq: 3n })).entries[0]!;
    assert.equal(heartbeat.headTime!.seconds * 1_000_000n + BigInt(heartbeat.headTime!.nanos / 1000), head.wallTimeUs, "head_time is the head entry's wall time");
    assert.deepEqual(
      stream.events.map((event) => event.case),
      ["entry", "entry", "entry", "caughtUp", "heartbeat"],
    );
  });

  test("entries frames only for a client that asked: every entry once, in order, at most max_entries_per_frame a frame", async () => {
    await appendMany("batched", 2500);
    const batched = subscribe(harness.admin, { logId: "batched", afterSeq: 0n, maxEntriesPerFrame: 300 });
    const single = subscribe(harness.admin, { logId: "batched", afterSeq: 0n });
    await batched.until(() => batched.entries().length === 2500);
    await single.until(() => single.entries().length === 2500);
    batched.cancel();
    single.cancel();
    assert.deepEqual(seqsOf(batched.entries()), range(1, 2500));
    const frames = batched.events.filter((event) => event.case === "entries");
    assert.ok(frames.length >= 9, `${frames.length} entries frames`);
    assert.ok(frames.every((frame) => frame.value.entries.length <= 300 && frame.value.entries.length > 0));
    assert.ok(frames.some((frame) => frame.value.entries.length === 300));
    assert.equal(batched.events.filter((event) => event.case === "entry").length, 0);
    assert.equal(single.events.filter((event) => event.case === "entries").length, 0, "a client that did not ask never gets a batch");
  });

  test("a binary client's entry frames leave in groups of at most 64 (one step of the pipeline per group), every entry once and in order", async () => {
    await appendMany("grouped", 150);
    const notifier = new AppendNotifier(harness.db);
    const shapes = async (binaryWire: boolean) => {
      const controller = new AbortController();
      const steps: (number | string)[] = [];
      const seqs: bigint[] = [];
      const stream = subscription({ db: harness.db, notifier, logId: "grouped", afterSeq: 0n, filter: new KindFilter([]), heartbeatMs: 60_000, maxEntriesPerFrame: 0, binaryWire, signal: controller.signal });
      for await (const step of stream) {
        // A binary client's frames hold their encoding (as unknown fields): decode it as the client does.
        const frames = (step instanceof ResponseGroup ? step.messages : [step]).map((frame) =>
          fromBinary(logV1.SubscribeResponseSchema, toBinary(logV1.SubscribeResponseSchema, frame)),
        );
        steps.push(step instanceof ResponseGroup ? frames.length : step.frame.case!);
        for (const frame of frames) if (frame.frame.case === "entry") seqs.push(frame.frame.value.seq);
        if (frames.some((frame) => frame.frame.case === "caughtUp")) break;
      }
      controller.abort();
      assert.deepEqual(seqs.map(Number), range(1, 150));
      return steps;
    };
    assert.deepEqual(await shapes(true), [64, 64, 22, "caughtUp"]);
    assert.deepEqual(await shapes(false), [...Array.from({ length: 150 }, () => "entry"), "caughtUp"]);
  });

  test("after_seq 0 on a compacted log starts with the anchor the first entry links to", async () => {
    await appendMany("anchored", 12);
    await harness.admin.compact({ logId: "anchored", retain: { case: "beforeSeq", value: 8n } });
    const head = (await harness.admin.getLog({ logId: "anchored" })).head!;
    const stream = subscribe(harness.admin, { logId: "anchored", afterSeq: 0n });
    await stream.until(() => stream.events.some((event) => event.case === "caughtUp"));
    stream.cancel();
    assert.deepEqual(stream.events[0], { case: "anchor", value: stream.events[0]!.value });
    const anchor = stream.events[0].value as logV1.Anchor;
    assert.deepEqual([anchor.seq, anchor.checksum], [7n, head.anchor!.checksum]);
    assert.equal(stream.entries()[0]!.prevChecksum, anchor.checksum);
    assert.deepEqual(seqsOf(stream.entries()), range(8, 12));
  });

  test("a cancelled stream ends on the server: the subscriber gauge returns to zero", async () => {
    const gauge = async () => {
      const text = await (await fetch(`http://127.0.0.1:${harness.server.httpPort}/metrics`)).text();
      const match = /^annals_log_subscribers(?:\{[^}]*\})? (\d+)/m.exec(text);
      return match ? Number(match[1]) : 0;
    };
    // Streams of earlier tests end on the server asynchronously: start from none.
    for (let attempt = 0; attempt < 1000 && (await gauge()) !== 0; attempt++) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(await gauge(), 0);
    const streams = Array.from({ length: 5 }, () => subscribe(harness.admin, { logId: "gauge" }));
    await Promise.all(streams.map((s) => s.until(() => s.events.length > 0)));
    assert.equal(await gauge(), 5);
    for (const stream of streams) stream.cancel();
    let remaining = await gauge();
    // Bounded by 20 s, as until() is: a loaded machine takes its time to deliver the cancellations.
    for (let attempt = 0; attempt < 1000 && remaining !== 0; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      remaining = await gauge();
    }
    assert.equal(remaining, 0);
  });

  test("a stream cancelled in the middle of its catch-up is finished on the server: counted as CANCELLED, no call left in flight", async () => {
    await appendMany("cancel-mid-catch-up", 2000);
    const metrics = async () => (await fetch(`http://127.0.0.1:${harness.server.httpPort}/metrics`)).text();
    const cancelled = (text: string) =>
      Number(/annals_rpc_server_duration_seconds_count\{[^}]*rpc_method="Subscribe"[^}]*listener="grpc"[^}]*rpc_grpc_status_code="Canceled"\} (\d+)/.exec(text)?.[1] ?? 0);
    const before = cancelled(await metrics());
    for (let i = 0; i < 3; i++) {
      // The server is still sending (2,000 entries) when the client cancels after the first.
      const first = await firstFrame((signal) => harness.admin.subscribe({ logId: "cancel-mid-catch-up", afterSeq: 0n }, { signal }));
      assert.equal(first?.frame.case, "entry");
    }
    // Before the fix the pipeline never finished a call whose transport stopped reading it at a
    // yield: the call stayed in flight (and held every shutdown for its whole grace period).
    await until("the cancelled calls to finish", async () => cancelled(await metrics()) - before === 3 && harness.server.inFlight === 0, 20_000);
  });

  test("from a compacted seq it is OUT_OF_RANGE naming the first available seq", async () => {
    await appendMany("compacted", 20);
    await harness.admin.compact({ logId: "compacted", retain: { case: "beforeSeq", value: 11n } });
    const stream = subscribe(harness.admin, { logId: "compacted", afterSeq: 4n });
    const error = await rejects(stream.done, Code.OutOfRange, /first available seq is 11/);
    assert.equal(errorReason(error), "SEQ_COMPACTED");
    const ok = subscribe(harness.admin, { logId: "compacted", afterSeq: 10n });
    await ok.until(() => ok.events.some((event) => event.case === "caughtUp"));
    ok.cancel();
    assert.deepEqual(seqsOf(ok.entries()), range(11, 20));
  });

  test("bad requests and missing rights are refused before anything is sent", async () => {
    const cases: [SubscribeInit, Code, RegExp][] = [
      [{ logId: "", afterSeq: 0n }, Code.InvalidArgument, /^log_id: is required/],
      [{ logId: "x", afterSeq: -1n }, Code.InvalidArgument, /after_seq: must not be negative/],
      [{ logId: "x", afterSeq: 2n }, Code.OutOfRange, /after_seq 2 is past the head of log "x" \(last seq 1\)/],
      [{ logId: "x", maxEntriesPerFrame: 1001 }, Code.InvalidArgument, /max_entries_per_frame/],
      [{ logId: "x", kinds: ["a..b"] }, Code.InvalidArgument, /kinds\[0\]/],
      [{ logId: "x", kinds: ["ok.*", "a.>.b"] }, Code.InvalidArgument, /kinds\[1\]/],
      [{ logId: "x", kinds: ["a.*x"] }, Code.InvalidArgument, /kinds\[0\]/],
      [{ logId: "x", heartbeatIntervalMs: 999n }, Code.InvalidArgument, /heartbeat_interval_ms/],
      [{ logId: "x", heartbeatIntervalMs: 300_001n }, Code.InvalidArgument, /heartbeat_interval_ms/],
    ];
    // A log with entries, so that a stream that was not refused at once would have something to send.
    await harness.admin.append({ logId: "x", entry: entry("a.b", { i: 1 }) });
    const refusedBeforeSending = async (client: LogClient, request: SubscribeInit, code: Code, message?: RegExp) => {
      const stream = subscribe(client, request);
      await rejects(stream.done, code, message);
      assert.deepEqual(stream.events, [], `nothing was sent before ${Code[code]} (${request.logId}, after ${request.afterSeq})`);
    };
    for (const [request, code, message] of cases) await refusedBeforeSending(harness.admin, request, code, message);
    const anonymous = createAnnalsClients({ baseUrl: harness.baseUrl }).log;
    await refusedBeforeSending(anonymous, { logId: "x" }, Code.Unauthenticated);
    const writer = await harness.clientWith(["log.write"]);
    await refusedBeforeSending(writer, { logId: "x" }, Code.PermissionDenied);
    const otherLog = await harness.clientWith(["log.read"], ["mine"]);
    await refusedBeforeSending(otherLog, { logId: "x" }, Code.PermissionDenied, /x/);
  });
});
