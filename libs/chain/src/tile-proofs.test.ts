import assert from "node:assert/strict";
import { test } from "node:test";
import { fromHex, toHex } from "./bytes.js";
import { HASH_SIZE, emptyRoot, leafHash } from "./merkle-hash.js";
import { verifyConsistency, verifyInclusion } from "./merkle-proof.js";
import { createMemoryTileStore, type MemoryTileStore } from "./memory-tile-store.js";
import { createReferenceMemo, referenceConsistencyProof, referenceInclusionProof, rootOfLeafHashes } from "./merkle-reference.js";
import { REFERENCE_CONSISTENCY_PROOFS, REFERENCE_INCLUSION_PROOFS, REFERENCE_LEAVES, REFERENCE_ROOTS } from "./rfc6962-vectors.js";
import { emptyRightEdge } from "./right-edge.js";
import { appendLeaves } from "./tile-append.js";
import { consistencyProof, inclusionProof, treeRoot } from "./tile-proofs.js";
import type { SubtreeCache, TileReader } from "./tile-reader.js";
import { tileWidthAt } from "./tiles.js";

function storeOf(leafHashes: readonly Uint8Array[]): MemoryTileStore {
  const store = createMemoryTileStore();
  store.applyUpdates(appendLeaves(emptyRightEdge(), leafHashes).updates);
  return store;
}

/**
 * A reader over a store holding a bigger tree that answers with exactly the
 * width asked, after checking that the tile asked for is one the tree of
 * `size` leaves has at that width (what the tile API serves for a checkpoint
 * of that size).
 */
function exactReader(store: MemoryTileStore, size: bigint): TileReader {
  return async (tiles) => {
    for (const tile of tiles) assert.equal(tile.width, tileWidthAt(tile.level, tile.index, size), `tile ${tile.level}/${tile.index} at size ${size}`);
    const stored = await store.reader(tiles);
    return stored.map((bytes, i) => bytes.subarray(0, tiles[i]!.width * HASH_SIZE));
  };
}

test("roots and proofs from tiles match the published RFC 6962 vectors", async () => {
  const store = storeOf(REFERENCE_LEAVES.map((leaf) => leafHash(fromHex(leaf)!)));
  for (let size = 0; size <= 8; size++) assert.equal(toHex(await treeRoot(BigInt(size), store.reader)), REFERENCE_ROOTS[size]);
  for (const vector of REFERENCE_INCLUSION_PROOFS) {
    assert.deepEqual((await inclusionProof(BigInt(vector.index), BigInt(vector.size), store.reader)).map(toHex), vector.proof);
  }
  for (const vector of REFERENCE_CONSISTENCY_PROOFS) {
    assert.deepEqual((await consistencyProof(BigInt(vector.m), BigInt(vector.n), store.reader)).map(toHex), vector.proof);
  }
});

const smallLeaves = Array.from({ length: 300 }, (_, i) => leafHash(new Uint8Array([i >> 8, i & 0xff])));
const smallStore = storeOf(smallLeaves);
const smallMemo = createReferenceMemo();

/** Compares roots and proofs from tiles with merkle-reference.ts for sizes n and old sizes m selected by the filters. */
async function compareWithReference(sizes: (n: number) => boolean, cache?: SubtreeCache): Promise<number> {
  let checked = 0;
  for (let n = 0; n <= 300; n++) {
    if (!sizes(n)) continue;
    const size = BigInt(n);
    const reader = exactReader(smallStore, size);
    const tree = smallLeaves.slice(0, n);
    assert.equal(toHex(await treeRoot(size, reader, { cache })), toHex(rootOfLeafHashes(tree, smallMemo)), `root of ${n}`);
    for (let i = 0; i < n; i++) {
      const got = (await inclusionProof(BigInt(i), size, reader, { cache })).map(toHex);
      assert.deepEqual(got, referenceInclusionProof(BigInt(i), tree, smallMemo).map(toHex), `leaf ${i} of ${n}`);
      checked++;
    }
    for (let m = 0; m <= n; m++) {
      const got = (await consistencyProof(BigInt(m), size, reader, { cache })).map(toHex);
      assert.deepEqual(got, referenceConsistencyProof(BigInt(m), tree, smallMemo).map(toHex), `${m} to ${n}`);
      checked++;
    }
  }
  return checked;
}

