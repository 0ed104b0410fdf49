// The serving side: Pull to a registered peer, and everything it refuses.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { SignJWT, exportJWK, generateKeyPair } from "jose";
import { createAnnalsClients } from "@annals/client";
import type { federationV1 } from "@annals/proto";
import { errorReason, retryDelayMs } from "@annals/runtime";
import { rejects } from "@annals/runtime/testing";
import { startTestNode, type TestNode } from "./federation-harness.js";
import { publicPart, type NodeIdentity } from "./identity.js";
import { signPeerToken } from "./peer-token.js";

const A = "spiffe://acme.example/annals/eu-1";
const B = "spiffe://acme.example/annals/us-1";

async function identity(nodeId: string): Promise<NodeIdentity> {
  const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  return { nodeId, privateKey, publicJwk: publicPart(await exportJWK(privateKey)) };
}

/** Reads a Pull stream with `token` until `count` frames arrived (or it ends). */
async function pull(node: TestNode, token: string, request: { logId: string; fromSeq: bigint }, count: number): Promise<federationV1.PullResponse[]> {
  const client = createAnnalsClients({ baseUrl: node.baseUrl, token }).federation;
  const controller = new AbortController();
  const frames: federationV1.PullResponse[] = [];
  try {
    for await (const frame of client.pull(request, { signal: controller.signal })) {
      frames.push(frame);
      if (frames.length === count) break;
    }
  } finally {
    controller.abort();
  }
  return frames;
}

