import assert from "node:assert/strict";
import { test } from "node:test";
import { fromHex, toHex } from "./bytes.js";
import { MAX_TREE_SIZE, leafHash } from "./merkle-hash.js";
import { decodeRightEdge, emptyRightEdge, encodeRightEdge, rightEdgeHeights, rightEdgeRoot, rightEdgesEqual } from "./right-edge.js";
import { appendLeaves } from "./tile-append.js";
import { REFERENCE_LEAVES, REFERENCE_RIGHT_EDGES, REFERENCE_ROOTS } from "./rfc6962-vectors.js";

test("the right edges of the reference trees are the published compact ranges, and fold to the roots", () => {
  let edge = emptyRightEdge();
  for (let size = 0; size <= 8; size++) {
    assert.deepEqual(edge.hashes.map(toHex), REFERENCE_RIGHT_EDGES[size], `size ${size}`);
    assert.equal(toHex(rightEdgeRoot(edge)), REFERENCE_ROOTS[size], `size ${size}`);
    if (size < 8) edge = appendLeaves(edge, [leafHash(fromHex(REFERENCE_LEAVES[size]!)!)]).edge;
  }
});

test("heights follow the binary decomposition of the size", () => {
  assert.deepEqual(rightEdgeHeights(0n), []);
  assert.deepEqual(rightEdgeHeights(13n), [3, 2, 0]);
  assert.equal(rightEdgeHeights(MAX_TREE_SIZE).length, 63);
});

test("an edge round-trips through its bytes, and bad bytes are refused", () => {
  const edge = appendLeaves(emptyRightEdge(), Array.from({ length: 13 }, (_, i) => leafHash(new Uint8Array([i])))).edge;
  const bytes = encodeRightEdge(edge);
  assert.equal(bytes.length, 8 + 3 * 32);
  assert.equal(toHex(bytes.subarray(0, 8)), "000000000000000d");
  assert.ok(rightEdgesEqual(decodeRightEdge(bytes), edge));
  assert.ok(rightEdgesEqual(decodeRightEdge(encodeRightEdge(emptyRightEdge())), emptyRightEdge()));
  assert.throws(() => decodeRightEdge(bytes.subarray(0, 8 + 64)), { name: "ProofError", message: /has 3 hashes/ });
  assert.throws(() => decodeRightEdge(bytes.subarray(0, 7)), { name: "ProofError", message: /8 \+ 32/ });
  assert.throws(() => decodeRightEdge(bytes.subarray(0, 50)), { name: "ProofError" });
  const huge = bytes.slice();
  huge[0] = 0x80;
  assert.throws(() => decodeRightEdge(huge), { name: "ProofError", reason: "out-of-range" });
  assert.throws(() => encodeRightEdge({ size: 2n, hashes: [] }), { name: "ProofError" });
});
