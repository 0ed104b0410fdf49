// Each log's RFC 6962 Merkle tree (docs/merkle.md): the leaf of seq s is the
// 32 bytes of entry s's checksum, at index s − 1. The append transaction grows
// it from the right edge kept in the head row, writing the tiles it changes
// in the same statement as the entries (store.insertEntries), so the tree
// never covers an entry that was not committed, nor misses one that was.
import { appendLeaves, decodeRightEdge, encodeRightEdge, leafHash, type RightEdge, type TileReader } from "@annals/chain";
import type { Queryable } from "@annals/db";
import { Code, type ConnectError } from "@connectrpc/connect";
import { rpcError } from "@annals/runtime";
import { readTiles, type HeadRow, type TreeGrowth } from "./store.js";

/** The leaf data of an entry: its checksum's 32 bytes. */
export function leafOf(checksum: string): Uint8Array {
  return Buffer.from(checksum, "hex");
}

/**
 * The tree's right edge before an append, checked against the head: the tree
 * covers exactly the entries up to last_seq, or rows were changed under it.
 * null for a log without a tree.
 */
export function treeEdge(head: HeadRow): RightEdge | null {
  if (head.tree_edge === null) return null;
  const edge = decodeRightEdge(head.tree_edge);
  if (edge.size !== head.last_seq) throw treeMismatch(head.log_id, edge.size, head.last_seq);
  return edge;
}

/** How appending entries with these checksums grows the log's tree; null for a log without one. */
export function growTree(head: HeadRow, checksums: readonly string[]): (TreeGrowth & { root: Uint8Array; size: bigint }) | null {
  const edge = treeEdge(head);
  if (edge === null) return null;
  const grown = appendLeaves(edge, checksums.map((checksum) => leafHash(leafOf(checksum))));
  return { edge: encodeRightEdge(grown.edge), tiles: grown.updates, root: grown.root, size: grown.edge.size };
}

/** Reads a log's tiles for the proofs of @annals/chain (one query for every tile a proof needs). */
export function tileReader(db: Queryable, logId: string): TileReader {
  return (tiles) => readTiles(db, logId, tiles);
}

/** DATA_LOSS: the tree and the entries (or the signed checkpoints) disagree. */
export function treeMismatch(logId: string, treeSize: bigint, lastSeq: bigint, why?: string): ConnectError {
  return rpcError(
    Code.DataLoss,
    `the Merkle tree of log "${logId}" ${why ?? `has ${treeSize} leaves but the log's head is at seq ${lastSeq}`}: rows were changed under it; it takes no appends and signs nothing until this is resolved (run Verify)`,
    { reason: "TREE_MISMATCH", metadata: { log: logId, tree_size: String(treeSize), last_seq: String(lastSeq) } },
  );
}
