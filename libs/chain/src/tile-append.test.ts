import assert from "node:assert/strict";
import { test } from "node:test";
import { toHex } from "./bytes.js";
import { HASH_SIZE, MAX_TREE_SIZE, leafHash } from "./merkle-hash.js";
import { createMemoryTileStore } from "./memory-tile-store.js";
import { createReferenceMemo, rootOfLeafHashes } from "./merkle-reference.js";
import { emptyRightEdge, rightEdgesEqual } from "./right-edge.js";
import { appendLeaves, appendLeavesToTiles } from "./tile-append.js";
import { rightEdgeFromTiles } from "./tile-reader.js";
import { treeTiles } from "./tiles.js";

const leaves = Array.from({ length: 70_000 }, (_, i) => leafHash(new TextEncoder().encode(`leaf ${i}`)));

/** Batch sizes that cross tile boundaries in every way: 1, 2, …, 300, then big ones. */
function batches(total: number): number[] {
  const sizes: number[] = [];
  let left = total;
  for (let next = 1; left > 0; next = next < 300 ? next + 1 : next * 3) {
    sizes.push(Math.min(next, left));
    left -= Math.min(next, left);
  }
  return sizes;
}

test("appends through the right edge and through the tiles write the same tiles and roots", async () => {
  const viaEdge = createMemoryTileStore();
  const viaTiles = createMemoryTileStore();
  const memo = createReferenceMemo();
  let edge = emptyRightEdge();
  let size = 0;
  for (const count of batches(leaves.length)) {
    const batch = leaves.slice(size, size + count);
    const byEdge = appendLeaves(edge, batch);
    viaEdge.applyUpdates(byEdge.updates);
    const before = viaTiles.calls.length;
    const byTiles = await appendLeavesToTiles(BigInt(size), batch, viaTiles.reader);
    assert.ok(viaTiles.calls.length - before <= 1, "one reader call per append");
    viaTiles.applyWrites(byTiles.writes);
    size += count;
    assert.equal(toHex(byEdge.root), toHex(byTiles.root), `size ${size}`);
    assert.ok(rightEdgesEqual(byEdge.edge, byTiles.edge));
    if (size <= 600 || count > 1000) assert.equal(toHex(byEdge.root), toHex(rootOfLeafHashes(leaves.slice(0, size), memo)), `size ${size}`);
    edge = byEdge.edge;
  }
  for (const tile of treeTiles(BigInt(leaves.length))) {
    const stored = viaEdge.get(tile.level, tile.index);
    assert.equal(stored?.length, tile.width * HASH_SIZE, `tile ${tile.level}/${tile.index}`);
    assert.equal(toHex(stored), toHex(viaTiles.get(tile.level, tile.index)!));
  }
  // Level 0 holds the leaf hashes; level 1 hash j is the root of leaves 256j…256j+255.
  assert.equal(toHex(viaEdge.get(0, 3n)!.subarray(0, 32)), toHex(leaves[768]!));
  assert.equal(toHex(viaEdge.get(1, 0n)!.subarray(32 * 5, 32 * 6)), toHex(rootOfLeafHashes(leaves.slice(256 * 5, 256 * 6))));
  assert.equal(toHex(viaEdge.get(2, 0n)!), toHex(rootOfLeafHashes(leaves.slice(0, 65_536))));
  assert.ok(rightEdgesEqual(await rightEdgeFromTiles(BigInt(leaves.length), viaEdge.reader), edge));
});

test("an append reports only what changed, each tile growing at its end", () => {
  const first = appendLeaves(emptyRightEdge(), leaves.slice(0, 255));
  assert.deepEqual(first.updates.map((u) => [u.tile, u.fromWidth]), [[{ level: 0, index: 0n, width: 255 }, 0]]);
  const second = appendLeaves(first.edge, leaves.slice(255, 258));
  assert.deepEqual(
    second.updates.map((u) => [u.tile, u.fromWidth, u.appended.length / HASH_SIZE]),
    [
      [{ level: 0, index: 0n, width: 256 }, 255, 1],
      [{ level: 0, index: 1n, width: 2 }, 0, 2],
      [{ level: 1, index: 0n, width: 1 }, 0, 1],
    ],
  );
  assert.deepEqual(appendLeaves(second.edge, []).updates, []);
});

test("a store refuses an update that does not continue the stored tile", () => {
  const store = createMemoryTileStore();
  const first = appendLeaves(emptyRightEdge(), leaves.slice(0, 3));
  store.applyUpdates(first.updates);
  assert.throws(() => store.applyUpdates(first.updates), { name: "TileError", message: /holds 3 hashes, the update expects 0/ });
});

test("bad input to an append is refused by name", async () => {
  assert.throws(() => appendLeaves(emptyRightEdge(), [new Uint8Array(31)]), { name: "ProofError", message: /leaf hash 0/ });
  assert.throws(() => appendLeaves({ size: 3n, hashes: [leaves[0]!] }, []), { name: "ProofError", message: /has 2 hashes/ });
  const full = { size: MAX_TREE_SIZE, hashes: Array.from({ length: 63 }, () => leaves[0]!) };
  assert.throws(() => appendLeaves(full, [leaves[0]!]), { name: "ProofError", reason: "out-of-range" });
  const store = createMemoryTileStore();
  await assert.rejects(appendLeavesToTiles(5n, [leaves[0]!], store.reader), { name: "TileError", message: /not stored/ });
  await assert.rejects(appendLeavesToTiles(-1n, [], store.reader), { name: "ProofError" });
});
