import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fromHex, toHex } from "./bytes.js";
import { cosignatureMessage, cosignatureSigner, createCosigner } from "./cosignature.js";
import { encodeEntryBundle } from "./entry-bundle.js";
import { verifyForkEvidence } from "./fork-evidence.js";
import { logOrigin, openCheckpoint, signCheckpoint } from "./checkpoint.js";
import { leafHash } from "./merkle-hash.js";
import { verifyConsistency, verifyInclusion } from "./merkle-proof.js";
import { decodeRightEdge, rightEdgeRoot } from "./right-edge.js";
import { addNoteSignatures, createNoteSigner, verifyNote } from "./signed-note.js";
import { createTestLog } from "./log-fixture.js";
import { consistencyProof, inclusionProof, treeRoot } from "./tile-proofs.js";
import { parseTilePath, tilePath, treeTiles } from "./tiles.js";
import { verifyTlogProof } from "./tlog-proof.js";
import { ed25519PrivateKeyFromSeed, formatVerifierKey, parseVerifierKey } from "./verifier-key.js";

// docs/merkle/vectors.json is also checked by docs/merkle/check_vectors.py, an
// independent implementation in Python; both must agree with the file.
const vectors = JSON.parse(readFileSync(new URL("../../../docs/merkle/vectors.json", import.meta.url), "utf8"));
const chainVectors = JSON.parse(readFileSync(new URL("../../../docs/hash-chain/vectors.json", import.meta.url), "utf8"));
const hex = (text: string): Uint8Array => fromHex(text)!;
const { log } = vectors;
const tree = createTestLog(log.leaves.map(hex), 0, log.origin);
const signer = createNoteSigner(log.origin, ed25519PrivateKeyFromSeed(hex(log.signing_key_seed)));
const logKey = parseVerifierKey(log.verifier_key);

test("the worked example is the tree of the hash-chain vectors' checksums", async () => {
  const { example } = vectors;
  const checksums = chainVectors.chains[0].entries.slice(0, 4).map((entry: { checksum: string }) => entry.checksum);
  assert.deepEqual(example.leaves.map((leaf: { checksum: string }) => leaf.checksum), checksums);
  const small = createTestLog(checksums.map(hex), 0, log.origin);
  for (const { size, root } of example.roots) assert.equal(toHex(await small.root(BigInt(size))), root, `size ${size}`);
  for (const leaf of example.leaves) assert.equal(toHex(leafHash(hex(leaf.checksum))), leaf.leaf_hash);
  assert.equal(signCheckpoint(openCheckpoint(example.checkpoint_note, [logKey]).checkpoint, [signer]), example.checkpoint_note);
  verifyTlogProof(example.receipt.proof, hex(example.receipt.leaf), { logKey });
  assert.deepEqual((await consistencyProof(3n, 4n, small.store.reader)).map(toHex), example.consistency.proof);
});

test("the log's key, origin, roots, proofs, tiles, bundles, right edge and checkpoints", async () => {
  assert.equal(log.origin, logOrigin(log.node_id, log.log_id));
  assert.equal(formatVerifierKey(signer.key), log.verifier_key);
  for (let size = 0; size < log.roots.length; size++) assert.equal(toHex(await treeRoot(BigInt(size), tree.store.reader)), log.roots[size], `root ${size}`);
  for (const { index, size, proof } of log.inclusion) {
    assert.deepEqual((await inclusionProof(BigInt(index), BigInt(size), tree.store.reader)).map(toHex), proof, `leaf ${index} of ${size}`);
    verifyInclusion(leafHash(hex(log.leaves[index])), BigInt(index), BigInt(size), proof.map(hex), hex(log.roots[size]));
  }
  for (const { m, n, proof } of log.consistency) {
    assert.deepEqual((await consistencyProof(BigInt(m), BigInt(n), tree.store.reader)).map(toHex), proof, `${m} to ${n}`);
    verifyConsistency(BigInt(m), BigInt(n), hex(log.roots[m]), hex(log.roots[n]), proof.map(hex));
  }
  const expectedTiles = [...treeTiles(BigInt(log.leaves.length))].map(tilePath);
  assert.deepEqual(log.tiles.map((tile: { path: string }) => tile.path), expectedTiles);
  for (const { path, hex: bytes } of log.tiles) {
    const parsed = parseTilePath(path);
    assert.equal(parsed.kind, "tile");
    if (parsed.kind === "tile") assert.equal(toHex(tree.store.get(parsed.tile.level, parsed.tile.index)!.subarray(0, parsed.tile.width * 32)), bytes, path);
  }
  for (const { path, hex: bytes } of log.entry_bundles) {
    const parsed = parseTilePath(path);
    assert.equal(parsed.kind, "entries");
    if (parsed.kind === "entries") {
      const start = Number(parsed.bundle.index) * 256;
      assert.equal(toHex(encodeEntryBundle(log.leaves.slice(start, start + parsed.bundle.width).map(hex))), bytes, path);
    }
  }
  assert.equal(toHex(rightEdgeRoot(decodeRightEdge(hex(log.right_edge)))), log.roots[log.leaves.length]);
  for (const { size, note } of log.checkpoints) {
    assert.equal(signCheckpoint({ origin: log.origin, size: BigInt(size), rootHash: await tree.root(BigInt(size)), extensions: [] }, [signer]), note);
    assert.equal(openCheckpoint(note, [logKey], { origin: log.origin }).checkpoint.size, BigInt(size));
  }
});

test("the receipt, the cosignature and their keys", () => {
  const { receipt, cosignature } = vectors;
  const witnessKey = parseVerifierKey(receipt.witness_key);
  const verified = verifyTlogProof(receipt.proof, hex(receipt.leaf), { logKey, witnesses: { keys: [witnessKey], threshold: 1 } });
  assert.equal(verified.index, BigInt(receipt.seq) - 1n);
  assert.equal(verified.cosignatures[0]!.timestamp, BigInt(cosignature.timestamp));
  const cosigner = createCosigner(cosignature.witness_name, ed25519PrivateKeyFromSeed(hex(cosignature.witness_key_seed)));
  assert.equal(formatVerifierKey(cosigner.key), cosignature.verifier_key);
  const checkpointText = verifyNote(cosignature.note, [logKey]).text;
  assert.equal(new TextDecoder().decode(cosignatureMessage(checkpointText, BigInt(cosignature.timestamp))), cosignature.signed_message);
  const logOnly = signCheckpoint(openCheckpoint(cosignature.note, [logKey]).checkpoint, [signer]);
  assert.equal(addNoteSignatures(logOnly, [cosignatureSigner(cosigner, BigInt(cosignature.timestamp))]), cosignature.note);
});

test("every fork-evidence bundle gets its recorded verdict", () => {
  assert.ok(vectors.fork_evidence.length >= 7);
  for (const vector of vectors.fork_evidence) {
    const verdict = verifyForkEvidence(vector.bundle, parseVerifierKey(vector.verifier_key));
    assert.equal(verdict.provesMisbehaviour, vector.proves_misbehaviour, vector.name);
    if (verdict.provesMisbehaviour) assert.equal(verdict.kind, vector.kind, vector.name);
  }
});
