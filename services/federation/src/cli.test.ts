// `annals peers …`, `annals federation …` and `annals verify-evidence` against a running node.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { exportJWK, generateKeyPair } from "jose";
import { signDevToken } from "@annals/runtime";
import { runProcessToExit } from "@annals/runtime/testing";
import { TEST_SECRET, startTestNode, type TestNode } from "./federation-harness.js";

const CLI = fileURLToPath(new URL("../../../libs/cli/dist/main.js", import.meta.url));
const DOCS = fileURLToPath(new URL("../../../docs/merkle/federation/", import.meta.url));
let node: TestNode;
let peerNode: TestNode;
let dir: string;
let env: Record<string, string>;

before(async () => {
  node = await startTestNode("federation_cli", "spiffe://acme.example/annals/eu-1");
  peerNode = await startTestNode("federation_cli_peer", "spiffe://acme.example/annals/us-1");
  dir = mkdtempSync(join(tmpdir(), "annals-peers-"));
  env = { ANNALS_URL: node.baseUrl, ANNALS_TOKEN: await signDevToken({ secret: TEST_SECRET, subject: "ops", roles: ["admin"] }) };
});
after(async () => {
  await node?.close();
  await peerNode?.close();
  rmSync(dir, { recursive: true, force: true });
});

const annals = (...args: string[]) => runProcessToExit([CLI, ...args], env);
const annalsAt = (url: string, ...args: string[]) => runProcessToExit([CLI, ...args], { ...env, ANNALS_URL: url });

test("federation info, peers add / list / rm, federation status", async () => {
  const info = await annals("federation", "info");
  assert.equal(info.code, 0, info.stderr);
  assert.match(info.stdout, /^node id: spiffe:\/\/acme\.example\/annals\/eu-1\npublic key \(JWK\): \{"kty":"OKP".*\}\nlog verifier key: acme\.example\/annals\/eu-1\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+\nwitness key: acme\.example\/annals\/eu-1\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+\n$/);
  assert.equal((await annals("peers", "list")).stdout, "no peers registered (add one with `annals peers add`)\n");
  const { publicKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  writeFileSync(join(dir, "peer.jwk"), JSON.stringify(await exportJWK(publicKey)));
  const peer = "spiffe://acme.example/annals/us-1";
  const added = await annals("peers", "add", "--node-id", peer, "--peer-url", "http://127.0.0.1:1", "--key-file", join(dir, "peer.jwk"), "--serve", "orders,eu/*", "--mirror", "payments");
  assert.equal(added.code, 0, added.stderr);
  assert.equal(added.stdout.trim(), `registered ${peer} at http://127.0.0.1:1; no log key: its mirrors are checked by hash chain only`);
  assert.equal((await annals("peers", "list")).stdout, `${peer}\thttp://127.0.0.1:1\tactive\tserves: orders,eu/*\tmirrors: payments\tlog key: -\n`);
  const status = await annals("federation", "status");
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, new RegExp(`^${peer.replace(/[./]/g, "\\$&")}\\tpayments → mirror/acme\\.example/annals/us-1/payments\\t(idle|backoff)`));
  const duplicate = await annals("peers", "add", "--node-id", peer, "--peer-url", "http://127.0.0.1:1", "--key-file", join(dir, "peer.jwk"));
  assert.equal(duplicate.code, 1);
  assert.match(duplicate.stderr, /already registered/);
  assert.equal((await annals("peers", "rm", peer)).stdout.trim(), `removed ${peer}`);
  assert.equal((await annals("peers", "rm", peer)).code, 1);
  assert.equal((await annals("peers", "add", "--node-id", peer)).code, 2, "missing options are a usage error");
});

