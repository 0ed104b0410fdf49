// Two complete nodes on loopback, each with its own database: B mirrors A's
// logs through Pull and verifies every entry.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { federationV1 } from "@annals/proto";
import { errorReason } from "@annals/runtime";
import { rejects } from "@annals/runtime/testing";
import { MAX_PAYLOAD_DEPTH } from "@annals/chain";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { chainOf, headOf, jsonEntry, startTestNode, until, type TestNode } from "./federation-harness.js";
import { mirrorLogId } from "./identity.js";

const A = "spiffe://acme.example/annals/eu-1";
const B = "spiffe://acme.example/annals/us-1";
const FAST = { replication: { reconcileMs: 200, backoffFirstMs: 50, backoffMaxMs: 1000 } };
const { AuditReason, ReplicationState } = federationV1;

async function appendMany(node: TestNode, logId: string, from: number, count: number): Promise<void> {
  for (let first = from; first < from + count; first += 1000) {
    const size = Math.min(1000, from + count - first);
    await node.log.appendBatch({ logId, entries: Array.from({ length: size }, (_, i) => jsonEntry("order.placed", { n: first + i })) });
  }
}

describe("federation: B mirrors A's logs", () => {
  let a: TestNode;
  let b: TestNode;
  const mirror = (logId: string) => mirrorLogId(A, logId);
  before(async () => {
    a = await startTestNode("federation_a", A, FAST);
    b = await startTestNode("federation_b", B, FAST);
    const keyOf = async (node: TestNode) => (await node.federation.getNodeInfo({})).publicKeyJwk;
    await a.federation.registerPeer({ peer: { nodeId: B, url: b.baseUrl, publicKeyJwk: await keyOf(b), servedLogs: ["orders", "ledger"] } });
    await b.federation.registerPeer({ peer: { nodeId: A, url: a.baseUrl, publicKeyJwk: await keyOf(a), mirroredLogs: ["orders"] } });
  });
  after(async () => {
    await b?.close();
    await a?.close();
  });

  test("10,000 entries arrive; every seq and checksum equals A's, and Verify passes on B's mirror", async () => {
    await appendMany(a, "orders", 0, 10_000);
    // About 10 s alone; 47–65 s on the 2-core CI machine with another test file running beside it.
    await until("the mirror to reach seq 10000", async () => (await headOf(b.log, mirror("orders"))) === 10_000n, 150_000);
    assert.deepEqual(await chainOf(b.log, mirror("orders")), await chainOf(a.log, "orders"));
    const verified = await b.log.verify({ logId: mirror("orders") });
    assert.deepEqual([verified.valid, verified.checkedCount], [true, 10_000n]);
    const head = (await b.log.getLog({ logId: mirror("orders") })).head!;
    assert.deepEqual([head.origin, head.originNode, head.chainLogId], [2, A, "orders"]);
    const [status] = (await b.federation.getReplicationStatus({ nodeId: A })).replications;
    assert.equal(status?.state, ReplicationState.RUNNING);
    assert.deepEqual([status?.headSeq, status?.peerHeadSeq, status?.lagEntries, status?.lagMs, status?.mirrorLogId], [10_000n, 10_000n, 0n, 0n, mirror("orders")]);
    assert.ok(status?.lastSuccessTime && timestampMs(status.lastSuccessTime) <= Date.now());
    await rejects(b.log.append({ logId: mirror("orders"), entry: jsonEntry("x", {}) }), Code.FailedPrecondition);
    const scrape = await fetch(`http://127.0.0.1:${b.server.httpPort}/metrics`).then((response) => response.text());
    assert.match(scrape, /annals_federation_entries_received_total\{[^}]*peer="spiffe:\/\/acme\.example\/annals\/eu-1"[^}]*\} 10000\b/);
    assert.match(scrape, /annals_federation_lag_entries\{[^}]*log="orders"[^}]*\} 0\b/);
  });

  test("a redaction on A reaches B's mirror: the payload is erased there too and Verify still passes", async () => {
    const redaction = await a.log.redact({ logId: "orders", seq: 5n, reason: "GDPR erasure request" });
    await until("the redaction entry to arrive", async () => (await headOf(b.log, mirror("orders"))) === redaction.redaction!.seq);
    const copy = (await b.log.getEntry({ logId: mirror("orders"), selector: { case: "seq", value: 5n } })).entry!;
    assert.equal(copy.body.case, undefined, "the mirror's copy lost its payload");
    assert.deepEqual([copy.redaction?.redactionSeq, copy.redaction?.reason], [redaction.redaction!.seq, "GDPR erasure request"]);
    assert.equal((await b.log.verify({ logId: mirror("orders") })).valid, true);
    assert.deepEqual(await chainOf(b.log, mirror("orders")), await chainOf(a.log, "orders"));
  });

  test(`the deepest payload a log takes (${MAX_PAYLOAD_DEPTH} levels) is mirrored and reads back from the mirror`, async () => {
    let payload: Record<string, unknown> = { leaf: 1 };
    for (let level = 1; level < MAX_PAYLOAD_DEPTH; level++) payload = { level: payload };
    const { result } = await a.log.append({ logId: "orders", entry: jsonEntry("order.deep", payload as never) });
    await until("the deep entry to arrive", async () => (await headOf(b.log, mirror("orders"))) >= result!.seq);
    const copy = (await b.log.getEntry({ logId: mirror("orders"), selector: { case: "seq", value: result!.seq } })).entry!;
    assert.deepEqual(copy.body, { case: "payload", value: payload });
  });

  test("binary payloads are mirrored byte for byte: the digest is SHA-256 of the bytes and Verify passes on the mirror", async () => {
    const bytes = [new Uint8Array(0), new Uint8Array([0, 255, 1, 254]), randomBytes(64 * 1024)];
    const contentType = "application/x-protobuf; messageType=acme.orders.v1.OrderPlaced";
    const { results } = await a.log.appendBatch({
      logId: "orders",
      entries: bytes.map((value) => ({ kind: "order.binary", body: { case: "binaryPayload" as const, value }, contentType })),
    });
    const last = results.at(-1)!.seq;
    await until("the binary entries to arrive", async () => (await headOf(b.log, mirror("orders"))) >= last);
    for (const [i, value] of bytes.entries()) {
      const copy = (await b.log.getEntry({ logId: mirror("orders"), selector: { case: "seq", value: results[i]!.seq } })).entry!;
      assert.equal(copy.body.case, "binaryPayload");
      assert.deepEqual(Buffer.from(copy.body.value), Buffer.from(value));
      assert.equal(copy.contentType, contentType);
      assert.equal(copy.payloadDigest, createHash("sha256").update(value).digest("hex"));
      assert.equal(copy.chainLogId, "orders");
    }
    assert.equal((await b.log.verify({ logId: mirror("orders") })).valid, true);
    assert.deepEqual(await chainOf(b.log, mirror("orders")), await chainOf(a.log, "orders"));
  });

  test("B restarted mid-replication ends identical to A: no gap, no duplicate", async () => {
    const start = Number(await headOf(a.log, "orders"));
    const appending = appendMany(a, "orders", start, 5000);
    await until("replication under way", async () => (await headOf(b.log, mirror("orders"))) > BigInt(start + 500));
    await b.restart();
    await appending;
    await until("the mirror to reach A's head", async () => (await headOf(b.log, mirror("orders"))) === BigInt(start + 5000));
    assert.deepEqual(await chainOf(b.log, mirror("orders")), await chainOf(a.log, "orders"));
    assert.equal((await b.log.verify({ logId: mirror("orders") })).valid, true);
  });

  test("an entry altered in A's database is detected: nothing of it or after it is stored, state integrity_error, audited", async () => {
    await appendMany(a, "ledger", 0, 20);
    await a.db.query(`update log.entries set payload = '{"n": 999999}'::jsonb where log_id = 'ledger' and seq = 12`);
    await b.federation.updatePeer({ peer: { nodeId: A, mirroredLogs: ["orders", "ledger"] }, updateMask: { paths: ["mirrored_logs"] } });
    const stopped = async () =>
      (await b.federation.getReplicationStatus({ nodeId: A })).replications.find((r) => r.logId === "ledger")?.state === ReplicationState.INTEGRITY_ERROR;
    await until("the ledger replication to stop", stopped, 30_000);
    const status = (await b.federation.getReplicationStatus({ nodeId: A })).replications.find((r) => r.logId === "ledger")!;
    assert.equal(status.lastErrorCode, Code.DataLoss);
    assert.match(status.lastError, /entry 12/);
    assert.ok((await headOf(b.log, mirror("ledger"))) < 12n, "nothing from seq 12 on was stored");
    const [record] = (await b.federation.listAuditRecords({ nodeId: A })).records;
    assert.deepEqual([record?.logId, record?.seq, record?.reason], ["ledger", 12n, AuditReason.CHECKSUM_MISMATCH]);
    assert.match(record!.message, /entry 12 .*does not verify/);
    const scrape = await fetch(`http://127.0.0.1:${b.server.httpPort}/metrics`).then((response) => response.text());
    assert.match(scrape, /annals_federation_integrity_errors\{[^}]*log="ledger"[^}]*\} 1\b/);
    assert.match(scrape, /annals_federation_entries_rejected_total\{[^}]*\} 1\b/);
    // It stays stopped across a restart, until an operator resets it; the data is still bad, so it stops again.
    await b.restart();
    await until("the stop to be remembered", stopped, 30_000);
    const mirrorHead = await headOf(b.log, mirror("ledger"));
    const { status: afterReset } = await b.federation.resetReplication({ nodeId: A, logId: "ledger" });
    assert.deepEqual([afterReset?.nodeId, afterReset?.logId, afterReset?.mirrorLogId, afterReset?.headSeq, afterReset?.lastErrorCode], [A, "ledger", mirror("ledger"), mirrorHead, 0]);
    assert.ok([ReplicationState.IDLE, ReplicationState.RUNNING].includes(afterReset!.state), `state ${afterReset!.state}`);
    assert.equal(errorReason(await rejects(b.federation.resetReplication({ nodeId: A, logId: "orders" }), Code.FailedPrecondition, /no integrity error/)), "NOTHING_TO_RESET");
    await until("the ledger replication to stop again", stopped, 30_000);
    const reset = (await b.federation.listAuditRecords({ nodeId: A })).records.find((r) => r.reason === AuditReason.RESET);
    assert.match(reset?.message ?? "", /^integrity error cleared by test-admin$/);
  });
});
