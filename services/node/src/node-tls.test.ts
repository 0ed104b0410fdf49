// Two real node processes under mTLS (ANNALS_TLS_* with ANNALS_TLS_CLIENT_CA_FILE,
// auth on, no ANNALS_INTERNAL_TOKEN): the stream and federation services call
// their node's log service in-process, so Publish, Subscribe, SSE and
// federation all work. (They dialled their own port over plain h2c, and under
// TLS every Publish and Pull failed with CANCELED.)
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { createAnnalsClients, type AnnalsClients } from "@annals/client";
import { createTestDatabase, type TestDatabase } from "@annals/db/testing";
import { signDevToken } from "@annals/runtime";
import { makeTestCertificates, startServiceProcess, until, type ServiceProcess } from "@annals/runtime/testing";

const MAIN = fileURLToPath(new URL("./main.js", import.meta.url));
const SECRET = "node-tls-test-secret-at-least-32-bytes-long";
const A = "spiffe://acme.example/annals/eu-1";
const B = "spiffe://acme.example/annals/us-1";

describe("two nodes under mTLS with auth on", () => {
  let dir: string;
  const databases: TestDatabase[] = [];
  const nodes: ServiceProcess[] = [];
  let a: AnnalsClients;
  let b: AnnalsClients;
  let aNode: ServiceProcess;
  let token: string;

  const startNode = async (name: "a" | "b", nodeId: string): Promise<ServiceProcess> => {
    const database = await createTestDatabase(`node_tls_${name}`);
    databases.push(database);
    const file = (suffix: string) => join(dir, `${name}${suffix}`);
    const node = await startServiceProcess({
      script: MAIN,
      env: {
        ...database.env,
        ANNALS_AUTH_JWT_SECRET: SECRET,
        ANNALS_NODE_ID: nodeId,
        ANNALS_TLS_CERT_FILE: file(".pem"),
        ANNALS_TLS_KEY_FILE: file(".key"),
        ANNALS_TLS_CLIENT_CA_FILE: join(dir, "ca.pem"),
        ANNALS_FEDERATION_TLS_CA_FILE: join(dir, "ca.pem"),
        ANNALS_FEDERATION_TLS_CERT_FILE: file(".pem"),
        ANNALS_FEDERATION_TLS_KEY_FILE: file(".key"),
      },
    });
    nodes.push(node);
    return node;
  };
  const clients = (node: ServiceProcess, name: "a" | "b") =>
    createAnnalsClients({
      baseUrl: `https://127.0.0.1:${node.grpcPort}`,
      token,
      unaryTimeoutMs: 60_000,
      tls: { caFile: join(dir, "ca.pem"), certFile: join(dir, `${name}.pem`), keyFile: join(dir, `${name}.key`) },
    });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "annals-node-tls-"));
    makeTestCertificates(dir, { a: A, b: B });
    token = await signDevToken({ secret: SECRET, subject: "operator", roles: ["admin"] });
    aNode = await startNode("a", A);
    const bNode = await startNode("b", B);
    a = clients(aNode, "a");
    b = clients(bNode, "b");
  });
  after(async () => {
    for (const node of nodes) await node.stop();
    for (const database of databases) await database.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("Publish appends through the stream service, and Subscribe delivers it", async () => {
    const controller = new AbortController();
    const received: bigint[] = [];
    let caughtUp = false;
    const reading = (async () => {
      for await (const { frame } of a.stream.subscribe({ logId: "orders", kinds: [">"] }, { signal: controller.signal })) {
        if (frame.case === "caughtUp") caughtUp = true;
        if (frame.case === "event") received.push(frame.value.entry!.seq);
        if (received.length === 2) return;
      }
    })();
    await until("the subscription to catch up", async () => caughtUp);
    for (const id of [1, 2]) {
      const { result } = await a.stream.publish({ logId: "orders", entry: { kind: "order.placed", body: { case: "payload", value: { id } } } });
      assert.equal(result?.seq, BigInt(id));
    }
    await reading;
    controller.abort();
    assert.deepEqual(received, [1n, 2n]);
    assert.equal((await a.log.getLog({ logId: "orders" })).head?.lastSeq, 2n);
  });

  test("the SSE endpoint on the HTTP port streams the log", async () => {
    const sseToken = await signDevToken({ secret: SECRET, subject: "viewer", roles: ["stream.view"] });
    const controller = new AbortController();
    const response = await fetch(`http://127.0.0.1:${aNode.httpPort}/v1/logs/orders/events?kinds=%3E&snapshot=10&token=${sseToken}`, { signal: controller.signal });
    assert.equal(response.status, 200);
    let text = "";
    const decoder = new TextDecoder();
    for await (const chunk of response.body!) {
      text += decoder.decode(chunk as Uint8Array, { stream: true });
      if (text.includes("event: annals:caught-up")) break;
    }
    controller.abort();
    assert.match(text, /id: 1\nevent: order\.placed\n/);
    assert.match(text, /id: 2\nevent: order\.placed\n/);
  });

  test("B mirrors A's log over federation mTLS", async () => {
    const keyOf = async (clients: AnnalsClients) => (await clients.federation.getNodeInfo({})).publicKeyJwk;
    await a.federation.registerPeer({ peer: { nodeId: B, url: "https://127.0.0.1:1", publicKeyJwk: await keyOf(b), servedLogs: ["orders"] } });
    await b.federation.registerPeer({ peer: { nodeId: A, url: `https://127.0.0.1:${aNode.grpcPort}`, publicKeyJwk: await keyOf(a), mirroredLogs: ["orders"] } });
    const mirror = `mirror/${A.slice("spiffe://".length)}/orders`;
    await until("B's mirror to hold A's two entries", async () => {
      try {
        return (await b.log.getLog({ logId: mirror })).head?.lastSeq === 2n;
      } catch {
        return false;
      }
    });
    const [ours, theirs] = await Promise.all([a.log.read({ logId: "orders" }), b.log.read({ logId: mirror })]);
    assert.deepEqual(
      theirs.entries.map((entry) => entry.checksum),
      ours.entries.map((entry) => entry.checksum),
    );
  });
});
