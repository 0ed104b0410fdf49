// Reading node hashes out of tiles: the one place that maps a subtree of the
// tree to the tile that holds it, and that fetches every tile a computation
// needs in ONE call of the caller's reader (one SQL round trip).
//
// A complete subtree of height h = 8·L + r (r = 0…7) is either a hash stored
// in a level-L tile (r = 0) or the root of 2^r consecutive hashes of one
// level-L tile (r > 0), which is computed here: interior levels that are not
// multiples of 8 are never stored.
import { HASH_SIZE, checkTreeSize, nodeHash } from "./merkle-hash.js";
import type { RightEdge } from "./right-edge.js";
import { TileError } from "./tlog-error.js";
import { TILE_HEIGHT, TILE_WIDTH, tileWidthAt, type TileId } from "./tiles.js";

/**
 * Reads several tiles in one call, e.g. one `SELECT … WHERE (level, index) IN (…)`.
 * Returns each tile's bytes, in the order asked. A stored tile may be wider
 * than asked (tile contents are prefix-stable: the extra hashes are ignored);
 * a tile narrower than asked, or missing, is an error.
 */
export type TileReader = (tiles: readonly TileId[]) => Promise<readonly Uint8Array[]>;

/** A complete subtree: the 2^height leaves from index·2^height. */
export interface SubtreeId {
  readonly height: number;
  readonly index: bigint;
}

/** The decomposition of leaves [start, end) into complete subtrees, largest first (start must be aligned as RFC 9162's splits align it). */
export function rangeSubtrees(start: bigint, end: bigint): SubtreeId[] {
  const subtrees: SubtreeId[] = [];
  let position = start;
  for (let height = (end - start).toString(2).length - 1; height >= 0; height--) {
    const span = 1n << BigInt(height);
    if (((end - start) & span) === 0n) continue;
    if (position % span !== 0n) throw new RangeError(`leaves ${start}–${end} do not split into aligned subtrees`);
    subtrees.push({ height, index: position / span });
    position += span;
  }
  return subtrees;
}

/** MTH of a range from its rangeSubtrees' hashes: folded from the right. */
export function foldSubtrees(hashes: readonly Uint8Array[]): Uint8Array {
  let root = hashes[hashes.length - 1]!;
  for (let i = hashes.length - 2; i >= 0; i--) root = nodeHash(hashes[i]!, root);
  return root;
}

interface TileSlot {
  readonly tile: TileId;
  /** The first hash of the subtree within the tile. */
  readonly offset: number;
  /** 2^r hashes. */
  readonly count: number;
}

function slotOf(subtree: SubtreeId, size: bigint): TileSlot {
  const level = Math.floor(subtree.height / TILE_HEIGHT);
  const r = subtree.height - level * TILE_HEIGHT;
  const first = subtree.index << BigInt(r);
  const index = first / BigInt(TILE_WIDTH);
  const offset = Number(first % BigInt(TILE_WIDTH));
  const count = 1 << r;
  const width = tileWidthAt(level, index, size);
  if (offset + count > width) {
    throw new TileError("out-of-range", `subtree ${subtree.height}/${subtree.index} is not complete in a tree of ${size} leaves`);
  }
  return { tile: { level, index, width }, offset, count };
}

const tileKey = (tile: TileId): string => `${tile.level}/${tile.index}`;

/** Stored tiles by `level/index`, each checked to hold at least the width asked. */
export type TileBytes = ReadonlyMap<string, Uint8Array>;

/** Calls `reader` once for the tiles (deduplicated) and checks what it returns. */
export async function fetchTiles(tiles: readonly TileId[], reader: TileReader): Promise<TileBytes> {
  const unique = new Map<string, TileId>();
  for (const tile of tiles) unique.set(tileKey(tile), tile);
  const fetched = new Map<string, Uint8Array>();
  if (unique.size === 0) return fetched;
  const asked = [...unique.values()];
  const answers = await reader(asked);
  if (answers.length !== asked.length) throw new TileError("bad-tile", `the tile reader returned ${answers.length} tiles for ${asked.length} asked`);
  asked.forEach((tile, i) => {
    const bytes = answers[i];
    if (!(bytes instanceof Uint8Array)) throw new TileError("bad-tile", `the tile reader returned no bytes for tile ${tileKey(tile)}`);
    if (bytes.length % HASH_SIZE !== 0 || bytes.length > TILE_WIDTH * HASH_SIZE) {
      throw new TileError("bad-tile", `tile ${tileKey(tile)} has ${bytes.length} bytes, not a whole number of hashes up to ${TILE_WIDTH}`);
    }
    if (bytes.length < tile.width * HASH_SIZE) {
      throw new TileError("bad-tile", `tile ${tileKey(tile)} holds ${bytes.length / HASH_SIZE} hashes; ${tile.width} are needed`);
    }
    fetched.set(tileKey(tile), bytes);
  });
  return fetched;
}

