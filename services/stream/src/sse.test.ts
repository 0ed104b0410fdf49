// The SSE endpoint with a real EventSource client (the `eventsource` package),
// and its refusals with plain fetch.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { toJson } from "@bufbuild/protobuf";
import { EventSource } from "eventsource";
import { logV1 } from "@annals/proto";
import { until } from "@annals/runtime/testing";
import { jsonEntry, startStreamHarness, type StreamHarness } from "./stream-harness.js";

let harness: StreamHarness;
let viewer: string;

before(async () => {
  harness = await startStreamHarness("stream_sse", { keepaliveMs: 200, maxStreamsPerUser: 3, bufferFrames: 50 });
  viewer = await harness.tokenWith(["stream.view"], { subject: "browser" });
});
after(async () => {
  await harness?.close();
});

const eventsUrl = (log: string, query: string) => `${harness.httpUrl}/v1/logs/${encodeURIComponent(log)}/events?${query}`;

async function publish(kind: string, payload: Record<string, string>, logId = "people") {
  await harness.log.append({ logId, entry: jsonEntry(kind, payload) });
}

/** Reads an SSE response's text until `done` holds for it (or 10 s pass), then stops reading. */
async function readUntil(response: Response, done: (text: string) => boolean): Promise<string> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const deadline = Date.now() + 10_000;
  while (!done(text) && Date.now() < deadline) {
    const { value, done: ended } = await reader.read();
    if (ended) break;
    text += decoder.decode(value, { stream: true });
  }
  await reader.cancel();
  return text;
}

/** The data events of an SSE text: event type, id and parsed data. */
function dataEvents(text: string): { type: string; id: string; data: { seq: string; name: string; snapshot: boolean; entry: Record<string, unknown> } }[] {
  return [...text.matchAll(/^id: (\d+)\nevent: ([^\n]+)\ndata: ([^\n]+)\n\n/gm)].map(([, id, type, data]) => ({ id: id!, type: type!, data: JSON.parse(data!) }));
}

test("EventSource gets the snapshot and live events with ids and event names; a reconnect with Last-Event-ID resumes exactly", async () => {
  await publish("identity.formed", { who: "ada" });
  await publish("identity.left", { who: "bob" });
  await publish("other.thing", {});

  const requests: Headers[] = [];
  let cut: (() => void) | undefined;
  // Lets the test drop the first connection, as a network would; EventSource then reconnects by itself.
  const cuttableFetch = async (url: string | URL, init?: RequestInit) => {
    requests.push(new Headers(init?.headers));
    const response = await fetch(url, init);
    if (requests.length > 1) return response;
    // The first response's body goes through a pipe the test can break.
    const pipe = new TransformStream<Uint8Array, Uint8Array>();
    const broken = new AbortController();
    void response.body!.pipeTo(pipe.writable, { signal: broken.signal }).catch(() => {});
    cut = () => broken.abort(new Error("connection lost"));
    return new Response(pipe.readable, { status: response.status, headers: response.headers });
  };
  const received: { id: string; type: string; data: { seq: string; name: string; entry: { payload: unknown }; snapshot: boolean } }[] = [];
  const source = new EventSource(eventsUrl("people", `kinds=identity.>&token=${viewer}`), { fetch: cuttableFetch });
  for (const type of ["formed", "left"]) {
    source.addEventListener(type, (event) => received.push({ id: event.lastEventId, type, data: JSON.parse(event.data) }));
  }
  const untilReceived = async (count: number) => {
    await until(`${count} events`, async () => received.length >= count, 20_000);
    assert.equal(received.length, count, JSON.stringify(received));
  };
  try {
    await untilReceived(2);
    assert.deepEqual(received.map((r) => [r.id, r.type, r.data.snapshot]), [["1", "formed", true], ["2", "left", true]]);
    assert.deepEqual(received[0]!.data.entry.payload, { who: "ada" });
    assert.deepEqual([received[0]!.data.seq, received[0]!.data.name], ["1", "formed"]);
    await publish("identity.formed", { who: "cy" });
    await publish("identity.left", { who: "cy" });
    await untilReceived(4);
    cut!();
    await publish("identity.formed", { who: "dee" });
    await publish("other.thing", {});
    await publish("identity.left", { who: "dee" });
    await untilReceived(6);
    assert.deepEqual(received.map((r) => r.id), ["1", "2", "4", "5", "6", "8"]);
    assert.ok(received.slice(2).every((r) => !r.data.snapshot));
    assert.equal(requests.length, 2, "one reconnect");
    assert.equal(requests[1]!.get("last-event-id"), "5");
  } finally {
    source.close();
  }
});

