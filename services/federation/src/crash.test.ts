// B is a real node process, SIGKILLed while it replicates A's log: once
// restarted, its mirror ends identical to A's, with no gap and no duplicate.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { createAnnalsClients, type FederationClient, type LogClient } from "@annals/client";
import { createTestDatabase, type TestDatabase } from "@annals/db/testing";
import { signDevToken } from "@annals/runtime";
import { startServiceProcess, type ServiceProcess } from "@annals/runtime/testing";
import { TEST_SECRET, chainOf, headOf, startTestNode, type TestNode } from "./federation-harness.js";

const mirrorHead = () => headOf(bClients.log, mirrorLogId(A, "orders"));
import { mirrorLogId } from "./identity.js";

const NODE_MAIN = fileURLToPath(new URL("../../node/dist/main.js", import.meta.url));
const A = "spiffe://acme.example/annals/eu-1";
const B = "spiffe://acme.example/annals/us-1";
const TOTAL = 20_000;

let a: TestNode;
let bDatabase: TestDatabase;
let b: ServiceProcess | undefined;
let bClients: { log: LogClient; federation: FederationClient };

async function startB(): Promise<void> {
  b = await startServiceProcess({
    script: NODE_MAIN,
    env: {
      ...bDatabase.env,
      ANNALS_AUTH_JWT_SECRET: TEST_SECRET,
      ANNALS_INTERNAL_TOKEN: await signDevToken({ secret: TEST_SECRET, subject: "node-b", roles: ["log.read", "log.write", "log.replicate", "log.relay"], expiresIn: "2h" }),
      ANNALS_NODE_ID: B,
    },
  });
  const clients = createAnnalsClients({ baseUrl: `http://127.0.0.1:${b.grpcPort}`, token: await signDevToken({ secret: TEST_SECRET, subject: "ops", roles: ["admin"] }), unaryTimeoutMs: 60_000 });
  bClients = { log: clients.log, federation: clients.federation };
}

before(async () => {
  a = await startTestNode("federation_crash_a", A);
  bDatabase = await createTestDatabase("federation_crash_b");
  await startB();
  const keyOf = async (federation: FederationClient) => (await federation.getNodeInfo({})).publicKeyJwk;
  await a.federation.registerPeer({ peer: { nodeId: B, url: "http://127.0.0.1:1", publicKeyJwk: await keyOf(bClients.federation), servedLogs: ["orders"] } });
  await bClients.federation.registerPeer({ peer: { nodeId: A, url: a.baseUrl, publicKeyJwk: await keyOf(a.federation), mirroredLogs: ["orders"] } });
});

after(async () => {
  await b?.stop("SIGKILL");
  await bDatabase?.drop();
  await a?.close();
});

test("SIGKILL of B mid-replication, then a restart: the mirror ends identical to A, no gap, no duplicate", async () => {
  const appending = (async () => {
    for (let first = 0; first < TOTAL; first += 1000) {
      await a.log.appendBatch({ logId: "orders", entries: Array.from({ length: 1000 }, (_, i) => ({ kind: "order.placed", payload: { n: first + i } })) });
    }
  })();
  for (const deadline = Date.now() + 60_000; (await mirrorHead()) < 3000n; ) {
    if (Date.now() > deadline) assert.fail("replication did not start");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const killedAt = await mirrorHead();
  const exit = await b!.stop("SIGKILL");
  assert.equal(exit.signal, "SIGKILL");
  await startB();
  await appending;
  for (const deadline = Date.now() + 120_000; (await mirrorHead()) !== BigInt(TOTAL); ) {
    if (Date.now() > deadline) assert.fail(`the mirror stopped at ${await mirrorHead()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.ok(killedAt < BigInt(TOTAL), `killed mid-way, at ${killedAt}`);
  assert.deepEqual(await chainOf(bClients.log, mirrorLogId(A, "orders")), await chainOf(a.log, "orders"));
  const verified = await bClients.log.verify({ logId: mirrorLogId(A, "orders") });
  assert.deepEqual([verified.valid, verified.checkedCount], [true, BigInt(TOTAL)]);
});
