// How the puller waits: a rate-limited peer is retried no sooner than the cap
// allows and caught up with once it lets the puller in; an unreachable peer
// is retried after growing delays that stay under the cap.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { federationV1 } from "@annals/proto";
import { headOf, jsonEntry, startTestNode, until, type TestNode } from "./federation-harness.js";
import { mirrorLogId } from "./identity.js";

const A = "spiffe://acme.example/annals/eu-1";
const B = "spiffe://acme.example/annals/us-1";
const CAP_MS = 1600;

let a: TestNode;
let b: TestNode;

const status = async () => (await b.federation.getReplicationStatus({ nodeId: A })).replications[0];
const mirrorHead = () => headOf(b.log, mirrorLogId(A, "orders"));
const append = async (count: number) => {
  for (let i = 0; i < count; i++) await a.log.append({ logId: "orders", entry: jsonEntry("order.placed", { i }) });
};

before(async () => {
  a = await startTestNode("federation_backoff_a", A, { pullsPerMinute: 1 });
  b = await startTestNode("federation_backoff_b", B, { replication: { reconcileMs: 200, backoffFirstMs: 100, backoffMaxMs: CAP_MS } });
  // The log exists before B's first Pull: a Pull of an absent log is refused
  // NOT_FOUND, and that refusal would use up A's one Pull of the minute.
  await a.log.createLog({ logId: "orders" });
  const keyOf = async (node: TestNode) => (await node.federation.getNodeInfo({})).publicKeyJwk;
  await a.federation.registerPeer({ peer: { nodeId: B, url: "http://127.0.0.1:1", publicKeyJwk: await keyOf(b), servedLogs: ["orders"] } });
  await b.federation.registerPeer({ peer: { nodeId: A, url: a.baseUrl, publicKeyJwk: await keyOf(a), mirroredLogs: ["orders"] } });
});
after(async () => {
  await b?.close();
  await a?.close();
});

test("a rate-limited puller waits (capped), and catches up once the peer lets it in", async () => {
  await append(10);
  await until("the first 10 entries", async () => (await mirrorHead()) === 10n);
  // B reconnects: A has had its one Pull of this minute, so it refuses with a RetryInfo of most of a minute.
  await b.restart();
  await until("B to be refused", async () => (await status())?.state === federationV1.ReplicationState.BACKOFF);
  const refused = (await status())!;
  assert.equal(refused.lastErrorCode, Code.ResourceExhausted);
  assert.equal(refused.backoffMs, BigInt(CAP_MS), "the peer asked for most of a minute; the wait is the cap");
  await append(10);
  await a.restart({ pullsPerMinute: 100 });
  await b.federation.updatePeer({ peer: { nodeId: A, url: a.baseUrl }, updateMask: { paths: ["url"] } });
  await until("B to catch up", async () => (await mirrorHead()) === 20n);
  assert.equal((await status())?.state, federationV1.ReplicationState.RUNNING);
});

test("an unreachable peer is retried after growing delays that stay under the cap", async () => {
  await b.federation.updatePeer({ peer: { nodeId: A, url: "http://127.0.0.1:1" }, updateMask: { paths: ["url"] } });
  const waits: number[] = [];
  const deadline = Date.now() + 8000;
  let last = -1;
  while (Date.now() < deadline && waits.length < 6) {
    const current = await status();
    const wait = Number(current?.backoffMs ?? 0n);
    if (current?.state === federationV1.ReplicationState.BACKOFF && wait !== last && wait > 0) waits.push(wait);
    last = wait;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.ok(waits.length >= 4, `waits seen: ${waits}`);
  assert.ok(waits.every((wait) => wait <= CAP_MS), `waits ${waits} stay under ${CAP_MS}`);
  assert.ok(Math.max(...waits.slice(-2)) >= 2 * waits[0]!, `waits ${waits} grow`);
  await b.federation.updatePeer({ peer: { nodeId: A, url: a.baseUrl }, updateMask: { paths: ["url"] } });
  await append(5);
  await until("B to catch up after the outage", async () => (await mirrorHead()) === 25n);
});
