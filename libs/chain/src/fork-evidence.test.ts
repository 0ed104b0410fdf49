import assert from "node:assert/strict";
import { test } from "node:test";
import { toHex } from "./bytes.js";
import { signCheckpoint } from "./checkpoint.js";
import { createForkEvidence, formatForkEvidence, parseForkEvidence, verifyForkEvidence } from "./fork-evidence.js";
import { emptyRoot } from "./merkle-hash.js";
import { createNoteSigner } from "./signed-note.js";
import { createTestLog, testLeaves } from "./log-fixture.js";
import { consistencyProof } from "./tile-proofs.js";
import { ed25519PrivateKeyFromSeed } from "./verifier-key.js";

// One origin and one key, two histories: B rewrote A after leaf 60.
const honest = createTestLog(testLeaves("history A", 200));
const rewritten = createTestLog([...honest.leaves.slice(0, 60), ...testLeaves("history B", 140)]);
const key = honest.signer.key;

test("a rewrite after the older checkpoint: the rewritten tree's proof derives its own root but not the signed older one", async () => {
  const bundle = createForkEvidence({ checkpoints: [await honest.checkpoint(100n), await rewritten.checkpoint(150n)], proof: await consistencyProof(100n, 150n, rewritten.store.reader) });
  const verdict = verifyForkEvidence(bundle, key);
  assert.equal(verdict.provesMisbehaviour, true, verdict.provesMisbehaviour ? "" : verdict.reason);
  assert.equal(verdict.provesMisbehaviour && verdict.kind, "inconsistent");
  assert.equal(verdict.provesMisbehaviour && toHex(verdict.derivedSmallerRoot!), toHex(await rewritten.root(100n)));
  assert.equal(verdict.provesMisbehaviour && verdict.origin, honest.origin);
});

test("a truncation: a mirror's copy of the larger tree is the evidence, in either order", async () => {
  const bundle = createForkEvidence({ checkpoints: [await honest.checkpoint(180n), await rewritten.checkpoint(70n)], proof: await consistencyProof(70n, 180n, honest.store.reader) });
  assert.ok(parseForkEvidence(bundle).smaller.includes("\n70\n"));
  const verdict = verifyForkEvidence(bundle, key);
  assert.equal(verdict.provesMisbehaviour && verdict.kind, "inconsistent");
});

test("one size, two roots", async () => {
  const bundle = createForkEvidence({ checkpoints: [await honest.checkpoint(90n), await rewritten.checkpoint(90n)], proof: [] });
  const verdict = verifyForkEvidence(bundle, key);
  assert.equal(verdict.provesMisbehaviour && verdict.kind, "same-size");
});

test("an older size that is a power of two needs the larger tree's root of that prefix", async () => {
  const checkpoints = [await honest.checkpoint(64n), await rewritten.checkpoint(150n)] as const;
  const proof = await consistencyProof(64n, 150n, rewritten.store.reader);
  assert.throws(() => createForkEvidence({ checkpoints, proof }), { name: "ForkEvidenceError", message: /power of two/ });
  const bundle = createForkEvidence({ checkpoints, proof, prefixRoot: await rewritten.root(64n) });
  assert.equal(verifyForkEvidence(bundle, key).provesMisbehaviour, true);
  // Claiming the honest prefix instead derives another larger root: nothing proven.
  const lying = createForkEvidence({ checkpoints, proof, prefixRoot: await honest.root(64n) });
  assert.equal(verifyForkEvidence(lying, key).provesMisbehaviour, false);
});

