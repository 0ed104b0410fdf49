import assert from "node:assert/strict";
import { test } from "node:test";
import { fromHex, toHex } from "./bytes.js";
import { emptyRoot, leafHash } from "./merkle-hash.js";
import { consistencyProofRoots, rootFromInclusionProof, verifyConsistency, verifyInclusion } from "./merkle-proof.js";
import { referenceConsistencyProof, referenceInclusionProof, rootOfLeafHashes, rootOfLeaves } from "./merkle-reference.js";
import { REFERENCE_CONSISTENCY_PROOFS, REFERENCE_INCLUSION_PROOFS, REFERENCE_LEAVES, REFERENCE_ROOTS } from "./rfc6962-vectors.js";

const hex = (text: string): Uint8Array => fromHex(text)!;
const leaves = REFERENCE_LEAVES.map(hex);
const leafHashes = leaves.map(leafHash);
const root = (size: number): Uint8Array => hex(REFERENCE_ROOTS[size]!);

/** Copies of `proof` with one bit flipped, one hash at a time. */
function flipped(proof: readonly Uint8Array[]): Uint8Array[][] {
  return proof.map((_, i) => proof.map((hash, j) => (j === i ? hash.map((byte, k) => (k === 7 ? byte ^ 0x10 : byte)) : hash)));
}

test("the reference tree has the published roots for sizes 0 to 8", () => {
  for (let size = 0; size <= 8; size++) assert.equal(toHex(rootOfLeaves(leaves.slice(0, size))), REFERENCE_ROOTS[size], `size ${size}`);
});

test("the published inclusion proofs verify, are what PATH produces, and fail when changed", () => {
  for (const vector of REFERENCE_INCLUSION_PROOFS) {
    const proof = vector.proof.map(hex);
    const index = BigInt(vector.index);
    const size = BigInt(vector.size);
    const name = `leaf ${vector.index} of ${vector.size}`;
    assert.deepEqual(referenceInclusionProof(index, leafHashes.slice(0, vector.size)).map(toHex), vector.proof, name);
    verifyInclusion(leafHashes[vector.index]!, index, size, proof, root(vector.size));
    for (const bad of flipped(proof)) {
      assert.throws(() => verifyInclusion(leafHashes[vector.index]!, index, size, bad, root(vector.size)), { name: "ProofError", reason: "mismatch" }, name);
    }
    assert.throws(() => verifyInclusion(leafHashes[(vector.index + 1) % 8]!, index, size, proof, root(vector.size)), { reason: "mismatch" });
    assert.throws(() => verifyInclusion(leafHashes[vector.index]!, index, size, proof, root(vector.size - 1)), { reason: "mismatch" });
    if (proof.length > 0) {
      assert.throws(() => verifyInclusion(leafHashes[vector.index]!, index, size, proof.slice(1), root(vector.size)), { name: "ProofError" }, `${name} truncated`);
      assert.throws(() => verifyInclusion(leafHashes[vector.index]!, index, size, proof.slice(0, -1), root(vector.size)), { reason: "malformed" }, `${name} truncated`);
    }
    assert.throws(() => verifyInclusion(leafHashes[vector.index]!, index, size, [...proof, emptyRoot()], root(vector.size)), { reason: "malformed" }, `${name} extended`);
  }
});

test("the published consistency proofs verify, are what PROOF produces, and fail when changed", () => {
  for (const vector of REFERENCE_CONSISTENCY_PROOFS) {
    const proof = vector.proof.map(hex);
    const m = BigInt(vector.m);
    const n = BigInt(vector.n);
    const name = `${vector.m} to ${vector.n}`;
    assert.deepEqual(referenceConsistencyProof(m, leafHashes.slice(0, vector.n)).map(toHex), vector.proof, name);
    verifyConsistency(m, n, root(vector.m), root(vector.n), proof);
    for (const bad of flipped(proof)) assert.throws(() => verifyConsistency(m, n, root(vector.m), root(vector.n), bad), { name: "ProofError" }, name);
    if (vector.m !== vector.n) {
      // Swapped roots, another old root, and a proof cut short or extended.
      assert.throws(() => verifyConsistency(m, n, root(vector.n), root(vector.m), proof), { reason: "mismatch" }, name);
      assert.throws(() => verifyConsistency(m, n, root(vector.m - 1), root(vector.n), proof), { reason: "mismatch" }, name);
      assert.throws(() => verifyConsistency(m, n, root(vector.m), root(vector.n), proof.slice(0, -1)), { name: "ProofError" }, name);
      assert.throws(() => verifyConsistency(m, n, root(vector.m), root(vector.n), [...proof, emptyRoot()]), { reason: "malformed" }, name);
    }
  }
});

