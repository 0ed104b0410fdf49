import assert from "node:assert/strict";
import { test } from "node:test";
import { cosignatureSigner, createCosigner } from "./cosignature.js";
import { addNoteSignatures, createNoteSigner, signNote } from "./signed-note.js";
import { createTestLog, testLeaves } from "./log-fixture.js";
import { inclusionProof } from "./tile-proofs.js";
import { MAX_PROOF_HASHES, formatTlogProof, parseTlogProof, verifyTlogProof } from "./tlog-proof.js";
import { ed25519PrivateKeyFromSeed } from "./verifier-key.js";

const log = createTestLog(testLeaves("receipts", 1000));
const witnesses = [1, 2, 3].map((n) => createCosigner(`witness.example/w${n}`, ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(20 + n))));

async function receipt(index: bigint, size: bigint, cosigners = 0): Promise<string> {
  let checkpoint = await log.checkpoint(size);
  if (cosigners > 0) checkpoint = addNoteSignatures(checkpoint, witnesses.slice(0, cosigners).map((w, i) => cosignatureSigner(w, 1_700_000_000n + BigInt(i))));
  return formatTlogProof({ index, hashes: await inclusionProof(index, size, log.store.reader), checkpoint });
}

test("a receipt round-trips and verifies offline, with or without extra data", async () => {
  const text = await receipt(41n, 1000n);
  assert.ok(text.startsWith("c2sp.org/tlog-proof@v1\nindex 41\n"));
  const parsed = parseTlogProof(text);
  assert.equal(formatTlogProof(parsed), text);
  const verified = verifyTlogProof(text, log.leaves[41]!, { logKey: log.signer.key });
  assert.equal(verified.index, 41n);
  assert.equal(verified.checkpoint.size, 1000n);
  const withExtra = formatTlogProof({ ...parsed, extra: new Uint8Array([1, 2, 3]) });
  assert.ok(withExtra.includes("\nextra AQID\nindex 41\n"));
  assert.deepEqual(verifyTlogProof(withExtra, log.leaves[41]!, { logKey: log.signer.key }).extra, new Uint8Array([1, 2, 3]));
  // The last leaf of a tree, and the only leaf of a tree of one (no hashes).
  verifyTlogProof(await receipt(999n, 1000n), log.leaves[999]!, { logKey: log.signer.key });
  const single = await receipt(0n, 1n);
  assert.ok(single.includes("index 0\n\n"));
  verifyTlogProof(single, log.leaves[0]!, { logKey: log.signer.key });
});

test("a receipt fails, naming the step, for another leaf, a changed hash, another key or origin", async () => {
  const text = await receipt(41n, 1000n);
  const key = { logKey: log.signer.key };
  assert.throws(() => verifyTlogProof(text, log.leaves[42]!, key), { name: "TlogProofError", reason: "inclusion" });
  const parsed = parseTlogProof(text);
  for (let i = 0; i < parsed.hashes.length; i++) {
    const hashes = parsed.hashes.map((hash, j) => (j === i ? hash.map((b, k) => (k === 0 ? b ^ 1 : b)) : hash));
    assert.throws(() => verifyTlogProof({ ...parsed, hashes }, log.leaves[41]!, key), { name: "TlogProofError", reason: "inclusion" }, `hash ${i}`);
  }
  assert.throws(() => verifyTlogProof({ ...parsed, hashes: parsed.hashes.slice(1) }, log.leaves[41]!, key), { reason: "inclusion" });
  assert.throws(() => verifyTlogProof({ ...parsed, index: 40n }, log.leaves[41]!, key), { reason: "inclusion" });
  assert.throws(() => verifyTlogProof({ ...parsed, index: 1000n }, log.leaves[41]!, key), { reason: "inclusion", message: /not below/ });
  const stranger = createNoteSigner(log.origin, ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(99)));
  assert.throws(() => verifyTlogProof(text, log.leaves[41]!, { logKey: stranger.key }), { name: "TlogProofError", reason: "bad-signature" });
  assert.throws(() => verifyTlogProof(text, log.leaves[41]!, { ...key, origin: "acme.example/annals/eu-2:orders" }), { reason: "wrong-origin" });
  // A checkpoint re-signed with the right key but a size whose tree is one level lower: the proof no longer fits.
  const resized = signNote(`${log.origin}\n512\n${parsed.checkpoint.split("\n")[2]}\n`, [log.signer]);
  assert.throws(() => verifyTlogProof({ ...parsed, checkpoint: resized }, log.leaves[41]!, key), { reason: "inclusion" });
});

