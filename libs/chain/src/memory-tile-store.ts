// Tiles kept in a Map: the stand-in for the PostgreSQL tile table in tests
// and in tools (docs/merkle/make-vectors.mjs). It stores the widest version of
// each tile and serves narrower requests from it, as the real table does.
import { concatBytes } from "./bytes.js";
import { HASH_SIZE } from "./merkle-hash.js";
import type { TileUpdate, TileWrite } from "./tile-append.js";
import type { TileReader } from "./tile-reader.js";
import { TileError } from "./tlog-error.js";
import type { TileId } from "./tiles.js";

export interface MemoryTileStore {
  /** Applies appendLeaves' updates, refusing one whose fromWidth is not the stored width. */
  applyUpdates(updates: readonly TileUpdate[]): void;
  /** Stores appendLeavesToTiles' writes. */
  applyWrites(writes: readonly TileWrite[]): void;
  /** The stored bytes of a tile, or undefined. */
  get(level: number, index: bigint): Uint8Array | undefined;
  /** Reads tiles; a missing tile is a TileError. */
  readonly reader: TileReader;
  /** Reader calls so far and the tiles they asked for (to check one call per operation). */
  readonly calls: TileId[][];
}

export function createMemoryTileStore(): MemoryTileStore {
  const tiles = new Map<string, Uint8Array>();
  const calls: TileId[][] = [];
  return {
    applyUpdates(updates) {
      for (const { tile, fromWidth, appended } of updates) {
        const key = `${tile.level}/${tile.index}`;
        const stored = tiles.get(key) ?? new Uint8Array();
        if (stored.length !== fromWidth * HASH_SIZE) {
          throw new TileError("bad-tile", `tile ${key} holds ${stored.length / HASH_SIZE} hashes, the update expects ${fromWidth}`);
        }
        tiles.set(key, concatBytes(stored, appended));
      }
    },
    applyWrites(writes) {
      for (const { tile, bytes } of writes) tiles.set(`${tile.level}/${tile.index}`, bytes);
    },
    get: (level, index) => tiles.get(`${level}/${index}`),
    reader: async (asked) => {
      calls.push([...asked]);
      return asked.map((tile) => {
        const bytes = tiles.get(`${tile.level}/${tile.index}`);
        if (bytes === undefined) throw new TileError("bad-tile", `tile ${tile.level}/${tile.index} is not stored`);
        return bytes;
      });
    },
    calls,
  };
}
