// Growing a tiled tree. Two ways, one algorithm:
//
// - appendLeaves(edge, leafHashes): the log keeps the tree's right edge
//   (right-edge.ts, at most 63 hashes) in its head row, which the append
//   transaction locks anyway. No tile is read: the result lists, per changed
//   tile, the hashes to append to it, and the caller writes each with one
//   upsert that concatenates, guarded by the stored length, e.g.
//     INSERT … VALUES (level, index, appended) ON CONFLICT (…) DO UPDATE
//       SET bytes = tiles.bytes || excluded.bytes WHERE length(tiles.bytes) = fromWidth·32
//   (a guard that updates no row means the tiles and the head row disagree:
//   the transaction must fail). This is the cheapest: zero reads, one batch
//   write, and about one extra SHA-256 per leaf.
// - appendLeavesToTiles(size, leafHashes, reader): for a log without the edge
//   in its head row (or to rebuild it): one reader call fetches the partial
//   tiles, which hold both the right edge and the old contents, and the
//   result is the full new contents of every changed tile.
//
// A complete subtree of height 8·L is hash j of level L; it becomes complete
// exactly when leaf (j+1)·256^L − 1 is appended, so every tile only ever
// grows at its end (prefix-stable, as tlog-tiles requires).
import { concatBytes } from "./bytes.js";
import { MAX_TREE_SIZE, checkHash, checkTreeSize, nodeHash } from "./merkle-hash.js";
import { checkRightEdge, rightEdgeRoot, type RightEdge } from "./right-edge.js";
import { ProofError } from "./tlog-error.js";
import { rangeSubtrees, readSubtrees, tilePrefix, type TileReader } from "./tile-reader.js";
import { TILE_HEIGHT, TILE_WIDTH, type TileId } from "./tiles.js";

/** The hashes an append adds to one tile. */
export interface TileUpdate {
  /** The tile after the append, with its new width. */
  readonly tile: TileId;
  /** Hashes the tile held before: 0 for a tile the append creates. */
  readonly fromWidth: number;
  /** The new hashes, 32 bytes each, to go after the first `fromWidth`. */
  readonly appended: Uint8Array;
}

export interface LeafAppend {
  /** The right edge after the append (keep it for the next one). */
  readonly edge: RightEdge;
  /** The root of the grown tree. */
  readonly root: Uint8Array;
  /** Every tile the append changes or creates, lowest level first. */
  readonly updates: readonly TileUpdate[];
}

/** Appends leaf hashes to the tree whose right edge is `edge`; pure, reads no tile. */
export function appendLeaves(edge: RightEdge, leafHashes: readonly Uint8Array[]): LeafAppend {
  checkRightEdge(edge);
  if (edge.size + BigInt(leafHashes.length) > MAX_TREE_SIZE) {
    throw new ProofError("out-of-range", `appending ${leafHashes.length} leaves to ${edge.size} would pass 2^63-1`);
  }
  const stack = [...edge.hashes];
  const pending = new Map<string, { level: number; index: bigint; fromWidth: number; hashes: Uint8Array[] }>();
  const record = (level: number, position: bigint, hash: Uint8Array): void => {
    const index = position / BigInt(TILE_WIDTH);
    const key = `${level}/${index}`;
    let tile = pending.get(key);
    if (tile === undefined) {
      tile = { level, index, fromWidth: Number(position % BigInt(TILE_WIDTH)), hashes: [] };
      pending.set(key, tile);
    }
    tile.hashes.push(hash);
  };
  let size = edge.size;
  for (const [i, leaf] of leafHashes.entries()) {
    checkHash(leaf, `leaf hash ${i}`);
    record(0, size, leaf);
    // Appending leaf number `size` completes one subtree per trailing 1 bit of `size`.
    let hash = leaf;
    for (let height = 1; ((size >> BigInt(height - 1)) & 1n) === 1n; height++) {
      hash = nodeHash(stack.pop()!, hash);
      if (height % TILE_HEIGHT === 0) record(height / TILE_HEIGHT, ((size + 1n) >> BigInt(height)) - 1n, hash);
    }
    stack.push(hash);
    size += 1n;
  }
  const newEdge = { size, hashes: stack };
  const updates = [...pending.values()]
    .sort((a, b) => a.level - b.level || (a.index < b.index ? -1 : 1))
    .map(({ level, index, fromWidth, hashes }) => ({ tile: { level, index, width: fromWidth + hashes.length }, fromWidth, appended: concatBytes(...hashes) }));
  return { edge: newEdge, root: rightEdgeRoot(newEdge), updates };
}

/** A tile's full new contents. */
export interface TileWrite {
  readonly tile: TileId;
  readonly bytes: Uint8Array;
}

export interface TileAppend {
  readonly edge: RightEdge;
  readonly root: Uint8Array;
  /** The full new contents of every tile the append changes or creates. */
  readonly writes: readonly TileWrite[];
}

/**
 * Appends leaf hashes to the stored tree of `size` leaves: one reader call
 * for its partial tiles, then the full new contents of every changed tile.
 */
export async function appendLeavesToTiles(size: bigint, leafHashes: readonly Uint8Array[], reader: TileReader): Promise<TileAppend> {
  checkTreeSize(size, "tree size");
  const { hashes, fetched } = await readSubtrees(size, rangeSubtrees(0n, size), reader);
  const { edge, root, updates } = appendLeaves({ size, hashes }, leafHashes);
  // A tile with fromWidth > 0 is the old tree's partial tile at its level, and readSubtrees fetched it.
  const writes = updates.map(({ tile, fromWidth, appended }) => ({
    tile,
    bytes: fromWidth === 0 ? appended : concatBytes(tilePrefix(fetched, tile, fromWidth), appended),
  }));
  return { edge, root, writes };
}