/** The stored bytes of a tile fetched by fetchTiles, cut to its first `width` hashes. */
export function tilePrefix(fetched: TileBytes, tile: TileId, width: number): Uint8Array {
  const bytes = fetched.get(tileKey(tile));
  if (bytes === undefined) throw new TileError("bad-tile", `tile ${tileKey(tile)} was not fetched`);
  return bytes.subarray(0, width * HASH_SIZE);
}

function subtreeHash(slot: TileSlot, fetched: TileBytes): Uint8Array {
  const bytes = tilePrefix(fetched, slot.tile, slot.offset + slot.count);
  let level: Uint8Array[] = [];
  for (let i = 0; i < slot.count; i++) level.push(bytes.subarray((slot.offset + i) * HASH_SIZE, (slot.offset + i + 1) * HASH_SIZE));
  while (level.length > 1) {
    const parents: Uint8Array[] = [];
    for (let i = 0; i < level.length; i += 2) parents.push(nodeHash(level[i]!, level[i + 1]!));
    level = parents;
  }
  return level[0]!.slice();
}

/**
 * Remembered hashes of complete subtrees of ONE log, keyed `height/index`: a
 * Map, or an LRU with the same get/set. In an append-only tree a complete
 * subtree's hash never changes, so entries stay valid as the log grows; with
 * a cache, repeated proofs read fewer tiles and hash less.
 */
export interface SubtreeCache {
  get(key: string): Uint8Array | undefined;
  set(key: string, hash: Uint8Array): void;
}

/**
 * The hashes of complete subtrees of a tree of `size` leaves, from one reader
 * call (none when the cache knows them all); also returns the fetched tiles
 * (tile-append.ts rewrites them).
 */
export async function readSubtrees(
  size: bigint,
  subtrees: readonly SubtreeId[],
  reader: TileReader,
  cache?: SubtreeCache,
): Promise<{ hashes: Uint8Array[]; fetched: TileBytes }> {
  const keys = subtrees.map((subtree) => `${subtree.height}/${subtree.index}`);
  const known = keys.map((key) => cache?.get(key));
  const slots = subtrees.map((subtree, i) => (known[i] === undefined ? slotOf(subtree, size) : undefined));
  const fetched = await fetchTiles(slots.flatMap((slot) => (slot ? [slot.tile] : [])), reader);
  const hashes = slots.map((slot, i) => {
    if (slot === undefined) return known[i]!;
    const hash = subtreeHash(slot, fetched);
    cache?.set(keys[i]!, hash);
    return hash;
  });
  return { hashes, fetched };
}

/** The hashes of non-empty leaf ranges [start, end), as RFC 9162's recursion produces them, from one reader call. */
export async function readRanges(
  size: bigint,
  ranges: readonly (readonly [bigint, bigint])[],
  reader: TileReader,
  cache?: SubtreeCache,
): Promise<Uint8Array[]> {
  const perRange = ranges.map(([start, end]) => rangeSubtrees(start, end));
  const { hashes } = await readSubtrees(size, perRange.flat(), reader, cache);
  let next = 0;
  return perRange.map((subtrees) => foldSubtrees(hashes.slice(next, (next += subtrees.length))));
}

/** The right edge of the tree of `size` leaves, from its partial tiles (one reader call; none for size 0). */
export async function rightEdgeFromTiles(size: bigint, reader: TileReader, cache?: SubtreeCache): Promise<RightEdge> {
  checkTreeSize(size, "tree size");
  const { hashes } = await readSubtrees(size, rangeSubtrees(0n, size), reader, cache);
  return { size, hashes };
}
