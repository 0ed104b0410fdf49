// Witnessing between nodes: origin A publishes the checkpoints of its logs
// once 2 of the 3 witness nodes W1–W3 cosigned them (tlog-witness over their
// HTTP ports). One witness down: checkpoints are still published, with two
// cosignatures. Two down: publication waits, and GetCheckpoint, the tile API
// and receipts keep to the last checkpoint that met the policy until a
// witness returns.
import assert from "node:assert/strict";
import { createPrivateKey } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import { Code } from "@connectrpc/connect";
import {
  SIGNATURE_TYPE_ED25519,
  WitnessPolicyError,
  createVerifierKey,
  ed25519PrivateKeyFromSeed,
  formatVerifierKey,
  logOrigin,
  parseVerifierKey,
  verifyCosignedCheckpoint,
  verifyTlogProof,
  type VerifierKey,
} from "@annals/chain";
import { parseWitnessPolicy } from "@annals/log";
import { errorReason, signDevToken } from "@annals/runtime";
import { rejects, runProcessToExit } from "@annals/runtime/testing";
import { jsonEntry, startTestNode, TEST_SECRET, until, type TestNode } from "./federation-harness.js";
import { WITNESS_PREFIX } from "./witness-routes.js";

const CLI = fileURLToPath(new URL("../../../libs/cli/dist/main.js", import.meta.url));
const A = "spiffe://acme.example/annals/eu-1";
const LOG = "orders";
const ORIGIN = logOrigin(A, LOG);
const logJwk = ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(11)).export({ format: "jwk" });
const logKey = createVerifierKey(ORIGIN, SIGNATURE_TYPE_ED25519, createPrivateKey({ key: logJwk, format: "jwk" }));

let a: TestNode;
const witnesses: TestNode[] = [];
const witnessKeys: VerifierKey[] = [];
const formatWitness = (i: number) => formatVerifierKey(witnessKeys[i]!);
const policy = () => ({ keys: witnessKeys, threshold: 2 });

const cosignedBy = async (size: bigint) =>
  (await a.db.query<{ witness: string }>(`select witness from log.cosignatures where log_id = $1 and tree_size = $2`, [LOG, size])).rows
    .map((row) => parseVerifierKey(row.witness).name)
    .sort();

async function appendEntries(count: number): Promise<bigint> {
  const { results } = await a.log.appendBatch({ logId: LOG, entries: Array.from({ length: count }, (_, i) => jsonEntry("order.placed", { i })) });
  return results.at(-1)!.seq;
}

/** GetCheckpoint's note, verified against the log key and the 2-of-3 policy. */
async function published(): Promise<{ size: bigint; cosigners: string[]; note: string }> {
  const response = await a.log.getCheckpoint({ logId: LOG });
  const opened = verifyCosignedCheckpoint(response.note, logKey, policy(), { origin: ORIGIN });
  assert.equal(opened.checkpoint.size, response.treeSize);
  return { size: response.treeSize, cosigners: opened.cosignatures.map((c) => c.key.name).sort(), note: response.note };
}

before(async () => {
  const listing: string[] = [];
  for (const [i, name] of ["w1", "w2", "w3"].entries()) {
    const node = await startTestNode(`witness_quorum_${name}`, `spiffe://acme.example/annals/${name}`, {
      witness: {
        logs: [{ origin: ORIGIN, keys: [logKey] }],
        name: `${name}.acme.example/witness`,
        keyJwk: ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(20 + i)).export({ format: "jwk" }),
      },
    });
    witnesses.push(node);
    // What an operator copies from `annals federation info` on the witness node.
    const vkey = (await node.federation.getNodeInfo({})).witnessVerifierKey;
    witnessKeys.push(parseVerifierKey(vkey));
    listing.push(`${vkey} http://127.0.0.1:${node.server.httpPort}${WITNESS_PREFIX}`);
  }
  a = await startTestNode("witness_quorum_a", A, {}, {}, undefined, {
    nodeId: A,
    signingKey: logJwk,
    checkpointIntervalMs: 50,
    witnesses: parseWitnessPolicy(`k=2; ${listing.join("; ")}`),
    witnessTimeoutMs: 2000,
  });
});

