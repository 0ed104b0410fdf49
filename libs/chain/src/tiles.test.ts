import assert from "node:assert/strict";
import { test } from "node:test";
import { MAX_TREE_SIZE } from "./merkle-hash.js";
import { TILE_WIDTH, encodeTileIndex, entryBundlePath, parseTilePath, partialTiles, tilePath, tileWidthAt, treeTiles } from "./tiles.js";

test("tile indexes are spelled in 3-digit groups as tlog-tiles shows", () => {
  assert.equal(encodeTileIndex(1234067n), "x001/x234/067");
  assert.equal(encodeTileIndex(0n), "000");
  assert.equal(encodeTileIndex(999n), "999");
  assert.equal(encodeTileIndex(1000n), "x001/000");
  assert.throws(() => encodeTileIndex(-1n), { name: "TileError" });
});

test("tile and entry-bundle paths round-trip", () => {
  const cases = [
    [{ level: 0, index: 1234067n, width: 256 }, "tile/0/x001/x234/067"],
    [{ level: 2, index: 5n, width: 17 }, "tile/2/005.p/17"],
    [{ level: 7, index: 0n, width: 127 }, "tile/7/000.p/127"],
  ] as const;
  for (const [tile, path] of cases) {
    assert.equal(tilePath(tile), path);
    assert.deepEqual(parseTilePath(path), { kind: "tile", tile });
  }
  assert.equal(entryBundlePath({ index: 1000n, width: 255 }), "tile/entries/x001/000.p/255");
  assert.deepEqual(parseTilePath("tile/entries/x001/000.p/255"), { kind: "entries", bundle: { index: 1000n, width: 255 } });
  assert.deepEqual(parseTilePath("tile/entries/000"), { kind: "entries", bundle: { index: 0n, width: 256 } });
});

test("every malformed tile path is refused", () => {
  const bad = [
    "", "tile/", "tile/0", "tile/0/", "/tile/0/000", "tile/0/000/", "tile//000",
    "tile/00/000", "tile/01/000", "tile/64/000", "tile/99/000", "tile/-1/000", "tile/+1/000", "tile/a/000",
    "tile/0/0", "tile/0/00", "tile/0/0000", "tile/0/x1/000", "tile/0/001/000", "tile/0/x001/x000", "tile/0/x001",
    "tile/0/X001/000", "tile/0/x000/001", "tile/0/x000/x001/000",
    "tile/0/000.p/0", "tile/0/000.p/00", "tile/0/000.p/01", "tile/0/000.p/256", "tile/0/000.p/1000", "tile/0/000.p/", "tile/0/000.p",
    "tile/0/000.p/1/", "tile/0/000.P/1", "tile/0/000p/1", "tile/0/000.p/1.p/2",
    "tile/entry/000", "tile/entries/", "tile/entries/00", "tile/entries/000.p/0",
    "tiles/0/000", "tile/0/000 ", " tile/0/000", "tile/0/000\n", "tile/0/١٢٣",
    // Tiles that start beyond any int64 tree.
    "tile/8/000.p/1", "tile/7/000", "tile/7/000.p/128", "tile/7/001.p/1", `tile/0/${encodeTileIndex(1n << 55n)}.p/1`, `tile/0/${"x123/".repeat(40)}123`,
  ];
  for (const path of bad) assert.throws(() => parseTilePath(path), { name: "TileError", reason: "bad-path" }, JSON.stringify(path));
  assert.doesNotThrow(() => parseTilePath(`tile/0/${encodeTileIndex((1n << 55n) - 2n)}`));
  assert.doesNotThrow(() => parseTilePath(`tile/0/${encodeTileIndex((1n << 55n) - 1n)}.p/255`));
  assert.doesNotThrow(() => parseTilePath("tile/7/000.p/127"));
  assert.throws(() => tilePath({ level: 0, index: 0n, width: 0 }), { name: "TileError", reason: "out-of-range" });
  assert.throws(() => tilePath({ level: 64, index: 0n, width: 1 }), { name: "TileError" });
});

test("a tree of 70,000 leaves has the tiles tlog-tiles lists", () => {
  const tiles = [...treeTiles(70_000n)];
  const summary = (level: number) => tiles.filter((tile) => tile.level === level).map((tile) => tile.width);
  assert.equal(summary(0).length, 274);
  assert.deepEqual(summary(0).slice(-2), [256, 112]);
  assert.ok(summary(0).slice(0, 273).every((width) => width === TILE_WIDTH));
  assert.deepEqual(summary(1), [256, 17]);
  assert.deepEqual(summary(2), [1]);
  assert.equal(tiles.length, 277);
  assert.deepEqual(partialTiles(70_000n), [
    { level: 0, index: 273n, width: 112 },
    { level: 1, index: 1n, width: 17 },
    { level: 2, index: 0n, width: 1 },
  ]);
  // "a tree of size 256 will be represented by a full level 0 tile and a partial level 1 tile of width 1"
  assert.deepEqual([...treeTiles(256n)], [{ level: 0, index: 0n, width: 256 }, { level: 1, index: 0n, width: 1 }]);
  assert.deepEqual([...treeTiles(0n)], []);
});

test("tile widths at a size", () => {
  assert.equal(tileWidthAt(0, 273n, 70_000n), 112);
  assert.equal(tileWidthAt(0, 272n, 70_000n), 256);
  assert.equal(tileWidthAt(0, 274n, 70_000n), 0);
  assert.equal(tileWidthAt(2, 0n, 70_000n), 1);
  assert.equal(tileWidthAt(7, 0n, MAX_TREE_SIZE), 127);
  assert.equal(partialTiles(MAX_TREE_SIZE).length, 8);
});