test("the response is an event stream that proxies do not buffer, with comment keepalives", async () => {
  const controller = new AbortController();
  const response = await fetch(eventsUrl("quiet", "kinds=>"), { headers: { authorization: `Bearer ${viewer}` }, signal: controller.signal });
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type")!, /^text\/event-stream/);
  assert.equal(response.headers.get("cache-control"), "no-cache");
  assert.equal(response.headers.get("x-accel-buffering"), "no");
  const reader = response.body!.getReader();
  let text = "";
  const deadline = Date.now() + 5000;
  while (!/: keepalive[^\n]*\n\n[\s\S]*: keepalive/.test(text) && Date.now() < deadline) text += new TextDecoder().decode((await reader.read()).value);
  controller.abort();
  assert.match(text, /^retry: \d+\n\n/);
  assert.match(text, /event: annals:caught-up\ndata: \{"seq":"0"\}\n\n/);
  assert.match(text, /: keepalive 0\n\n[\s\S]*: keepalive 0\n\n/);
});

test("refusals are JSON with 401, 403, 400 and 429 (with Retry-After)", async () => {
  const refused = async (url: string, headers: Record<string, string> = {}) => {
    const response = await fetch(url, { headers });
    return { status: response.status, type: response.headers.get("content-type"), retryAfter: response.headers.get("retry-after"), body: (await response.json()) as { code: string; message: string } };
  };
  const anonymous = await refused(eventsUrl("people", "kinds=>"));
  assert.deepEqual([anonymous.status, anonymous.type, anonymous.body.code], [401, "application/json", "unauthenticated"]);
  const forged = await refused(eventsUrl("people", `kinds=>&token=${viewer}x`));
  assert.equal(forged.status, 401);
  const writer = await harness.tokenWith(["log.write"]);
  const noRole = await refused(eventsUrl("people", `kinds=>&token=${writer}`));
  assert.deepEqual([noRole.status, noRole.body.code], [403, "permission_denied"]);
  assert.match(noRole.body.message, /stream\.view/);
  const otherLog = await refused(eventsUrl("people", `kinds=>&token=${await harness.tokenWith(["stream.view"], { logs: ["mine"] })}`));
  assert.equal(otherLog.status, 403);
  const badKind = await refused(eventsUrl("people", `kinds=a..b&token=${viewer}`));
  assert.deepEqual([badKind.status, badKind.body.code], [400, "invalid_argument"]);
  assert.match(badKind.body.message, /^kinds\[0\]: /);
  const noKind = await refused(eventsUrl("people", `token=${viewer}`));
  assert.equal(noKind.status, 400);
  assert.equal((await refused(eventsUrl("people", `kinds=>&snapshot=lots&token=${viewer}`))).status, 400);
  assert.equal((await refused(eventsUrl("people", `kinds=>&snapshot=1001&token=${viewer}`))).status, 400);
  const badResume = await refused(eventsUrl("people", `kinds=>&token=${viewer}`), { "last-event-id": "yesterday" });
  assert.equal(badResume.status, 400);

  const capped = await harness.tokenWith(["stream.view"], { subject: "capped" });
  const open = await Promise.all([1, 2, 3].map(() => fetch(eventsUrl("people", `kinds=>&token=${capped}`))));
  assert.deepEqual(open.map((r) => r.status), [200, 200, 200]);
  const fourth = await refused(eventsUrl("people", `kinds=>&token=${capped}`));
  assert.deepEqual([fourth.status, fourth.body.code], [429, "resource_exhausted"]);
  assert.ok(Number(fourth.retryAfter) > 0, `Retry-After ${fourth.retryAfter}`);
  for (const response of open) await response.body?.cancel();
});

test("a data event carries the entry in protobuf JSON: int64 as strings, a binary payload as base64", async () => {
  const bytes = new Uint8Array([0, 0xff, 0x10, 0x80, 0x7f]);
  await harness.log.append({ logId: "blobs", entry: { kind: "blob.put", body: { case: "binaryPayload", value: bytes }, contentType: "application/cbor", requestId: "b-1" } });
  await publish("blob.note", { text: "hi" }, "blobs");
  const response = await fetch(eventsUrl("blobs", `kinds=blob.>&token=${viewer}`));
  const events = dataEvents(await readUntil(response, (text) => text.includes("annals:caught-up")));
  assert.deepEqual(events.map(({ id, type, data }) => [id, type, data.seq, data.name, data.snapshot]), [
    ["1", "put", "1", "put", true],
    ["2", "note", "2", "note", true],
  ]);
  const [binary, json] = events.map(({ data }) => data.entry);
  assert.equal(binary!["binaryPayload"], Buffer.from(bytes).toString("base64"));
  assert.deepEqual([binary!["seq"], binary!["contentType"], binary!["requestId"], binary!["payload"]], ["1", "application/cbor", "b-1", undefined]);
  assert.deepEqual(json!["payload"], { text: "hi" });
  for (const [seq, entry] of [[1n, binary], [2n, json]] as const) {
    const stored = await harness.log.getEntry({ logId: "blobs", selector: { case: "seq", value: seq } });
    assert.deepEqual(entry, toJson(logV1.EntrySchema, stored.entry!), "exactly the stored entry's protobuf JSON");
  }
});