after(async () => {
  await a?.close();
  for (const node of witnesses) await node.close();
});

test("all three witnesses up: the published checkpoint carries the log's signature and three cosignatures", async () => {
  const last = await appendEntries(10);
  await until("a published checkpoint covering seq 10", async () => (await published().catch(() => ({ size: 0n }))).size === last);
  const { cosigners } = await published();
  assert.ok(cosigners.length >= 2, `cosigned by ${cosigners.join(", ")}`);
  await until("all three cosignatures of size 10", async () => (await cosignedBy(last)).length === 3);
  assert.deepEqual(await cosignedBy(last), ["w1.acme.example/witness", "w2.acme.example/witness", "w3.acme.example/witness"]);
  // The same note on the tile API.
  const token = await signDevToken({ secret: TEST_SECRET, subject: "reader", roles: ["log.read"] });
  const tiles = await fetch(`http://127.0.0.1:${a.server.httpPort}/v1/logs/${LOG}/checkpoint`, { headers: { authorization: `Bearer ${token}` } });
  const opened = verifyCosignedCheckpoint(await tiles.text(), logKey, { keys: witnessKeys, threshold: 3 });
  assert.equal(opened.checkpoint.size, last);
  // Each witness stored it before answering: its monitoring endpoint serves the same tree.
  for (const node of witnesses) {
    const { rows } = await node.db.query<{ tree_size: bigint }>(`select tree_size from federation.witness_checkpoints where origin = $1`, [ORIGIN]);
    assert.equal(BigInt(rows[0]!.tree_size), last);
  }
});

