// Node identity and the peer registry through the gRPC service.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { exportJWK, generateKeyPair } from "jose";
import type { FederationClient } from "@annals/client";
import { federationV1 } from "@annals/proto";
import { errorReason } from "@annals/runtime";
import { rejects } from "@annals/runtime/testing";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { startTestNode, type TestNode } from "./federation-harness.js";

const SELF = "spiffe://acme.example/annals/eu-1";
const PEER = "spiffe://acme.example/annals/us-1";

async function peerKey(): Promise<string> {
  const { publicKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  return JSON.stringify(await exportJWK(publicKey));
}

describe("federation: identity and peer registry", () => {
  let node: TestNode;
  let admin: FederationClient;
  let reader: FederationClient;
  const restart = async (keyFile?: string) => {
    await node.restart({ keyFile });
    admin = node.federation;
    reader = (await node.clientsWith(["federation.read"])).federation;
  };
  before(async () => {
    node = await startTestNode("federation_registry", SELF);
    admin = node.federation;
    reader = (await node.clientsWith(["federation.read"])).federation;
  });
  after(async () => {
    await node?.close();
  });

  test("GetNodeInfo names the node and gives its public key only; the key survives a restart", async () => {
    const info = await reader.getNodeInfo({});
    assert.equal(info.nodeId, SELF);
    const jwk = JSON.parse(info.publicKeyJwk) as Record<string, string>;
    assert.deepEqual([jwk["kty"], jwk["crv"], "d" in jwk], ["OKP", "Ed25519", false]);
    await restart();
    assert.equal((await reader.getNodeInfo({})).publicKeyJwk, info.publicKeyJwk, "the generated key was kept in the database");
  });

  test("a configured key file is used instead", async () => {
    const dir = mkdtempSync(join(tmpdir(), "annals-key-"));
    try {
      const { privateKey } = await generateKeyPair("ES256", { extractable: true });
      const jwk = await exportJWK(privateKey);
      writeFileSync(join(dir, "node.jwk"), JSON.stringify(jwk));
      await restart(join(dir, "node.jwk"));
      const info = JSON.parse((await reader.getNodeInfo({})).publicKeyJwk) as Record<string, string>;
      assert.deepEqual([info["kty"], info["crv"], info["x"], "d" in info], ["EC", "P-256", jwk.x, false]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await restart();
    }
  });

  test("register, get, list, update by mask and remove a peer", async () => {
    const key = await peerKey();
    const startedMs = Date.now() - 1000;
    const registered = await admin.registerPeer({ peer: { nodeId: PEER, url: "https://annals.us-1.acme.example:50051", publicKeyJwk: key, servedLogs: ["orders", "eu/*"], mirroredLogs: ["payments"] } });
    assert.equal(registered.peer?.status, federationV1.PeerStatus.ACTIVE);
    assert.ok(timestampMs(registered.peer.createTime!) >= startedMs);
    assert.deepEqual(registered.peer.updateTime, registered.peer.createTime);
    const duplicate = await rejects(admin.registerPeer({ peer: { nodeId: PEER, url: "https://x.example", publicKeyJwk: key } }), Code.AlreadyExists, /already registered/);
    assert.equal(errorReason(duplicate), "PEER_EXISTS");
    assert.deepEqual((await reader.getPeer({ nodeId: PEER })).peer?.servedLogs, ["orders", "eu/*"]);
    await new Promise((resolve) => setTimeout(resolve, 10));
    const updated = await admin.updatePeer({
      peer: { nodeId: PEER, url: "https://ignored.example", status: federationV1.PeerStatus.DISABLED, servedLogs: ["orders"] },
      updateMask: { paths: ["status", "served_logs"] },
    });
    assert.deepEqual([updated.peer?.status, updated.peer?.url, updated.peer?.servedLogs], [federationV1.PeerStatus.DISABLED, "https://annals.us-1.acme.example:50051", ["orders"]]);
    assert.deepEqual(updated.peer!.createTime, registered.peer.createTime);
    assert.ok(timestampMs(updated.peer!.updateTime!) > timestampMs(updated.peer!.createTime!));
    assert.deepEqual((await reader.listPeers({})).peers.map((p) => p.nodeId), [PEER]);
    assert.equal((await admin.removePeer({ nodeId: PEER })).removed, true);
    assert.equal((await admin.removePeer({ nodeId: PEER })).removed, false);
    assert.equal(errorReason(await rejects(reader.getPeer({ nodeId: PEER }), Code.NotFound)), "PEER_NOT_FOUND");
    assert.equal(errorReason(await rejects(admin.updatePeer({ peer: { nodeId: PEER, url: "https://x.example" }, updateMask: { paths: ["url"] } }), Code.NotFound)), "PEER_NOT_FOUND");
  });

  test("update_mask is a FieldMask of proto field names: empty, unknown or blank paths are INVALID_ARGUMENT naming the path", async () => {
    const base = { nodeId: PEER, url: "https://annals.us-1.acme.example:50051", publicKeyJwk: await peerKey() };
    await admin.registerPeer({ peer: base });
    try {
      await rejects(admin.updatePeer({ peer: base }), Code.InvalidArgument, /^update_mask: /);
      await rejects(admin.updatePeer({ peer: base, updateMask: { paths: [] } }), Code.InvalidArgument, /^update_mask: name the fields to change: url, public_key_jwk, served_logs, mirrored_logs, status, log_verifier_key$/);
      await rejects(admin.updatePeer({ peer: base, updateMask: { paths: ["node_id"] } }), Code.InvalidArgument, /^update_mask\.paths\[0\]: "node_id" cannot be changed/);
      await rejects(admin.updatePeer({ peer: base, updateMask: { paths: ["url", ""] } }), Code.InvalidArgument, /^update_mask\.paths\[1\]: /);
      // JSON names are not proto names.
      await rejects(admin.updatePeer({ peer: base, updateMask: { paths: ["servedLogs"] } }), Code.InvalidArgument, /^update_mask\.paths\[0\]: /);
      const changed = await admin.updatePeer({ peer: { ...base, url: "https://annals-2.us-1.acme.example" }, updateMask: { paths: ["url"] } });
      assert.equal(changed.peer?.url, "https://annals-2.us-1.acme.example");
    } finally {
      await admin.removePeer({ nodeId: PEER });
    }
  });

  test("ListPeers pages by node id; a token is refused by another listing and a page size beyond 1000", async () => {
    const key = await peerKey();
    const ids = ["e", "a", "d", "c", "b"].map((name) => `spiffe://acme.example/annals/${name}`);
    for (const nodeId of ids) await admin.registerPeer({ peer: { nodeId, url: "http://127.0.0.1:1", publicKeyJwk: key } });
    try {
      const seen: string[][] = [];
      let pageToken = "";
      do {
        const page = await reader.listPeers({ pageSize: 2, pageToken });
        seen.push(page.peers.map((peer) => peer.nodeId.slice(-1)));
        pageToken = page.nextPageToken;
      } while (pageToken);
      assert.deepEqual(seen, [["a", "b"], ["c", "d"], ["e"]]);
      assert.equal((await reader.listPeers({})).peers.length, 5, "0 means 100");
      assert.equal((await reader.listPeers({ pageSize: 5 })).nextPageToken, "", "no token when the page reached the end");
      const token = (await reader.listPeers({ pageSize: 1 })).nextPageToken;
      await rejects(reader.getReplicationStatus({ pageToken: token }), Code.InvalidArgument, /^page_token: /);
      await rejects(reader.listAuditRecords({ pageToken: token }), Code.InvalidArgument, /^page_token: /);
      await rejects(reader.listPeers({ pageToken: "not-a-token" }), Code.InvalidArgument, /^page_token: /);
      await rejects(reader.listPeers({ pageSize: 1001 }), Code.InvalidArgument, /^page_size: /);
      await rejects(reader.listPeers({ pageSize: -1 }), Code.InvalidArgument, /^page_size: /);
    } finally {
      for (const nodeId of ids) await admin.removePeer({ nodeId });
    }
  });

  test("GetReplicationStatus pages by node id then log id; a token holds only for the node_id filter it was made with", async () => {
    const key = await peerKey();
    const [p1, p2] = ["spiffe://acme.example/annals/p1", "spiffe://acme.example/annals/p2"];
    // Unreachable peers: their replications exist (backing off) and have heard nothing from the peer.
    await admin.registerPeer({ peer: { nodeId: p2, url: "http://127.0.0.1:1", publicKeyJwk: key, mirroredLogs: ["zeta", "alpha"] } });
    await admin.registerPeer({ peer: { nodeId: p1, url: "http://127.0.0.1:1", publicKeyJwk: key, mirroredLogs: ["orders", "beta", "audit"] } });
    try {
      const pages: string[][] = [];
      let pageToken = "";
      do {
        const page = await reader.getReplicationStatus({ pageSize: 2, pageToken });
        pages.push(page.replications.map((r) => `${r.nodeId.slice(-2)}/${r.logId}`));
        pageToken = page.nextPageToken;
      } while (pageToken);
      assert.deepEqual(pages, [["p1/audit", "p1/beta"], ["p1/orders", "p2/alpha"], ["p2/zeta"]]);
      const [status] = (await reader.getReplicationStatus({ nodeId: p2, pageSize: 1 })).replications;
      assert.deepEqual([status?.mirrorLogId, status?.headSeq, status?.peerHeadSeq, status?.lagEntries, status?.lagMs, status?.lastSuccessTime], [
        "mirror/acme.example/annals/p2/alpha", 0n, 0n, 0n, 0n, undefined,
      ]);
      const filtered = await reader.getReplicationStatus({ nodeId: p2, pageSize: 1 });
      assert.deepEqual(filtered.replications.map((r) => r.logId), ["alpha"]);
      assert.deepEqual((await reader.getReplicationStatus({ nodeId: p2, pageToken: filtered.nextPageToken })).replications.map((r) => r.logId), ["zeta"]);
      await rejects(reader.getReplicationStatus({ nodeId: p1, pageToken: filtered.nextPageToken }), Code.InvalidArgument, /^page_token: /);
      await rejects(reader.getReplicationStatus({ pageToken: filtered.nextPageToken }), Code.InvalidArgument, /^page_token: /);
      await rejects(reader.getReplicationStatus({ pageSize: 1001 }), Code.InvalidArgument, /^page_size: /);
    } finally {
      await admin.removePeer({ nodeId: p1 });
      await admin.removePeer({ nodeId: p2 });
    }
  });

  test("bad peers are refused with INVALID_ARGUMENT naming the field, and nothing is stored", async () => {
    const key = await peerKey();
    const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
    const privateJwk = JSON.stringify(await exportJWK(privateKey));
    const base = { nodeId: "spiffe://acme.example/annals/ap-1", url: "https://annals.ap-1.acme.example", publicKeyJwk: key };
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ nodeId: "https://acme.example/x" }, /^peer\.node_id: must be a SPIFFE ID/],
      [{ nodeId: "spiffe://ACME/x" }, /^peer\.node_id: /],
      [{ nodeId: "spiffe://acme.example" }, /^peer\.node_id: /],
      [{ nodeId: SELF }, /^peer\.node_id: is this node's own id/],
      [{ url: "annals.ap-1:50051" }, /^peer\.url: /],
      [{ url: "https://annals.ap-1.acme.example/path" }, /^peer\.url: must be an http:\/\/ or https:\/\/ origin/],
      [{ url: "ftp://annals.ap-1.acme.example" }, /^peer\.url: /],
      [{ publicKeyJwk: "not json" }, /^peer\.public_key_jwk: must be a JWK/],
      [{ publicKeyJwk: privateJwk }, /^peer\.public_key_jwk: holds a private key/],
      [{ publicKeyJwk: JSON.stringify({ kty: "RSA", n: "x", e: "AQAB" }) }, /^peer\.public_key_jwk: /],
      [{ servedLogs: ["ok", "bad name"] }, /^peer\.served_logs\[1\]: /],
      [{ mirroredLogs: ["eu/*"] }, /^peer\.mirrored_logs\[0\]: /],
      [{ logVerifierKey: key }, /^peer\.log_verifier_key: is not a signed-note verifier key/],
      [{ logVerifierKey: "acme.example/annals/ap-1+00000000+AQNY6yAOkSJ1RjeMyT9l4N2SGtaTUS1qKY1yM3pAiznI" }, /^peer\.log_verifier_key: .*does not match/],
      // Another node's key: a peer's log key is named by its own node id (or one of its origins).
      [{ logVerifierKey: "acme.example/annals/eu-1:below+15af3cc6+AQNY6yAOkSJ1RjeMyT9l4N2SGtaTUS1qKY1yM3pAiznI" }, /^peer\.log_verifier_key: is named "acme\.example\/annals\/eu-1:below"; it must be named by the peer's node id/],
    ];
    for (const [change, message] of cases) {
      await rejects(admin.registerPeer({ peer: { ...base, ...change } }), Code.InvalidArgument, message);
    }
    await rejects(admin.registerPeer({}), Code.InvalidArgument, /^peer: is required/);
    assert.deepEqual((await reader.listPeers({})).peers, []);
  });

  test("the registry needs admin to change and federation.read to read", async () => {
    await rejects(reader.registerPeer({ peer: { nodeId: PEER, url: "https://x.example", publicKeyJwk: await peerKey() } }), Code.PermissionDenied, /admin/);
    await rejects(reader.removePeer({ nodeId: PEER }), Code.PermissionDenied);
    const stranger = (await node.clientsWith(["log.read"])).federation;
    await rejects(stranger.listPeers({}), Code.PermissionDenied, /federation\.read/);
  });
});
