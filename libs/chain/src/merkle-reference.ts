// The RFC 9162 definitions, written as directly as the RFC states them and
// computed from every leaf in memory: MTH (§2.1.1), PATH (§2.1.3.1) and
// PROOF/SUBPROOF (§2.1.4.1). Too slow for a log; they are the reference the
// tiled code is tested against (tile-proofs.test.ts compares every size up to
// 300) and what docs/merkle/make-vectors.mjs derives vectors from.
//
// The functions take an optional memo (createReferenceMemo) so that a test
// asking for many proofs over one list of leaves hashes each subtree once:
// MTH(D[a:b]) does not depend on how many leaves follow b.
import { checkTreeSize, emptyRoot, leafHash, nodeHash, splitPoint } from "./merkle-hash.js";
import { ProofError } from "./tlog-error.js";

/** Remembered subtree roots of one list of leaf hashes (pass it only with that list, or a prefix of it). */
export type ReferenceMemo = Map<string, Uint8Array>;

export function createReferenceMemo(): ReferenceMemo {
  return new Map();
}

/** MTH(D[n]) of already-hashed leaves. */
export function rootOfLeafHashes(leafHashes: readonly Uint8Array[], memo?: ReferenceMemo): Uint8Array {
  return subtreeRoot(leafHashes, 0, leafHashes.length, memo);
}

/** MTH(D[n]) of the leaves' data: each leaf is hashed with leafHash first. */
export function rootOfLeaves(leaves: readonly Uint8Array[]): Uint8Array {
  return rootOfLeafHashes(leaves.map(leafHash));
}

function subtreeRoot(hashes: readonly Uint8Array[], start: number, end: number, memo?: ReferenceMemo): Uint8Array {
  const n = end - start;
  if (n === 0) return emptyRoot();
  if (n === 1) return hashes[start]!;
  const key = `${start}-${end}`;
  const known = memo?.get(key);
  if (known) return known;
  const k = Number(splitPoint(BigInt(n)));
  const root = nodeHash(subtreeRoot(hashes, start, start + k, memo), subtreeRoot(hashes, start + k, end, memo));
  memo?.set(key, root);
  return root;
}

/** PATH(m, D[n]): the inclusion proof of leaf `index` in the tree of all the given leaf hashes. */
export function referenceInclusionProof(index: bigint, leafHashes: readonly Uint8Array[], memo?: ReferenceMemo): Uint8Array[] {
  checkTreeSize(index, "leaf index");
  if (index >= BigInt(leafHashes.length)) {
    throw new ProofError("out-of-range", `leaf index ${index} is not below the tree size ${leafHashes.length}`);
  }
  const path = (m: number, start: number, end: number): Uint8Array[] => {
    if (end - start === 1) return [];
    const k = Number(splitPoint(BigInt(end - start)));
    return m < k
      ? [...path(m, start, start + k), subtreeRoot(leafHashes, start + k, end, memo)]
      : [...path(m - k, start + k, end), subtreeRoot(leafHashes, start, start + k, memo)];
  };
  return path(Number(index), 0, leafHashes.length);
}

/** PROOF(m, D[n]): the consistency proof from the tree of the first m leaf hashes to the tree of all of them. */
export function referenceConsistencyProof(m: bigint, leafHashes: readonly Uint8Array[], memo?: ReferenceMemo): Uint8Array[] {
  checkTreeSize(m, "old tree size");
  if (m > BigInt(leafHashes.length)) {
    throw new ProofError("out-of-range", `old tree size ${m} exceeds the new tree size ${leafHashes.length}`);
  }
  if (m === 0n) return [];
  const subproof = (m: number, start: number, end: number, complete: boolean): Uint8Array[] => {
    if (m === end - start) return complete ? [] : [subtreeRoot(leafHashes, start, end, memo)];
    const k = Number(splitPoint(BigInt(end - start)));
    return m <= k
      ? [...subproof(m, start, start + k, complete), subtreeRoot(leafHashes, start + k, end, memo)]
      : [...subproof(m - k, start + k, end, false), subtreeRoot(leafHashes, start, start + k, memo)];
  };
  return subproof(Number(m), 0, leafHashes.length, true);
}
