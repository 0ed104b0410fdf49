// Federation under mTLS with certificates made for the test (openssl): it
// works when each certificate names its node, and is refused and audited on
// both sides when one names another node.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { federationV1 } from "@annals/proto";
import { makeTestCertificates } from "@annals/runtime/testing";
import { headOf, jsonEntry, startTestNode, until, type TestNode } from "./federation-harness.js";
import { mirrorLogId } from "./identity.js";

const A = "spiffe://acme.example/annals/eu-1";
const B = "spiffe://acme.example/annals/us-1";
const ROGUE = "spiffe://acme.example/annals/rogue";
const FAST = { replication: { reconcileMs: 200, backoffFirstMs: 50, backoffMaxMs: 500 } };

let dir: string;
const file = (name: string) => join(dir, name);

const credentials = (name: string) => ({ caFile: file("ca.pem"), certFile: file(`${name}.pem`), keyFile: file(`${name}.key`) });
const serverEnv = (name: string) => ({ ANNALS_TLS_CERT_FILE: file(`${name}.pem`), ANNALS_TLS_KEY_FILE: file(`${name}.key`), ANNALS_TLS_CLIENT_CA_FILE: file("ca.pem") });

describe("federation under mTLS", () => {
  let a: TestNode;
  let b: TestNode;
  const status = async () => (await b.federation.getReplicationStatus({ nodeId: A })).replications[0];
  const mirrorHead = () => headOf(b.log, mirrorLogId(A, "orders"));

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "annals-mtls-"));
    makeTestCertificates(dir, { a: A, b: B, rogue: ROGUE });
    a = await startTestNode("federation_mtls_a", A, FAST, serverEnv("a"), credentials("a"));
    b = await startTestNode("federation_mtls_b", B, { ...FAST, tls: credentials("b") });
    const keyOf = async (node: TestNode) => (await node.federation.getNodeInfo({})).publicKeyJwk;
    await a.federation.registerPeer({ peer: { nodeId: B, url: "https://127.0.0.1:1", publicKeyJwk: await keyOf(b), servedLogs: ["orders"] } });
    await b.federation.registerPeer({ peer: { nodeId: A, url: a.baseUrl, publicKeyJwk: await keyOf(a), mirroredLogs: ["orders"] } });
  });
  after(async () => {
    await b?.close();
    await a?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("with certificates naming their nodes, B mirrors A over mTLS", async () => {
    assert.match(a.baseUrl, /^https:/);
    for (let i = 0; i < 50; i++) await a.log.append({ logId: "orders", entry: jsonEntry("order.placed", { i }) });
    await until("the mirror to reach seq 50", async () => (await mirrorHead()) === 50n);
    assert.equal((await status())?.state, federationV1.ReplicationState.RUNNING);
  });

  test("a client certificate naming another node is refused by A, and audited there", async () => {
    await b.restart({ ...FAST, tls: credentials("rogue") });
    await a.log.append({ logId: "orders", entry: jsonEntry("order.placed", { i: 50 }) });
    await until("B to be refused", async () => /client certificate must name exactly/.test((await status())?.lastError ?? ""));
    assert.equal(await mirrorHead(), 50n, "nothing arrived over the refused connection");
    const records = (await a.federation.listAuditRecords({ nodeId: B })).records;
    const mismatch = (record: federationV1.AuditRecord) =>
      record.reason === federationV1.AuditReason.CERTIFICATE_MISMATCH && /^PEER_CERT_MISMATCH: .*names spiffe:\/\/acme\.example\/annals\/rogue/.test(record.message);
    assert.ok(records.some(mismatch), JSON.stringify(records.map((r) => [r.reason, r.message])));
  });

  test("a server certificate naming another node is refused by B, and audited there", async () => {
    await b.restart({ ...FAST, tls: credentials("b") });
    await until("B to catch up again", async () => (await mirrorHead()) === 51n);
    // A now presents B's certificate: it chains to the CA but names the wrong node.
    await a.restart(FAST, serverEnv("b"));
    await b.federation.updatePeer({ peer: { nodeId: A, url: a.baseUrl }, updateMask: { paths: ["url"] } });
    await a.log.append({ logId: "orders", entry: jsonEntry("order.placed", { i: 51 }) });
    await until("B to refuse A's certificate", async () => /server's certificate names spiffe:\/\/acme\.example\/annals\/us-1, not exactly/.test((await status())?.lastError ?? ""));
    assert.equal(await mirrorHead(), 51n);
    const records = (await b.federation.listAuditRecords({ nodeId: A })).records;
    const refused = (record: federationV1.AuditRecord) =>
      record.reason === federationV1.AuditReason.CERTIFICATE_MISMATCH && /server's certificate names spiffe:\/\/acme\.example\/annals\/us-1/.test(record.message);
    assert.ok(records.some(refused), JSON.stringify(records.map((r) => [r.reason, r.message])));
  });
});