test("consistent checkpoints, a changed path, another key or origin prove nothing, and say why", async () => {
  const consistent = createForkEvidence({ checkpoints: [await honest.checkpoint(50n), await honest.checkpoint(150n)], proof: await consistencyProof(50n, 150n, honest.store.reader) });
  const verdict = verifyForkEvidence(consistent, key);
  assert.deepEqual([verdict.provesMisbehaviour, !verdict.provesMisbehaviour && /consistent/.test(verdict.reason)], [false, true]);
  const good = parseForkEvidence(createForkEvidence({ checkpoints: [await honest.checkpoint(100n), await rewritten.checkpoint(150n)], proof: await consistencyProof(100n, 150n, rewritten.store.reader) }));
  for (let i = 0; i < good.path.length; i++) {
    const path = good.path.map((hash, j) => (j === i ? hash.map((b, k) => (k === 3 ? b ^ 4 : b)) : hash));
    const changed = verifyForkEvidence({ ...good, path }, key);
    assert.equal(changed.provesMisbehaviour, false, `path hash ${i}`);
    assert.match(!changed.provesMisbehaviour ? changed.reason : "", /not the larger checkpoint's root/);
  }
  assert.equal(verifyForkEvidence({ ...good, path: good.path.slice(1) }, key).provesMisbehaviour, false);
  assert.equal(verifyForkEvidence({ ...good, path: [...good.path, emptyRoot()] }, key).provesMisbehaviour, false);
  const stranger = createNoteSigner(honest.origin, ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(8)));
  assert.match(String((verifyForkEvidence(good, stranger.key) as { reason: string }).reason), /not the log's/);
  assert.equal(verifyForkEvidence(good, key, { origin: "acme.example/annals/eu-1:other" }).provesMisbehaviour, false);
  // A checkpoint signed by another key of the same name: not the log's.
  const impostor = signCheckpoint({ origin: honest.origin, size: 150n, rootHash: await rewritten.root(150n), extensions: [] }, [stranger]);
  assert.equal(verifyForkEvidence({ ...good, larger: impostor }, key).provesMisbehaviour, false);
  const sameTwice = createForkEvidence({ checkpoints: [await honest.checkpoint(90n), await honest.checkpoint(90n)], proof: [] });
  assert.equal(verifyForkEvidence(sameTwice, key).provesMisbehaviour, false);
});

test("the empty tree: consistent with everything, unless its root is wrong", async () => {
  const empty = signCheckpoint({ origin: honest.origin, size: 0n, rootHash: emptyRoot(), extensions: [] }, [honest.signer]);
  const badEmpty = signCheckpoint({ origin: honest.origin, size: 0n, rootHash: await honest.root(1n), extensions: [] }, [honest.signer]);
  assert.equal(verifyForkEvidence(createForkEvidence({ checkpoints: [empty, await rewritten.checkpoint(10n)], proof: [] }), key).provesMisbehaviour, false);
  const verdict = verifyForkEvidence(createForkEvidence({ checkpoints: [badEmpty, await honest.checkpoint(10n)], proof: [] }), key);
  assert.equal(verdict.provesMisbehaviour && verdict.kind, "empty-tree");
});

test("the bundle round-trips, and malformed bundles are refused by parse and by the verdict", async () => {
  const bundle = createForkEvidence({ checkpoints: [await honest.checkpoint(100n), await rewritten.checkpoint(150n)], proof: await consistencyProof(100n, 150n, rewritten.store.reader) });
  assert.ok(bundle.startsWith("annals/fork-evidence/v1\n"));
  assert.equal(formatForkEvidence(parseForkEvidence(bundle)), bundle);
  const parsed = parseForkEvidence(bundle);
  const bad = [
    "",
    bundle.replace("annals/fork-evidence/v1", "annals/fork-evidence/v2"),
    bundle.replace(/\n\n/, "\n"),
    bundle.replace(/\n(\S+)\n\n/, "\n$1x\n\n"),
    bundle.slice(0, -1),
    `${bundle}\n`,
    `${bundle}extra\n`,
    bundle.replace(parsed.larger, ""),
    bundle.replace(`${parsed.smaller}\n`, parsed.smaller),
    formatForkEvidence({ ...parsed, path: [] }).replace(parsed.smaller, parsed.smaller.replace("\n100\n", "\n1000\n")),
  ];
  for (const text of bad) {
    assert.throws(() => parseForkEvidence(text), { name: "ForkEvidenceError", reason: "malformed" }, JSON.stringify(text.slice(0, 60)));
    const verdict = verifyForkEvidence(text, key);
    assert.equal(verdict.provesMisbehaviour, false);
  }
  const otherOrigin = createTestLog(honest.leaves, 7, "acme.example/annals/eu-1:other");
  const otherNote = await otherOrigin.checkpoint(150n);
  assert.throws(() => formatForkEvidence({ ...parsed, larger: otherNote }), { name: "ForkEvidenceError", message: /same origin/ });
  assert.throws(() => formatForkEvidence({ ...parsed, smaller: parsed.larger, larger: parsed.smaller }), { name: "ForkEvidenceError", message: /smaller checkpoint comes first/ });
});