test("witness policies count distinct valid cosignatures", async () => {
  const keys = witnesses.map((w) => w.key);
  const twoOfThree = await receipt(7n, 500n, 2);
  const verified = verifyTlogProof(twoOfThree, log.leaves[7]!, { logKey: log.signer.key, witnesses: { keys, threshold: 2 } });
  assert.deepEqual(verified.cosignatures.map((c) => c.timestamp), [1_700_000_000n, 1_700_000_001n]);
  assert.throws(() => verifyTlogProof(twoOfThree, log.leaves[7]!, { logKey: log.signer.key, witnesses: { keys, threshold: 3 } }), { name: "TlogProofError", reason: "witnesses", message: /2 of the 3/ });
  assert.throws(() => verifyTlogProof(twoOfThree, log.leaves[7]!, { logKey: log.signer.key, witnesses: { keys, threshold: 4 } }), { reason: "witnesses" });
  // The same witness twice is one vote.
  const doubled = formatTlogProof({ ...parseTlogProof(twoOfThree), checkpoint: addNoteSignatures(parseTlogProof(twoOfThree).checkpoint, [cosignatureSigner(witnesses[0]!, 1_700_000_009n)]) });
  assert.equal(verifyTlogProof(doubled, log.leaves[7]!, { logKey: log.signer.key, witnesses: { keys, threshold: 2 } }).cosignatures.length, 2);
  // A cosignature of a known witness that fails to verify rejects the receipt.
  const broken = twoOfThree.replace(/(\u2014 witness\.example\/w1 [A-Za-z0-9+/]{20})[A-Za-z0-9+/]/, (_, start: string) => `${start}${start.endsWith("A") ? "B" : "A"}`);
  assert.notEqual(broken, twoOfThree);
  assert.throws(() => verifyTlogProof(broken, log.leaves[7]!, { logKey: log.signer.key, witnesses: { keys, threshold: 1 } }), { reason: "witnesses" });
});

test("every malformed receipt is refused as malformed", async () => {
  const text = await receipt(41n, 1000n);
  const [head, checkpoint] = [text.slice(0, text.indexOf("\n\n")), text.slice(text.indexOf("\n\n") + 2)];
  const hashLine = head.split("\n")[2]!;
  const bad = [
    "",
    text.replace("c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v2"),
    text.replace("index 41", "index 041"),
    text.replace("index 41", "index -1"),
    text.replace("index 41", "index 9223372036854775808"),
    text.replace("index 41", "index  41"),
    text.replace("index 41\n", ""),
    text.replace("\nindex 41", "\nextra \nindex 41"),
    text.replace("\nindex 41", "\nextra AQI\nindex 41"),
    text.replace(hashLine, hashLine.slice(1)),
    text.replace(hashLine, `${hashLine}\n`), // an empty line inside the proof
    head, // no checkpoint
    `${head}\n\n${checkpoint.replace("\n\n", "\n")}`, // checkpoint without its blank line
    [head.split("\n").slice(0, 2).join("\n"), ...Array.from({ length: MAX_PROOF_HASHES + 1 }, () => hashLine)].join("\n") + `\n\n${checkpoint}`,
  ];
  for (const input of bad) assert.throws(() => parseTlogProof(input), { name: "TlogProofError", reason: "malformed" }, JSON.stringify(input.slice(0, 80)));
  assert.throws(() => verifyTlogProof(bad[1]!, log.leaves[41]!, { logKey: log.signer.key }), { name: "TlogProofError", reason: "malformed" });
});
