// `annals peers …` and `annals federation …` against a running node.
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
let node: TestNode;
let dir: string;
let env: Record<string, string>;

before(async () => {
  node = await startTestNode("federation_cli", "spiffe://acme.example/annals/eu-1");
  dir = mkdtempSync(join(tmpdir(), "annals-peers-"));
  env = { ANNALS_URL: node.baseUrl, ANNALS_TOKEN: await signDevToken({ secret: TEST_SECRET, subject: "ops", roles: ["admin"] }) };
});
after(async () => {
  await node?.close();
  rmSync(dir, { recursive: true, force: true });
});

const annals = (...args: string[]) => runProcessToExit([CLI, ...args], env);

test("federation info, peers add / list / rm, federation status", async () => {
  const info = await annals("federation", "info");
  assert.equal(info.code, 0, info.stderr);
  assert.match(info.stdout, /^node id: spiffe:\/\/acme\.example\/annals\/eu-1\npublic key \(JWK\): \{"kty":"OKP"/);
  const { publicKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  writeFileSync(join(dir, "peer.jwk"), JSON.stringify(await exportJWK(publicKey)));
  const peer = "spiffe://acme.example/annals/us-1";
  const added = await annals("peers", "add", "--node-id", peer, "--peer-url", "http://127.0.0.1:1", "--key-file", join(dir, "peer.jwk"), "--serve", "orders,eu/*", "--mirror", "payments");
  assert.equal(added.code, 0, added.stderr);
  assert.equal(added.stdout.trim(), `registered ${peer} at http://127.0.0.1:1`);
  assert.equal((await annals("peers", "list")).stdout, `${peer}\thttp://127.0.0.1:1\tactive\tserves: orders,eu/*\tmirrors: payments\n`);
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