test("one witness down: checkpoints are still published, with the two other cosignatures; receipts carry them", async () => {
  await witnesses[2]!.server.shutdown("witness down");
  const last = await appendEntries(5);
  await until("a published checkpoint covering the new entries", async () => (await published()).size === last);
  assert.deepEqual((await published()).cosigners, ["w1.acme.example/witness", "w2.acme.example/witness"]);
  const { result, receipt } = await a.log.append({ logId: LOG, entry: jsonEntry("order.placed", { receipt: true }), wantReceipt: true });
  const verified = verifyTlogProof(receipt, Buffer.from(result!.checksum, "hex"), { logKey, witnesses: policy() });
  assert.ok(verified.checkpoint.size >= result!.seq);
  assert.equal(verified.cosignatures.length, 2);
  // The same receipt offline with the CLI: 2 of the 3 witnesses given is met, 3 of 3 is not.
  const dir = mkdtempSync(join(tmpdir(), "annals-receipt-"));
  try {
    const file = join(dir, "receipt");
    writeFileSync(file, receipt);
    const verify = (threshold: string) =>
      runProcessToExit(
        [CLI, "verify-receipt", file, "--key", formatVerifierKey(logKey), "--checksum", result!.checksum, ...[0, 1, 2].flatMap((i) => ["--witness-key", formatWitness(i)]), "--witnesses", threshold],
        {},
      );
    const met = await verify("2");
    assert.equal(met.code, 0, met.stdout + met.stderr);
    assert.match(met.stdout, /valid receipt.*cosigned by at least 2 of the 3 witnesses given/);
    const unmet = await verify("3");
    assert.equal(unmet.code, 1, unmet.stdout + unmet.stderr);
    assert.match(unmet.stdout, /INVALID receipt/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("two witnesses down: publication waits; GetCheckpoint keeps serving the last checkpoint that met the policy; receipts are UNAVAILABLE", async () => {
  const before = await published();
  await witnesses[1]!.server.shutdown("witness down");
  const last = await appendEntries(5);
  // The log signs and W1 cosigns the new checkpoint: one cosignature, short of the policy.
  await until("W1's cosignature of the new size", async () => (await cosignedBy(last)).includes("w1.acme.example/witness"));
  assert.deepEqual(await cosignedBy(last), ["w1.acme.example/witness"]);
  const still = await published();
  assert.equal(still.size, before.size, "the published checkpoint did not move");
  assert.equal(still.note, before.note);
  const inclusion = await a.log.getInclusionProof({ logId: LOG, seq: 1n });
  assert.equal(inclusion.treeSize, before.size, "proofs default to the published tree");
  const refused = await rejects(a.log.append({ logId: LOG, entry: jsonEntry("order.placed", { receipt: "waits" }), wantReceipt: true }), Code.Unavailable);
  assert.equal(errorReason(refused), "WITNESS_QUORUM");
  // The signed note of the new size has one cosignature: a client holding the policy refuses it.
  const { rows } = await a.db.query<{ note: string; line: string }>(
    `select c.note, s.line from log.checkpoints c join log.cosignatures s using (log_id, tree_size) where c.log_id = $1 and c.tree_size = $2`,
    [LOG, last],
  );
  assert.throws(() => verifyCosignedCheckpoint(`${rows[0]!.note}${rows[0]!.line}\n`, logKey, policy()), WitnessPolicyError);
});

test("a witness returns: the publisher asks it again on its own and publication resumes", async () => {
  const port = witnesses[1]!.server.httpPort;
  await witnesses[1]!.restart({}, { ANNALS_HTTP_PORT: String(port), ANNALS_SHUTDOWN_GRACE_MS: "1000" });
  const head = (await a.log.getLog({ logId: LOG })).head!.lastSeq;
  await until("publication to catch up with the head", async () => (await published()).size === head, 120_000);
  assert.deepEqual((await published()).cosigners, ["w1.acme.example/witness", "w2.acme.example/witness"]);
});

test("the origin lost what the witnesses hold: their 409 answers give it their sizes and it sends again from there", async () => {
  await a.db.query(`delete from log.witness_positions where log_id = $1`, [LOG]);
  const last = await appendEntries(3);
  await until("a published checkpoint covering the new entries", async () => (await published()).size === last);
  const { rows } = await a.db.query<{ tree_size: bigint }>(`select tree_size from log.witness_positions where log_id = $1 order by witness`, [LOG]);
  assert.deepEqual(rows.map((row) => BigInt(row.tree_size)), [last, last], "W1 and W2 hold the new size (W3 is still down)");
});

test("a split view: a second server with A's key and node id shows another history; the witnesses refuse it (422) and keep the evidence", async () => {
  const head = (await a.log.getLog({ logId: LOG })).head!.lastSeq;
  const listing = witnesses.slice(0, 2).map((node, i) => `${formatWitness(i)} http://127.0.0.1:${node.server.httpPort}${WITNESS_PREFIX}`);
  const impostor = await startTestNode("witness_quorum_fork", A, {}, {}, undefined, {
    nodeId: A,
    signingKey: logJwk,
    checkpointIntervalMs: 50,
    witnesses: parseWitnessPolicy(`k=1; ${listing.join("; ")}`),
    witnessTimeoutMs: 2000,
  });
  try {
    // Another history, longer than A's, so that each witness's 409 leads to a proof from A's size that fails.
    await impostor.log.appendBatch({ logId: LOG, entries: Array.from({ length: Number(head) + 5 }, (_, i) => jsonEntry("order.forged", { i })) });
    const evidenceOf = async (node: TestNode) =>
      (await node.db.query<{ status: number; submitted_note: string }>(`select status, submitted_note from federation.witness_evidence where origin = $1`, [ORIGIN])).rows;
    await until("both witnesses to keep evidence", async () => (await evidenceOf(witnesses[0]!)).length > 0 && (await evidenceOf(witnesses[1]!)).length > 0);
    for (const node of witnesses.slice(0, 2)) {
      const [kept] = await evidenceOf(node);
      assert.equal(Number(kept!.status), 422);
      assert.match(kept!.submitted_note, new RegExp(`^${ORIGIN.replace(/[.]/g, "\\.")}\\n${head + 5n}\\n`));
      // The witness still holds A's history.
      const { rows } = await node.db.query<{ tree_size: bigint }>(`select tree_size from federation.witness_checkpoints where origin = $1`, [ORIGIN]);
      assert.equal(BigInt(rows[0]!.tree_size), head);
    }
    const refused = await rejects(impostor.log.getCheckpoint({ logId: LOG }), Code.Unavailable);
    assert.equal(errorReason(refused), "WITNESS_QUORUM", "nothing the impostor signed was ever cosigned");
    assert.equal((await published()).size, head, "A is unaffected");
  } finally {
    await impostor.close();
  }
});
