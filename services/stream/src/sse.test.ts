// The SSE endpoint with a real EventSource client (the `eventsource` package),
// and its refusals with plain fetch.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { EventSource } from "eventsource";
import { sleep, startStreamHarness, type StreamHarness } from "./stream-harness.js";

let harness: StreamHarness;
let viewer: string;

before(async () => {
  harness = await startStreamHarness("stream_sse", { keepaliveMs: 200, maxStreamsPerUser: 3 });
  viewer = await harness.tokenWith(["stream.view"], { subject: "browser" });
});
after(async () => {
  await harness?.close();
});

const eventsUrl = (log: string, query: string) => `${harness.httpUrl}/v1/logs/${encodeURIComponent(log)}/events?${query}`;

async function publish(topic: string, payload: Record<string, unknown>) {
  await harness.log.append({ logId: "people", entry: { kind: topic, payload: payload as never } });
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
  const received: { id: string; type: string; data: { seq: string; topic: string; payload: unknown; snapshot: boolean } }[] = [];
  const source = new EventSource(eventsUrl("people", `topics=identity.>&token=${viewer}`), { fetch: cuttableFetch as typeof fetch });
  for (const type of ["formed", "left"]) {
    source.addEventListener(type, (event) => received.push({ id: event.lastEventId, type, data: JSON.parse(event.data) }));
  }
  const until = async (count: number) => {
    const deadline = Date.now() + 20_000;
    while (received.length < count && Date.now() < deadline) await sleep(20);
    assert.equal(received.length, count, JSON.stringify(received));
  };
  try {
    await until(2);
    assert.deepEqual(received.map((r) => [r.id, r.type, r.data.snapshot]), [["1", "formed", true], ["2", "left", true]]);
    assert.deepEqual(received[0]!.data.payload, { who: "ada" });
    await publish("identity.formed", { who: "cy" });
    await publish("identity.left", { who: "cy" });
    await until(4);
    cut!();
    await publish("identity.formed", { who: "dee" });
    await publish("other.thing", {});
    await publish("identity.left", { who: "dee" });
    await until(6);
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
  const response = await fetch(eventsUrl("quiet", "topics=>"), { headers: { authorization: `Bearer ${viewer}` }, signal: controller.signal });
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
  assert.match(text, /event: snapshot-done\ndata: \{"seq":"0"\}\n\n/);
  assert.match(text, /: keepalive 0\n\n[\s\S]*: keepalive 0\n\n/);
});

test("refusals are JSON with 401, 403, 400 and 429 (with Retry-After)", async () => {
  const refused = async (url: string, headers: Record<string, string> = {}) => {
    const response = await fetch(url, { headers });
    return { status: response.status, type: response.headers.get("content-type"), retryAfter: response.headers.get("retry-after"), body: (await response.json()) as { code: string; message: string } };
  };
  const anonymous = await refused(eventsUrl("people", "topics=>"));
  assert.deepEqual([anonymous.status, anonymous.type, anonymous.body.code], [401, "application/json", "unauthenticated"]);
  const forged = await refused(eventsUrl("people", `topics=>&token=${viewer}x`));
  assert.equal(forged.status, 401);
  const writer = await harness.tokenWith(["log.write"]);
  const noRole = await refused(eventsUrl("people", `topics=>&token=${writer}`));
  assert.deepEqual([noRole.status, noRole.body.code], [403, "permission_denied"]);
  assert.match(noRole.body.message, /stream\.view/);
  const otherLog = await refused(eventsUrl("people", `topics=>&token=${await harness.tokenWith(["stream.view"], { logs: ["mine"] })}`));
  assert.equal(otherLog.status, 403);
  const badTopic = await refused(eventsUrl("people", `topics=a..b&token=${viewer}`));
  assert.deepEqual([badTopic.status, badTopic.body.code], [400, "invalid_argument"]);
  assert.match(badTopic.body.message, /^topics\[0\]: /);
  const noTopic = await refused(eventsUrl("people", `token=${viewer}`));
  assert.equal(noTopic.status, 400);
  assert.equal((await refused(eventsUrl("people", `topics=>&snapshot=lots&token=${viewer}`))).status, 400);
  assert.equal((await refused(eventsUrl("people", `topics=>&snapshot=1001&token=${viewer}`))).status, 400);
  const badResume = await refused(eventsUrl("people", `topics=>&token=${viewer}`), { "last-event-id": "yesterday" });
  assert.equal(badResume.status, 400);

  const capped = await harness.tokenWith(["stream.view"], { subject: "capped" });
  const open = await Promise.all([1, 2, 3].map(() => fetch(eventsUrl("people", `topics=>&token=${capped}`))));
  assert.deepEqual(open.map((r) => r.status), [200, 200, 200]);
  const fourth = await refused(eventsUrl("people", `topics=>&token=${capped}`));
  assert.deepEqual([fourth.status, fourth.body.code], [429, "resource_exhausted"]);
  assert.ok(Number(fourth.retryAfter) > 0, `Retry-After ${fourth.retryAfter}`);
  for (const response of open) await response.body?.cancel();
});