// Every pair of sizes up to 300 would take a minute if each proof hashed its
// subtrees from the tiles again; with a cache each subtree is computed from
// its tile (and so checked) once, and every proof's assembly is still checked.
test("for every size up to 300: the root, every inclusion proof and every consistency proof equal the brute-force tree's", async () => {
  assert.equal(await compareWithReference(() => true, new Map()), 45_150 + 45_451);
});

test("without a cache too, for the sizes around tile boundaries", async () => {
  const sizes = new Set([0, 1, 2, 3, 7, 8, 9, 127, 128, 129, 255, 256, 257, 300]);
  assert.ok((await compareWithReference((n) => sizes.has(n))) > 2000);
});

test("in a tree of 70,000 leaves (three tile levels) proofs from tiles verify and need one read of a few tiles", async () => {
  const leafHashes = Array.from({ length: 70_000 }, (_, i) => leafHash(new TextEncoder().encode(String(i))));
  const store = storeOf(leafHashes);
  const memo = createReferenceMemo();
  const sizes = [1n, 255n, 256n, 257n, 511n, 4095n, 65_535n, 65_536n, 65_537n, 69_999n, 70_000n];
  for (const size of sizes) {
    const root = rootOfLeafHashes(leafHashes.slice(0, Number(size)), memo);
    const reader = exactReader(store, size);
    assert.equal(toHex(await treeRoot(size, reader)), toHex(root), `root of ${size}`);
    for (const index of [0n, size / 3n, size / 2n, size - 2n, size - 1n].filter((i) => i >= 0n)) {
      const before = store.calls.length;
      const proof = await inclusionProof(index, size, reader);
      assert.equal(store.calls.length, before + (size === 1n ? 0 : 1), "one read");
      assert.ok(store.calls.at(-1)!.length <= 6, `${store.calls.at(-1)!.length} tiles for leaf ${index} of ${size}`);
      verifyInclusion(leafHashes[Number(index)]!, index, size, proof, root);
    }
    for (const old of [1n, 2n, 3n, 256n, 1000n, 65_536n, 65_537n].filter((m) => m <= size)) {
      const oldRoot = rootOfLeafHashes(leafHashes.slice(0, Number(old)), memo);
      const proof = await consistencyProof(old, size, reader);
      assert.ok(store.calls.at(-1)!.length <= 8, `${store.calls.at(-1)!.length} tiles for ${old} to ${size}`);
      verifyConsistency(old, size, oldRoot, root, proof);
    }
  }
});

test("refusals: index past the size, old size above the new, and tiles the store lacks or cuts short", async () => {
  const store = storeOf([leafHash(new Uint8Array([1])), leafHash(new Uint8Array([2]))]);
  await assert.rejects(inclusionProof(2n, 2n, store.reader), { name: "ProofError", reason: "out-of-range" });
  await assert.rejects(inclusionProof(0n, 0n, store.reader), { name: "ProofError", reason: "out-of-range" });
  await assert.rejects(consistencyProof(3n, 2n, store.reader), { name: "ProofError", reason: "out-of-range" });
  await assert.rejects(treeRoot(1n << 63n, store.reader), { name: "ProofError", reason: "out-of-range" });
  await assert.rejects(treeRoot(3n, store.reader), { name: "TileError", reason: "bad-tile" });
  await assert.rejects(treeRoot(2n, async () => [new Uint8Array(32)]), { name: "TileError", message: /holds 1 hashes; 2 are needed/ });
  await assert.rejects(treeRoot(2n, async () => [new Uint8Array(33 * 2)]), { name: "TileError", message: /whole number/ });
  await assert.rejects(treeRoot(2n, async () => []), { name: "TileError", message: /returned 0 tiles for 1/ });
  assert.equal(toHex(await treeRoot(0n, async () => assert.fail("no read for the empty tree"))), toHex(emptyRoot()));
  assert.deepEqual(await consistencyProof(0n, 2n, async () => assert.fail("no read")), []);
});