test("what `federation info` prints on one node is what `peers add --key-file` takes on the other, log key included; `peers update` changes fields", async () => {
  const info = await annalsAt(peerNode.baseUrl, "federation", "info");
  assert.equal(info.code, 0, info.stderr);
  writeFileSync(join(dir, "us-1.info"), info.stdout);
  const logKey = /^log verifier key: (.+)$/m.exec(info.stdout)![1]!;
  const peer = "spiffe://acme.example/annals/us-1";
  const added = await annals("peers", "add", "--node-id", peer, "--peer-url", peerNode.baseUrl, "--key-file", join(dir, "us-1.info"), "--mirror", "orders");
  assert.equal(added.code, 0, added.stderr);
  assert.match(added.stdout, /its checkpoints are checked with its log key/);
  assert.equal((await node.federation.getPeer({ nodeId: peer })).peer?.logVerifierKey, logKey);
  // Only the JWK line of it works too (the log key is then given apart, or not at all).
  writeFileSync(join(dir, "us-1.jwk-line"), info.stdout.split("\n")[1]!);
  const updated = await annals("peers", "update", peer, "--key-file", join(dir, "us-1.jwk-line"), "--serve", "audit", "--disable");
  assert.equal(updated.code, 0, updated.stderr);
  assert.equal(updated.stdout.trim(), `updated ${peer}: public_key_jwk, served_logs, status`);
  const stored = (await node.federation.getPeer({ nodeId: peer })).peer!;
  assert.deepEqual([stored.servedLogs, stored.status, stored.logVerifierKey], [["audit"], 2, logKey]);
  const cleared = await annals("peers", "update", peer, "--log-key", "", "--enable");
  assert.equal(cleared.code, 0, cleared.stderr);
  assert.equal((await node.federation.getPeer({ nodeId: peer })).peer?.logVerifierKey, "");
  const bad = await annals("peers", "update", peer, "--log-key", "not-a-key");
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /log_verifier_key: is not a signed-note verifier key/);
  assert.equal((await annals("peers", "update", peer)).code, 2, "nothing to change is a usage error");
  writeFileSync(join(dir, "garbage"), "hello\n");
  const refused = await annals("peers", "add", "--node-id", "spiffe://acme.example/annals/x", "--peer-url", "http://127.0.0.1:1", "--key-file", join(dir, "garbage"));
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /holds neither a JWK nor the output of `annals federation info`/);
  await annals("peers", "rm", peer);
});

test("federation evidence / quarantine / re-mirror / reset name what is wrong; verify-evidence checks a bundle offline", async () => {
  const missing = await annals("federation", "evidence", "--peer", "spiffe://acme.example/annals/us-1", "--log", "orders");
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no fork evidence is stored/);
  assert.equal((await annals("federation", "quarantine", "--peer", "spiffe://acme.example/annals/us-1")).code, 2);
  assert.match((await annals("federation", "reset", "--peer", "spiffe://acme.example/annals/us-1", "--log", "orders")).stderr, /no integrity error to reset/);
  // A bundle a mirror produced (docs/merkle/federation), with the log's key, with the node's key, and with another.
  const bundles = JSON.parse((await import("node:fs")).readFileSync(join(DOCS, "bundles.json"), "utf8")) as { file: string; verifier_key: string; kind: string }[];
  for (const { file, verifier_key: key, kind } of bundles) {
    const checked = await annals("verify-evidence", join(DOCS, file), "--key", key);
    assert.equal(checked.code, 0, checked.stdout);
    assert.match(checked.stdout, new RegExp(`proves misbehaviour of acme\\.example/annals/eu-1:[a-z]+ \\(${kind}\\)`));
  }
  const wrong = await annals("verify-evidence", join(DOCS, bundles[0]!.file), "--key", bundles[1]!.verifier_key);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stdout, /proves nothing: the smaller checkpoint is not the log's/);
  assert.equal((await annals("verify-evidence", join(DOCS, bundles[0]!.file))).code, 2);
  assert.equal((await annals("verify-evidence", join(DOCS, bundles[0]!.file), "--key", "nonsense")).code, 2);
});
