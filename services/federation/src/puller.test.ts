// What the puller asks of its peer and what it makes of the answers, watched
// through a recording proxy between B (the puller) and A (the peer).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createAnnalsClients } from "@annals/client";
import { federationV1 } from "@annals/proto";
import { PUBLIC, defineService, serveComponents, type AccessRule, type RunningServer } from "@annals/runtime";
import { testServerConfig } from "@annals/runtime/testing";
import { TEST_SECRET, chainOf, headOf, jsonEntry, startTestNode, until, type TestNode } from "./federation-harness.js";
import { mirrorLogId } from "./identity.js";

const A = "spiffe://acme.example/annals/eu-1";
const B = "spiffe://acme.example/annals/us-1";
const PER_FRAME = 50;

/** A FederationService whose Pull passes the call on to `upstream` and records the request and the frames' kinds. */
async function startRecordingProxy(upstream: () => string) {
  const requests: federationV1.PullRequest[] = [];
  const frames: string[] = [];
  const access = Object.fromEntries(Object.keys(federationV1.FederationService.method).map((method) => [method, PUBLIC])) as Record<
    keyof typeof federationV1.FederationService.method,
    AccessRule
  >;
  const server: RunningServer = await serveComponents({
    name: "test-pull-proxy",
    server: testServerConfig(TEST_SECRET),
    components: async () => [
      {
        name: "pull-proxy",
        close: async () => {},
        registrations: [
          defineService({
            service: federationV1.FederationService,
            access,
            impl: {
              async *pull(request, context) {
                requests.push(request);
                const token = context.requestHeader.get("authorization")?.replace(/^Bearer /, "") ?? "";
                const peer = createAnnalsClients({ baseUrl: upstream(), token }).federation;
                for await (const response of peer.pull(request, { signal: context.signal })) {
                  frames.push(response.frame.case ?? "");
                  yield response;
                }
              },
            },
          }),
        ],
      },
    ],
  });
  return { server, requests, frames, url: `http://127.0.0.1:${server.grpcPort}` };
}

describe("federation: what the puller asks", () => {
  let a: TestNode;
  let b: TestNode;
  let proxy: Awaited<ReturnType<typeof startRecordingProxy>>;
  const mirror = mirrorLogId(A, "orders");
  const status = async () => (await b.federation.getReplicationStatus({ nodeId: A })).replications[0]!;
  before(async () => {
    a = await startTestNode("federation_puller_a", A);
    proxy = await startRecordingProxy(() => a.baseUrl);
    b = await startTestNode("federation_puller_b", B, { replication: { reconcileMs: 200, backoffFirstMs: 50, backoffMaxMs: 500, entriesPerFrame: PER_FRAME } });
    const keyOf = async (node: TestNode) => (await node.federation.getNodeInfo({})).publicKeyJwk;
    await a.federation.registerPeer({ peer: { nodeId: B, url: "http://127.0.0.1:1", publicKeyJwk: await keyOf(b), servedLogs: ["orders"] } });
    await b.federation.registerPeer({ peer: { nodeId: A, url: proxy.url, publicKeyJwk: await keyOf(a), mirroredLogs: ["orders"] } });
  });
  after(async () => {
    await b?.close();
    await proxy?.server.shutdown("test done");
    await a?.close();
  });

  test("it asks after its mirror's head for batch frames, and stores what they carry", async () => {
    await a.log.appendBatch({ logId: "orders", entries: Array.from({ length: 1000 }, (_, n) => jsonEntry("order.placed", { n })) });
    await until("the mirror to reach seq 1000", async () => (await headOf(b.log, mirror)) === 1000n);
    assert.deepEqual([proxy.requests[0]?.logId, proxy.requests[0]?.afterSeq, proxy.requests[0]?.maxEntriesPerFrame], ["orders", 0n, PER_FRAME]);
    assert.equal(proxy.frames.filter((kind) => kind === "entry").length, 0, "no entry frames once batches were asked for");
    assert.ok(proxy.frames.filter((kind) => kind === "entries").length >= 1000 / PER_FRAME, `frames: ${proxy.frames.length}`);
    assert.ok(proxy.frames.includes("caughtUp"));
    await until("the peer's head to be known", async () => (await status()).peerHeadSeq === 1000n);
    assert.deepEqual(await chainOf(b.log, mirror), await chainOf(a.log, "orders"));

    // Restarted, it resumes after the mirror's head.
    await b.restart();
    await a.log.append({ logId: "orders", entry: jsonEntry("order.paid", { n: 1000 }) });
    await until("the mirror to reach seq 1001", async () => (await headOf(b.log, mirror)) === 1001n);
    assert.equal(proxy.requests.at(-1)?.afterSeq, 1000n);
  });

  test("a peer that has not reported has peer_head_seq 0 and no lag, whatever the mirror holds", async () => {
    await b.federation.updatePeer({ peer: { nodeId: A, url: "http://127.0.0.1:1" }, updateMask: { paths: ["url"] } });
    await until("the new loop to read its mirror's head", async () => (await status()).headSeq === 1001n);
    const unreported = await status();
    assert.deepEqual([unreported.headSeq, unreported.peerHeadSeq, unreported.lagEntries, unreported.lagMs], [1001n, 0n, 0n, 0n]);
    await b.federation.updatePeer({ peer: { nodeId: A, url: proxy.url }, updateMask: { paths: ["url"] } });
  });
});