describe("federation: Pull", () => {
  let a: TestNode;
  let b: NodeIdentity;
  before(async () => {
    a = await startTestNode("federation_pull", A);
    b = await identity(B);
    await a.federation.registerPeer({ peer: { nodeId: B, url: "https://b.example", publicKeyJwk: JSON.stringify(b.publicJwk), servedLogs: ["orders", "eu/*"] } });
    for (let i = 1; i <= 5; i++) await a.log.append({ logId: "orders", entry: { kind: "order.placed", payload: { i } } });
  });
  after(async () => {
    await a?.close();
  });

  test("a registered peer pulls a log from a seq with its chain fields, then follows it live", async () => {
    const token = await signPeerToken(b, A);
    const reading = pull(a, token, { logId: "orders", fromSeq: 2n }, 5);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await a.log.append({ logId: "orders", entry: { kind: "order.paid", payload: { i: 6 } } });
    const frames = await reading;
    const entries = frames.flatMap((frame) => (frame.frame.case === "entry" ? [frame.frame.value] : []));
    assert.deepEqual(entries.map((e) => e.seq), [2n, 3n, 4n, 5n, 6n]);
    const stored = await a.log.read({ logId: "orders", fromSeq: 2n, pageSize: 5 });
    assert.deepEqual(entries.map((e) => [e.checksum, e.prevChecksum]), stored.entries.map((e) => [e.checksum, e.prevChecksum]));
  });

  test("refused: no token, an unknown issuer, another key, another audience, an expired token, a log not served; each audited", async () => {
    const client = (token?: string) => createAnnalsClients({ baseUrl: a.baseUrl, ...(token ? { token } : {}) }).federation;
    const first = async (token: string | undefined, logId = "orders") => {
      for await (const _ of client(token).pull({ logId, fromSeq: 1n })) return;
    };
    const before = (await a.federation.listAuditRecords({})).records.length;
    await rejects(first(undefined), Code.Unauthenticated, /needs a peer token/);
    await rejects(first(await signPeerToken(await identity("spiffe://acme.example/annals/nobody"), A)), Code.Unauthenticated, /no peer .* is registered/);
    const impostor = { ...(await identity(B)) };
    const forged = await rejects(first(await signPeerToken(impostor, A)), Code.Unauthenticated, /signature does not verify/);
    assert.equal(errorReason(forged), "PEER_TOKEN_INVALID");
    await rejects(first(await signPeerToken(b, "spiffe://acme.example/annals/elsewhere")), Code.Unauthenticated, /"aud" claim/);
    const now = Math.floor(Date.now() / 1000);
    const expired = await new SignJWT({}).setProtectedHeader({ alg: "EdDSA" }).setIssuer(B).setSubject(B).setAudience(A).setIssuedAt(now - 600).setExpirationTime(now - 300).sign(b.privateKey);
    await rejects(first(expired), Code.Unauthenticated, /expired/);
    await rejects(first(await signPeerToken(b, A), "payments"), Code.PermissionDenied, /may not pull log "payments"/);
    const records = (await a.federation.listAuditRecords({})).records;
    assert.equal(records.length - before, 6, JSON.stringify(records.map((r) => r.reason)));
    assert.match(records[0]!.reason, /^LOG_NOT_SERVED/);
    assert.deepEqual([records[0]!.nodeId, records[0]!.logId], [B, "payments"]);
    assert.ok(records.some((record) => /^PEER_TOKEN_INVALID: .*signature/.test(record.reason) && record.nodeId === B));
    await rejects((await a.clientsWith(["log.read"])).federation.listAuditRecords({}), Code.PermissionDenied);
  });

  test("refusals cannot fill the audit trail: repeats are one record with a count, a window adds few records, a claimed issuer is cut short", async () => {
    const client = (token: string) => createAnnalsClients({ baseUrl: a.baseUrl, token }).federation;
    const first = async (token: string) => {
      for await (const _ of client(token).pull({ logId: "orders", fromSeq: 1n })) return;
    };
    const nobody = await signPeerToken(await identity("spiffe://flood.example/annals/nobody"), A);
    const before = (await a.federation.listAuditRecords({ pageSize: 1000 })).records.length;
    for (let round = 0; round < 6; round++) {
      await Promise.all(Array.from({ length: 50 }, () => rejects(first(nobody), Code.Unauthenticated)));
    }
    let records = (await a.federation.listAuditRecords({ pageSize: 1000 })).records;
    assert.equal(records.length - before, 1, "300 identical refusals, one record");
    assert.equal(records[0]!.count, 300n);
    assert.equal(records[0]!.nodeId, "spiffe://flood.example/annals/nobody");
    assert.match(records[0]!.source, /^(ipv4:)?127\.0\.0\.1$|^(ipv6:)?\[?::1\]?$|^ipv6:\[::ffff:127\.0\.0\.1\]$/);
    assert.ok(records[0]!.lastTimeUs >= records[0]!.timeUs);

    // Made-up issuers, each different, one of them 5,000 characters long.
    const unsigned = (iss: string) => new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setIssuer(iss).setAudience(A).sign(new TextEncoder().encode("x".repeat(32)));
    const long = `spiffe://flood.example/${"x".repeat(5000)}`;
    await rejects(first(await unsigned(long)), Code.Unauthenticated, /^no peer "spiffe:\/\/flood\.example\/x{77}…" is registered here$/);
    await Promise.all(Array.from({ length: 200 }, async (_, i) => rejects(first(await unsigned(`spiffe://flood.example/n${i}`)), Code.Unauthenticated)));
    records = (await a.federation.listAuditRecords({ pageSize: 1000 })).records;
    assert.ok(records.length - before <= 2 + 20 + 1, `201 different refusals added ${records.length - before - 1} records`);
    const overflow = records.find((record) => record.reason.startsWith("REFUSALS_AGGREGATED"));
    assert.ok(overflow, "the refusals past the cap are counted in one record");
    assert.ok(records.every((record) => record.nodeId.length <= 101));
    const total = records.slice(0, records.length - before).reduce((sum, record) => sum + record.count, 0n);
    assert.equal(total, 300n + 201n, "every refusal is counted somewhere");
  });

  test("a disabled peer is refused; enabled again it pulls", async () => {
    await a.federation.updatePeer({ peer: { nodeId: B, status: 2 }, updateMask: ["status"] });
    const refused = pull(a, await signPeerToken(b, A), { logId: "orders", fromSeq: 1n }, 1);
    await rejects(refused, Code.PermissionDenied, /disabled/);
    await a.federation.updatePeer({ peer: { nodeId: B, status: 1 }, updateMask: ["status"] });
    assert.equal((await pull(a, await signPeerToken(b, A), { logId: "orders", fromSeq: 1n }, 1)).length, 1);
  });

  test("after a compaction, a pull from before the checkpoint starts with the checkpoint", async () => {
    for (let i = 1; i <= 4; i++) await a.log.append({ logId: "eu/compacted", entry: { kind: "x", payload: { i } } });
    await a.log.compact({ logId: "eu/compacted", retain: { case: "beforeSeq", value: 3n } });
    const frames = await pull(a, await signPeerToken(b, A), { logId: "eu/compacted", fromSeq: 1n }, 3);
    const stored = (await a.log.getLog({ logId: "eu/compacted" })).head!;
    assert.equal(frames[0]!.frame.case, "checkpoint");
    assert.deepEqual(frames[0]!.frame.value, { ...frames[0]!.frame.value, seq: 2n, checksum: stored.checkpointChecksum });
    assert.deepEqual(frames.slice(1).map((f) => (f.frame.case === "entry" ? f.frame.value.seq : 0n)), [3n, 4n]);
  });

  test("a peer that starts too many Pulls in a minute gets RESOURCE_EXHAUSTED with a retry delay", async () => {
    await a.restart({ pullsPerMinute: 2 });
    const token = await signPeerToken(b, A);
    await pull(a, token, { logId: "orders", fromSeq: 1n }, 1);
    await pull(a, token, { logId: "orders", fromSeq: 1n }, 1);
    const limited = await rejects(pull(a, token, { logId: "orders", fromSeq: 1n }, 1), Code.ResourceExhausted, /this minute/);
    assert.equal(errorReason(limited), "PULL_RATE_LIMITED");
    const delay = retryDelayMs(limited) ?? 0;
    assert.ok(delay > 0 && delay <= 60_000, `retry after ${delay} ms`);
  });
});
