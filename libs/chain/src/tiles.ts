// C2SP tlog-tiles addressing: which tiles a tree has, and their paths.
//
// A tile at level L, index N holds up to 256 consecutive hashes of the tree
// at height 8·L: hash i of tile N at level L is MTH of the 256^L leaves from
// (N·256 + i)·256^L. A full tile has 256 hashes; the rightmost tile of a level
// is partial (1–255 hashes) when the tree size is not a multiple of 256^(L+1).
// Tile contents are prefix-stable: a wider version of a tile starts with the
// narrower one, so a stored wider tile serves any narrower width by slicing.
import { MAX_TREE_SIZE } from "./merkle-hash.js";
import { TileError } from "./tlog-error.js";

/** Tree levels per tile (tlog-tiles fixes it at 8). */
export const TILE_HEIGHT = 8;
/** Hashes in a full tile: 2^TILE_HEIGHT. */
export const TILE_WIDTH = 256;
/** The highest tile level the spec allows in a path. */
export const MAX_TILE_LEVEL = 63;

/** One hash tile: `tile/{level}/{N}[.p/{width}]`. */
export interface TileId {
  /** 0–63; level 0 holds leaf hashes. */
  readonly level: number;
  /** N: the tile's position within its level, from 0. */
  readonly index: bigint;
  /** Hashes in the tile: 256 for a full tile, 1–255 for a partial one. */
  readonly width: number;
}

/** One entry bundle: `tile/entries/{N}[.p/{width}]`, the leaves of level-0 tile N. */
export interface EntryBundleId {
  readonly index: bigint;
  /** Entries in the bundle: 256 when full, 1–255 when partial. */
  readonly width: number;
}

/** What a tile path names (parseTilePath). */
export type TilePath = { readonly kind: "tile"; readonly tile: TileId } | { readonly kind: "entries"; readonly bundle: EntryBundleId };

const LEVEL_SPAN = (level: number): bigint => 1n << BigInt(TILE_HEIGHT * level);

/** N as tlog-tiles spells it: 3-digit groups, all but the last prefixed with `x` (1234067 → `x001/x234/067`). */
export function encodeTileIndex(index: bigint): string {
  if (typeof index !== "bigint" || index < 0n) throw new TileError("out-of-range", `tile index must be a non-negative integer (got ${String(index)})`);
  const digits = index.toString();
  const groups: string[] = [];
  for (let end = digits.length; end > 0; end -= 3) groups.unshift(digits.slice(Math.max(0, end - 3), end).padStart(3, "0"));
  return groups.map((group, i) => (i < groups.length - 1 ? `x${group}` : group)).join("/");
}

function widthSuffix(width: number): string {
  checkWidth(width);
  return width === TILE_WIDTH ? "" : `.p/${width}`;
}

function checkWidth(width: number): void {
  if (!Number.isInteger(width) || width < 1 || width > TILE_WIDTH) throw new TileError("out-of-range", `tile width must be 1 to ${TILE_WIDTH} (got ${width})`);
}

/** `tile/{L}/{N}[.p/{W}]`, relative to the log's prefix. */
export function tilePath(tile: TileId): string {
  checkTile(tile);
  return `tile/${tile.level}/${encodeTileIndex(tile.index)}${widthSuffix(tile.width)}`;
}

/** `tile/entries/{N}[.p/{W}]`, relative to the log's prefix. */
export function entryBundlePath(bundle: EntryBundleId): string {
  checkTile({ level: 0, ...bundle });
  return `tile/entries/${encodeTileIndex(bundle.index)}${widthSuffix(bundle.width)}`;
}

function checkTile(tile: TileId): void {
  if (!Number.isInteger(tile.level) || tile.level < 0 || tile.level > MAX_TILE_LEVEL) {
    throw new TileError("out-of-range", `tile level must be 0 to ${MAX_TILE_LEVEL} (got ${tile.level})`);
  }
  checkWidth(tile.width);
  // The tile's last hash covers leaves up to (index·256 + width)·256^level: it must fit an int64 tree.
  if (typeof tile.index !== "bigint" || tile.index < 0n || (tile.index * BigInt(TILE_WIDTH) + BigInt(tile.width)) * LEVEL_SPAN(tile.level) > MAX_TREE_SIZE) {
    throw new TileError("out-of-range", `tile ${tile.level}/${String(tile.index)} of width ${tile.width} needs more than 2^63-1 leaves`);
  }
}

