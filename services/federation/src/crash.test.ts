// B runs as real processes — its log service and its federation service, each
// on a database of its own — SIGKILLed together while B replicates A's log:
// once restarted, its mirror ends identical to A's, with no gap and no
// duplicate. (The standalone services, not the all-in-one node, so that this
// package's tests need only what it depends on.)
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { createAnnalsClients, type FederationClient, type LogClient } from "@annals/client";
import { createTestDatabase, type TestDatabase } from "@annals/db/testing";
import { signDevToken } from "@annals/runtime";
import { startServiceProcess, type ServiceProcess } from "@annals/runtime/testing";
import { TEST_SECRET, chainOf, headOf, jsonEntry, startTestNode, until, type TestNode } from "./federation-harness.js";
import { mirrorLogId } from "./identity.js";

const LOG_MAIN = fileURLToPath(new URL("main.js", import.meta.resolve("@annals/log")));
const FEDERATION_MAIN = fileURLToPath(new URL("./main.js", import.meta.url));
const A = "spiffe://acme.example/annals/eu-1";
const B = "spiffe://acme.example/annals/us-1";
const TOTAL = 20_000;

let a: TestNode;
let bDatabases: { log: TestDatabase; federation: TestDatabase };
let bProcesses: ServiceProcess[] = [];
let bClients: { log: LogClient; federation: FederationClient };

const mirrorHead = () => headOf(bClients.log, mirrorLogId(A, "orders"));

async function startB(): Promise<void> {
  const env = { ANNALS_AUTH_JWT_SECRET: TEST_SECRET };
  const log = await startServiceProcess({ script: LOG_MAIN, env: { ...env, ...bDatabases.log.env } });
  const federation = await startServiceProcess({
    script: FEDERATION_MAIN,
    env: {
      ...env,
      ...bDatabases.federation.env,
      ANNALS_NODE_ID: B,
      ANNALS_LOG_URL: `http://127.0.0.1:${log.grpcPort}`,
      ANNALS_LOG_TOKEN: await signDevToken({ secret: TEST_SECRET, subject: "federation-b", roles: ["log.read", "log.replicate"], expiresIn: "2h" }),
    },
  });
  bProcesses = [log, federation];
  const token = await signDevToken({ secret: TEST_SECRET, subject: "ops", roles: ["admin"] });
  const clients = (port: number) => createAnnalsClients({ baseUrl: `http://127.0.0.1:${port}`, token, unaryTimeoutMs: 60_000 });
  bClients = { log: clients(log.grpcPort).log, federation: clients(federation.grpcPort).federation };
}

before(async () => {
  a = await startTestNode("federation_crash_a", A);
  bDatabases = { log: await createTestDatabase("federation_crash_bl"), federation: await createTestDatabase("federation_crash_bf") };
  await startB();
  const keyOf = async (federation: FederationClient) => (await federation.getNodeInfo({})).publicKeyJwk;
  await a.federation.registerPeer({ peer: { nodeId: B, url: "http://127.0.0.1:1", publicKeyJwk: await keyOf(bClients.federation), servedLogs: ["orders"] } });
  await bClients.federation.registerPeer({ peer: { nodeId: A, url: a.baseUrl, publicKeyJwk: await keyOf(a.federation), mirroredLogs: ["orders"] } });
});

after(async () => {
  await Promise.all(bProcesses.map((process) => process.stop("SIGKILL")));
  await bDatabases?.log.drop();
  await bDatabases?.federation.drop();
  await a?.close();
});

test("SIGKILL of B mid-replication, then a restart: the mirror ends identical to A, no gap, no duplicate", async () => {
  const appending = (async () => {
    for (let first = 0; first < TOTAL; first += 1000) {
      await a.log.appendBatch({ logId: "orders", entries: Array.from({ length: 1000 }, (_, i) => jsonEntry("order.placed", { n: first + i })) });
    }
  })();
  await until("replication to start", async () => (await mirrorHead()) >= 3000n);
  const killedAt = await mirrorHead();
  const exits = await Promise.all(bProcesses.map((process) => process.stop("SIGKILL")));
  assert.deepEqual(exits.map((exit) => exit.signal), ["SIGKILL", "SIGKILL"]);
  await startB();
  await appending;
  await until(`the mirror to reach ${TOTAL}`, async () => (await mirrorHead()) === BigInt(TOTAL), 120_000);
  assert.ok(killedAt < BigInt(TOTAL), `killed mid-way, at ${killedAt}`);
  assert.deepEqual(await chainOf(bClients.log, mirrorLogId(A, "orders")), await chainOf(a.log, "orders"));
  const verified = await bClients.log.verify({ logId: mirrorLogId(A, "orders") });
  assert.deepEqual([verified.valid, verified.checkedCount], [true, BigInt(TOTAL)]);
});