test("sizes and indexes no proof can have are refused by name", () => {
  const one = [leafHashes[0]!];
  assert.throws(() => verifyInclusion(leafHashes[0]!, 8n, 8n, one, root(8)), { name: "ProofError", reason: "out-of-range", message: /not below the tree size/ });
  assert.throws(() => verifyInclusion(leafHashes[0]!, 0n, 0n, [], emptyRoot()), { reason: "out-of-range" });
  assert.throws(() => verifyInclusion(leafHashes[0]!, -1n, 8n, one, root(8)), { reason: "out-of-range" });
  assert.throws(() => verifyInclusion(leafHashes[0]!, 0n, 1n << 63n, one, root(8)), { reason: "out-of-range", message: /2\^63-1/ });
  assert.throws(() => verifyInclusion(leafHashes[0]!, 0n, 8n, [new Uint8Array(31)], root(8)), { reason: "malformed", message: /hash 0/ });
  assert.throws(() => verifyConsistency(5n, 4n, root(5), root(4), []), { reason: "out-of-range", message: /exceeds/ });
  assert.throws(() => verifyConsistency(3n, 3n, root(3), root(3), [root(1)]), { reason: "malformed", message: /must be empty/ });
  assert.throws(() => verifyConsistency(3n, 3n, root(3), root(4), []), { reason: "mismatch", message: /two roots/ });
  assert.throws(() => verifyConsistency(0n, 3n, root(1), root(3), []), { reason: "mismatch", message: /empty tree/ });
  assert.throws(() => verifyConsistency(0n, 3n, emptyRoot(), root(3), [root(1)]), { reason: "malformed" });
  assert.throws(() => verifyConsistency(3n, 5n, root(3), root(5), []), { reason: "malformed", message: /empty/ });
  assert.throws(() => consistencyProofRoots(4n, 4n, [root(4)]), { reason: "out-of-range" });
  verifyConsistency(0n, 3n, emptyRoot(), root(3), []);
  verifyConsistency(0n, 0n, emptyRoot(), emptyRoot(), []);
});

test("a huge or wrong-length proof fails without hashing forever", () => {
  const long = Array.from({ length: 10_000 }, () => leafHashes[1]!);
  assert.throws(() => verifyInclusion(leafHashes[0]!, 0n, 8n, long, root(8)), { reason: "malformed", message: /longer/ });
  assert.throws(() => verifyConsistency(6n, 8n, root(6), root(8), long), { reason: "malformed", message: /longer/ });
});

test("consistencyProofRoots derives both roots, seeded with the old root when m is a power of two", () => {
  const proof = REFERENCE_CONSISTENCY_PROOFS[2]!.proof.map(hex); // 6 → 8
  const roots = consistencyProofRoots(6n, 8n, proof);
  assert.equal(toHex(roots.oldRoot), REFERENCE_ROOTS[6]);
  assert.equal(toHex(roots.newRoot), REFERENCE_ROOTS[8]);
  const fromTwo = consistencyProofRoots(2n, 5n, [root(2), ...REFERENCE_CONSISTENCY_PROOFS[3]!.proof.map(hex)]);
  assert.equal(toHex(fromTwo.oldRoot), REFERENCE_ROOTS[2]);
  assert.equal(toHex(fromTwo.newRoot), REFERENCE_ROOTS[5]);
});

test("rootFromInclusionProof gives the root a verifier compares", () => {
  const vector = REFERENCE_INCLUSION_PROOFS[2]!;
  assert.equal(toHex(rootFromInclusionProof(leafHashes[5]!, 5n, 8n, vector.proof.map(hex))), REFERENCE_ROOTS[8]);
  assert.equal(toHex(rootOfLeafHashes([])), REFERENCE_ROOTS[0]);
});
