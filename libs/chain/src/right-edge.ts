// The right edge of a tree (a compact range from leaf 0): the roots of the
// complete subtrees that the binary decomposition of the size splits the tree
// into, largest first. A tree of 13 = 8 + 4 + 1 leaves has three: the roots of
// leaves 0–7, 8–11 and 12. At most 63 hashes for an int64 size; enough to
// append leaves and to compute the root without reading any tile.
import { bytesEqual } from "./bytes.js";
import { HASH_SIZE, MAX_TREE_SIZE, checkHash, checkTreeSize, emptyRoot, nodeHash } from "./merkle-hash.js";
import { ProofError } from "./tlog-error.js";

export interface RightEdge {
  /** Leaves in the tree. */
  readonly size: bigint;
  /** One hash per set bit of `size`, highest bit (leftmost, largest subtree) first. */
  readonly hashes: readonly Uint8Array[];
}

/** The right edge of the empty tree. */
export function emptyRightEdge(): RightEdge {
  return { size: 0n, hashes: [] };
}

/** Heights of the right edge's subtrees for a tree of `size` leaves, largest first. */
export function rightEdgeHeights(size: bigint): number[] {
  const heights: number[] = [];
  for (let height = size.toString(2).length - 1; height >= 0; height--) if ((size >> BigInt(height)) & 1n) heights.push(height);
  return heights;
}

/** The tree's root: the right edge's hashes folded from the right (RFC 9162's split at the largest power of two). */
export function rightEdgeRoot(edge: RightEdge): Uint8Array {
  const { hashes } = edge;
  if (hashes.length === 0) return emptyRoot();
  let root = hashes[hashes.length - 1]!;
  for (let i = hashes.length - 2; i >= 0; i--) root = nodeHash(hashes[i]!, root);
  return root;
}

/** Whether two right edges describe the same tree. */
export function rightEdgesEqual(a: RightEdge, b: RightEdge): boolean {
  return a.size === b.size && a.hashes.length === b.hashes.length && a.hashes.every((hash, i) => bytesEqual(hash, b.hashes[i]!));
}

/** Refuses an edge whose hash count does not match its size. */
export function checkRightEdge(edge: RightEdge): void {
  checkTreeSize(edge.size, "right edge size");
  const expected = rightEdgeHeights(edge.size).length;
  if (edge.hashes.length !== expected) {
    throw new ProofError("malformed", `a right edge of ${edge.size} leaves has ${expected} hashes (got ${edge.hashes.length})`);
  }
  edge.hashes.forEach((hash, i) => checkHash(hash, `right edge hash ${i}`));
}

/**
 * Bytes to keep the edge in (e.g. the log's head row): the size as a
 * big-endian uint64, then the hashes, 32 bytes each.
 */
export function encodeRightEdge(edge: RightEdge): Uint8Array {
  checkRightEdge(edge);
  const out = new Uint8Array(8 + HASH_SIZE * edge.hashes.length);
  new DataView(out.buffer).setBigUint64(0, edge.size);
  edge.hashes.forEach((hash, i) => out.set(hash, 8 + HASH_SIZE * i));
  return out;
}

/** Reads encodeRightEdge's bytes back; throws ProofError when they cannot be an edge. */
export function decodeRightEdge(bytes: Uint8Array): RightEdge {
  if (bytes.length < 8 || (bytes.length - 8) % HASH_SIZE !== 0) {
    throw new ProofError("malformed", `an encoded right edge is 8 + 32·k bytes (got ${bytes.length})`);
  }
  const size = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0);
  if (size > MAX_TREE_SIZE) throw new ProofError("out-of-range", `an encoded right edge has size ${size}, beyond 2^63-1`);
  const hashes: Uint8Array[] = [];
  for (let offset = 8; offset < bytes.length; offset += HASH_SIZE) hashes.push(bytes.slice(offset, offset + HASH_SIZE));
  const edge = { size, hashes };
  checkRightEdge(edge);
  return edge;
}