const MAX_TILE_PATH_LENGTH = 100;
const TILE_PATH = /^tile\/(entries|0|[1-9][0-9]?)\/((?:x[0-9]{3}\/)*[0-9]{3})(?:\.p\/([1-9][0-9]{0,2}))?$/;

/**
 * Parses `tile/{L}/{N}[.p/{W}]` or `tile/entries/{N}[.p/{W}]` (relative to the
 * log's prefix). Throws TileError for every form tlog-tiles rules out: a
 * level outside 0–63 or with a leading zero, index groups that are not three
 * digits or lack the `x` prefix, a width outside 1–255 or with a leading zero,
 * `.p/256`, and a non-canonical index with leading `x000` groups (so that one
 * tile has one path, and one cache key). Also refuses tiles that no tree of
 * at most 2^63-1 leaves has.
 */
export function parseTilePath(path: string): TilePath {
  // The longest valid path (level 63 is empty beyond index 0; level 0 indexes stay below 2^55) is far shorter.
  const match = path.length <= MAX_TILE_PATH_LENGTH ? TILE_PATH.exec(path) : null;
  if (!match) throw new TileError("bad-path", `not a tile path (tile/{level}/{N}[.p/{width}] or tile/entries/{N}[.p/{width}]): ${JSON.stringify(path.slice(0, 200))}`);
  const [, levelText, indexText, widthText] = match as unknown as [string, string, string, string | undefined];
  const level = levelText === "entries" ? 0 : Number(levelText);
  if (level > MAX_TILE_LEVEL) throw new TileError("bad-path", `tile level must be 0 to ${MAX_TILE_LEVEL} (got ${level})`);
  const index = BigInt(indexText.replaceAll("x", "").replaceAll("/", ""));
  if (encodeTileIndex(index) !== indexText) throw new TileError("bad-path", `tile index ${indexText} is not in canonical form (${encodeTileIndex(index)})`);
  const width = widthText === undefined ? TILE_WIDTH : Number(widthText);
  if (widthText !== undefined && width >= TILE_WIDTH) throw new TileError("bad-path", `a partial tile's width must be 1 to ${TILE_WIDTH - 1} (got ${width})`);
  const tile = { level, index, width };
  try {
    checkTile(tile);
  } catch (error) {
    throw new TileError("bad-path", (error as Error).message, { cause: error });
  }
  return levelText === "entries" ? { kind: "entries", bundle: { index, width } } : { kind: "tile", tile };
}

/** The width of tile `index` at `level` in a tree of `size` leaves: 256 when full, 0 when the tree does not have it. */
export function tileWidthAt(level: number, index: bigint, size: bigint): number {
  const hashesAtLevel = size / LEVEL_SPAN(level);
  const start = index * BigInt(TILE_WIDTH);
  if (hashesAtLevel <= start) return 0;
  const width = hashesAtLevel - start;
  return width >= BigInt(TILE_WIDTH) ? TILE_WIDTH : Number(width);
}

/**
 * The partial tiles of a tree of `size` leaves, lowest level first: at each
 * level, the rightmost tile when it has 1–255 hashes. These are the only
 * tiles an append changes in place, and together they hold the tree's right
 * edge (tile-append.ts).
 */
export function partialTiles(size: bigint): TileId[] {
  const tiles: TileId[] = [];
  for (let level = 0; LEVEL_SPAN(level) <= size; level++) {
    const hashes = size / LEVEL_SPAN(level);
    const width = Number(hashes % BigInt(TILE_WIDTH));
    if (width > 0) tiles.push({ level, index: hashes / BigInt(TILE_WIDTH), width });
  }
  return tiles;
}

/**
 * Every tile of a tree of `size` leaves, level by level, full tiles first
 * within a level; the example of tlog-tiles (size 70,000: 273 full and one
 * 112-wide tile at level 0, one full and one 17-wide tile at level 1, one
 * 1-wide tile at level 2) is its test. A generator, because a large tree
 * has millions of tiles.
 */
export function* treeTiles(size: bigint): Generator<TileId> {
  for (let level = 0; LEVEL_SPAN(level) <= size; level++) {
    const hashes = size / LEVEL_SPAN(level);
    const full = hashes / BigInt(TILE_WIDTH);
    for (let index = 0n; index < full; index++) yield { level, index, width: TILE_WIDTH };
    const width = Number(hashes % BigInt(TILE_WIDTH));
    if (width > 0) yield { level, index: full, width };
  }
}