test("reserved names: no kind can produce a control event or one of EventSource's own event types", async () => {
  for (const kind of ["identity.error", "identity.snapshot-done", "identity.open", "identity.message", "identity.caught-up"]) await publish(kind, {}, "reserved");
  const response = await fetch(eventsUrl("reserved", `kinds=identity.>&token=${viewer}`));
  const text = await readUntil(response, (sofar) => sofar.includes("annals:caught-up"));
  assert.deepEqual(
    dataEvents(text).map(({ type, data }) => [type, data.name]),
    [
      ["kind:identity.error", "error"],
      ["snapshot-done", "snapshot-done"],
      ["kind:identity.open", "open"],
      ["kind:identity.message", "message"],
      ["caught-up", "caught-up"],
    ],
  );
  assert.equal(text.match(/^event: annals:/gm)?.length, 1, "one control event: annals:caught-up");

  // In an EventSource, a kind that ends in `error` no longer fires onerror.
  const source = new EventSource(eventsUrl("reserved", `kinds=identity.>&token=${viewer}`));
  const seen: string[] = [];
  let errors = 0;
  source.onerror = () => errors++;
  for (const type of ["kind:identity.error", "snapshot-done", "annals:caught-up"]) source.addEventListener(type, () => seen.push(type));
  try {
    await until("annals:caught-up", async () => seen.includes("annals:caught-up"), 10_000);
    assert.deepEqual(seen, ["kind:identity.error", "snapshot-done", "annals:caught-up"]);
    assert.equal(errors, 0);
  } finally {
    source.close();
  }
});

test("a stream that ends says why in an annals:error control event (a browser too slow to read)", async () => {
  const response = await fetch(eventsUrl("firehose", `kinds=>&token=${await harness.tokenWith(["stream.view"], { subject: "firehose" })}`));
  const reader = response.body!.getReader();
  const first = new TextDecoder().decode((await reader.read()).value);
  assert.match(first, /^retry: /);
  // The response is not read while 2,000 large entries arrive: the server's socket fills and the session's 50-frame buffer overflows.
  const big = "x".repeat(4000);
  for (let batch = 0; batch < 20; batch++) {
    await harness.log.appendBatch({ logId: "firehose", entries: Array.from({ length: 100 }, (_, i) => jsonEntry("fire.hose", { i: String(batch * 100 + i), big })) });
  }
  const decoder = new TextDecoder();
  let text = first;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  const ending = /event: annals:error\ndata: (\{[^\n]*\})\n\n$/.exec(text);
  assert.ok(ending, `ends with annals:error: …${text.slice(-300)}`);
  const { code, message } = JSON.parse(ending[1]!) as { code: string; message: string };
  assert.equal(code, "aborted");
  assert.match(message, /resume at once with after_seq (\d+)/);
  const afterSeq = /after_seq (\d+)/.exec(message)![1]!;
  const ids = dataEvents(text).map(({ id }) => Number(id));
  assert.deepEqual(ids, Array.from({ length: Number(afterSeq) }, (_, i) => i + 1), "every event up to after_seq, then the error");
});

test("event=message sends data events with no event name, so onmessage gets every kind; control events keep theirs", async () => {
  for (const kind of ["order.placed", "order.error", "refund.issued"]) await publish(kind, {}, "unnamed");
  const response = await fetch(eventsUrl("unnamed", `kinds=>&event=message&token=${viewer}`));
  const text = await readUntil(response, (sofar) => sofar.includes("annals:caught-up"));
  const unnamed = [...text.matchAll(/^id: (\d+)\ndata: ([^\n]+)\n\n/gm)].map(([, id, data]) => [id, (JSON.parse(data!) as { name: string }).name]);
  assert.deepEqual(unnamed, [["1", "order.placed"], ["2", "order.error"], ["3", "refund.issued"]]);
  assert.equal(text.match(/^event: /gm)?.length, 1, "the only named event is annals:caught-up");
  assert.match(text, /^event: annals:caught-up\n/m);

  const source = new EventSource(eventsUrl("unnamed", `kinds=>&event=message&token=${viewer}`));
  const seqs: string[] = [];
  let caughtUp = false;
  let errors = 0;
  source.onmessage = (event) => seqs.push(event.lastEventId);
  source.onerror = () => errors++;
  source.addEventListener("annals:caught-up", () => (caughtUp = true));
  try {
    await until("the caught-up event", async () => caughtUp, 10_000);
    assert.deepEqual(seqs, ["1", "2", "3"]);
    assert.equal(errors, 0, "order.error does not fire onerror");
  } finally {
    source.close();
  }

  const refused = await fetch(eventsUrl("unnamed", `event=named&token=${viewer}`));
  assert.equal(refused.status, 400);
  assert.match(((await refused.json()) as { message: string }).message, /^event: must be "message"/);
});
