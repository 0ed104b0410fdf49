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
import { rejects } from "@annals/runtime/testing";
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
    const registered = await admin.registerPeer({ peer: { nodeId: PEER, url: "https://annals.us-1.acme.example:50051", publicKeyJwk: key, servedLogs: ["orders", "eu/*"], mirroredLogs: ["payments"] } });
    assert.equal(registered.peer?.status, federationV1.PeerStatus.ACTIVE);
    assert.ok(registered.peer!.createdAtUs > 0n);
    await rejects(admin.registerPeer({ peer: { nodeId: PEER, url: "https://x.example", publicKeyJwk: key } }), Code.AlreadyExists, /already registered/);
    assert.deepEqual((await reader.getPeer({ nodeId: PEER })).peer?.servedLogs, ["orders", "eu/*"]);
    const updated = await admin.updatePeer({ peer: { nodeId: PEER, url: "https://ignored.example", status: federationV1.PeerStatus.DISABLED, servedLogs: ["orders"] }, updateMask: ["status", "served_logs"] });
    assert.deepEqual([updated.peer?.status, updated.peer?.url, updated.peer?.servedLogs], [federationV1.PeerStatus.DISABLED, "https://annals.us-1.acme.example:50051", ["orders"]]);
    assert.deepEqual((await reader.listPeers({})).peers.map((p) => p.nodeId), [PEER]);
    assert.equal((await admin.removePeer({ nodeId: PEER })).removed, true);
    assert.equal((await admin.removePeer({ nodeId: PEER })).removed, false);
    await rejects(reader.getPeer({ nodeId: PEER }), Code.NotFound);
    await rejects(admin.updatePeer({ peer: { nodeId: PEER, url: "https://x.example" }, updateMask: ["url"] }), Code.NotFound);
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
    ];
    for (const [change, message] of cases) {
      await rejects(admin.registerPeer({ peer: { ...base, ...change } as typeof base }), Code.InvalidArgument, message);
    }
    await rejects(admin.registerPeer({}), Code.InvalidArgument, /^peer: is required/);
    await rejects(admin.updatePeer({ peer: base, updateMask: [] }), Code.InvalidArgument, /^update_mask: /);
    await rejects(admin.updatePeer({ peer: base, updateMask: ["node_id"] }), Code.InvalidArgument, /^update_mask\[0\]: /);
    assert.deepEqual((await reader.listPeers({})).peers, []);
  });

  test("the registry needs admin to change and federation.read to read", async () => {
    await rejects(reader.registerPeer({ peer: { nodeId: PEER, url: "https://x.example", publicKeyJwk: await peerKey() } }), Code.PermissionDenied, /admin/);
    await rejects(reader.removePeer({ nodeId: PEER }), Code.PermissionDenied);
    const stranger = (await node.clientsWith(["log.read"])).federation;
    await rejects(stranger.listPeers({}), Code.PermissionDenied, /federation\.read/);
  });
});
