import assert from "node:assert/strict";
import { test } from "node:test";
import { toHex, utf8 } from "./bytes.js";
import { MAX_TREE_SIZE, checkTreeSize, emptyRoot, isPowerOfTwo, leafHash, nodeHash, splitPoint } from "./merkle-hash.js";

// Expected values from transparency-dev/merkle rfc6962/rfc6962_test.go (each is a sha256sum of the given bytes).
test("hashes match the published RFC 6962 hasher vectors", () => {
  assert.equal(toHex(emptyRoot()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert.equal(toHex(leafHash(new Uint8Array())), "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
  assert.equal(toHex(leafHash(utf8("L123456"))), "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56");
});

test("an empty leaf is not the empty tree, and node hashes depend on the order of the children", () => {
  assert.notEqual(toHex(leafHash(new Uint8Array())), toHex(emptyRoot()));
  const a = leafHash(utf8("Hello"));
  const b = leafHash(utf8("World"));
  assert.notEqual(toHex(nodeHash(a, b)), toHex(nodeHash(b, a)));
  // A node is not the leaf of its children's concatenation (the 0x00/0x01 prefixes).
  assert.notEqual(toHex(nodeHash(a, b)), toHex(leafHash(new Uint8Array([...a, ...b]))));
});

test("emptyRoot returns a copy that callers may change", () => {
  emptyRoot().fill(0);
  assert.equal(toHex(emptyRoot()).slice(0, 8), "e3b0c442");
});

test("node children must be 32-byte hashes", () => {
  assert.throws(() => nodeHash(new Uint8Array(31), new Uint8Array(32)), { name: "ProofError", reason: "malformed" });
});

test("split points and powers of two", () => {
  assert.deepEqual([2n, 3n, 4n, 5n, 8n, 9n].map(splitPoint), [1n, 2n, 2n, 4n, 4n, 8n]);
  assert.equal(splitPoint(MAX_TREE_SIZE), 1n << 62n);
  assert.deepEqual([0n, 1n, 2n, 3n, 4n, 6n, 1n << 62n].map(isPowerOfTwo), [false, true, true, false, true, false, true]);
});

test("tree sizes outside int64 are refused by name", () => {
  assert.doesNotThrow(() => checkTreeSize(MAX_TREE_SIZE, "tree size"));
  assert.throws(() => checkTreeSize(MAX_TREE_SIZE + 1n, "tree size"), { name: "ProofError", reason: "out-of-range", message: /tree size/ });
  assert.throws(() => checkTreeSize(-1n, "leaf index"), { name: "ProofError", message: /leaf index/ });
});
