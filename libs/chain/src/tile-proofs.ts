// Roots and proofs of a tiled tree, for the RPCs and the tile-less clients:
// each function works out every subtree it needs first, then reads all their
// tiles in ONE reader call (at most a few tiles per tree level: for 1,000,000
// leaves an inclusion proof touches at most 6 tiles), then hashes. The
// proofs are RFC 9162's PATH and PROOF (§2.1.3.1, §2.1.4.1); tile-proofs.test.ts
// checks them against merkle-reference.ts for every size up to 300.
import { checkTreeSize, emptyRoot, splitPoint } from "./merkle-hash.js";
import { rightEdgeRoot } from "./right-edge.js";
import { ProofError } from "./tlog-error.js";
import { readRanges, rightEdgeFromTiles, type SubtreeCache, type TileReader } from "./tile-reader.js";

type Range = readonly [bigint, bigint];

export interface TileProofOptions {
  /** Complete-subtree hashes of this log remembered across calls (tile-reader.ts, SubtreeCache); default none. */
  readonly cache?: SubtreeCache;
}

/** The root of the tree of `size` leaves. */
export async function treeRoot(size: bigint, reader: TileReader, options: TileProofOptions = {}): Promise<Uint8Array> {
  checkTreeSize(size, "tree size");
  if (size === 0n) return emptyRoot();
  return rightEdgeRoot(await rightEdgeFromTiles(size, reader, options.cache));
}

/** The inclusion proof of leaf `index` in the tree of `size` leaves, leaf's sibling first. */
export async function inclusionProof(index: bigint, size: bigint, reader: TileReader, options: TileProofOptions = {}): Promise<Uint8Array[]> {
  checkTreeSize(index, "leaf index");
  checkTreeSize(size, "tree size");
  if (index >= size) throw new ProofError("out-of-range", `leaf index ${index} is not below the tree size ${size}`);
  // PATH(m, D[lo:hi]) descends towards the leaf; each step contributes the other half.
  const ranges: Range[] = [];
  let lo = 0n;
  let hi = size;
  while (hi - lo > 1n) {
    const k = splitPoint(hi - lo);
    if (index < lo + k) {
      ranges.push([lo + k, hi]);
      hi = lo + k;
    } else {
      ranges.push([lo, lo + k]);
      lo += k;
    }
  }
  return ranges.length === 0 ? [] : (await readRanges(size, ranges, reader, options.cache)).reverse();
}

/** The consistency proof from the tree of `m` leaves to the tree of `n` leaves (empty when m is 0 or m = n). */
export async function consistencyProof(m: bigint, n: bigint, reader: TileReader, options: TileProofOptions = {}): Promise<Uint8Array[]> {
  checkTreeSize(m, "old tree size");
  checkTreeSize(n, "new tree size");
  if (m > n) throw new ProofError("out-of-range", `old tree size ${m} exceeds the new tree size ${n}`);
  if (m === 0n || m === n) return [];
  // SUBPROOF(m, D[lo:hi], complete): `complete` stays true while the old tree's root is a node of the new tree.
  const ranges: Range[] = [];
  let lo = 0n;
  let hi = n;
  let complete = true;
  while (m !== hi) {
    const k = splitPoint(hi - lo);
    if (m <= lo + k) {
      ranges.push([lo + k, hi]);
      hi = lo + k;
    } else {
      ranges.push([lo, lo + k]);
      lo += k;
      complete = false;
    }
  }
  if (!complete) ranges.push([lo, hi]);
  return (await readRanges(n, ranges, reader, options.cache)).reverse();
}
