// Verification of inclusion and consistency proofs exactly as RFC 9162
// §2.1.3.2 and §2.1.4.2 state the algorithms (the step numbers below are the
// RFC's). Nothing here trusts the proof's length: a proof that is too short or
// too long fails the RFC's own checks on fn and sn.
import { bytesEqual, toHex } from "./bytes.js";
import { checkHash, checkTreeSize, emptyRoot, isPowerOfTwo, nodeHash } from "./merkle-hash.js";
import { ProofError } from "./tlog-error.js";

/**
 * The root that an inclusion proof derives for `leafHash` at `index` in a
 * tree of `size` leaves (RFC 9162 §2.1.3.2 steps 1–5, without the final
 * comparison). Throws ProofError when the proof has the wrong shape.
 */
export function rootFromInclusionProof(leafHash: Uint8Array, index: bigint, size: bigint, proof: readonly Uint8Array[]): Uint8Array {
  checkTreeSize(index, "leaf index");
  checkTreeSize(size, "tree size");
  checkHash(leafHash, "leaf hash");
  proof.forEach((hash, i) => checkHash(hash, `inclusion proof hash ${i}`));
  // 1. An index must be inside the tree.
  if (index >= size) throw new ProofError("out-of-range", `leaf index ${index} is not below the tree size ${size}`);
  // 2–4, and 5's check that every level of the tree was consumed.
  let r = leafHash;
  walkPath(index, size - 1n, proof, `inclusion proof for a tree of size ${size}`, (p, isLeft) => {
    r = isLeft ? nodeHash(p, r) : nodeHash(r, p);
  });
  return r;
}

/**
 * The loop the two RFC 9162 verifications share (§2.1.3.2 step 4, §2.1.4.2
 * step 6): for each hash, whether it is a left sibling ("LSB(fn) is set, or
 * fn is equal to sn") or a right one, shifting fn and sn as the RFC says;
 * afterwards sn must be 0 (every level consumed).
 */
function walkPath(fn: bigint, sn: bigint, hashes: readonly Uint8Array[], what: string, fold: (hash: Uint8Array, isLeft: boolean) => void): void {
  for (const hash of hashes) {
    if (sn === 0n) throw new ProofError("malformed", `${what} is longer than needed`);
    const isLeft = (fn & 1n) === 1n || fn === sn;
    fold(hash, isLeft);
    if (isLeft) {
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new ProofError("malformed", `${what} is shorter than needed`);
}

/** Throws ProofError unless `proof` proves that `leafHash` is leaf `index` of the tree of `size` leaves with root `root`. */
export function verifyInclusion(leafHash: Uint8Array, index: bigint, size: bigint, proof: readonly Uint8Array[], root: Uint8Array): void {
  checkHash(root, "root hash");
  const derived = rootFromInclusionProof(leafHash, index, size, proof);
  // 5. (second half)
  if (!bytesEqual(derived, root)) {
    throw new ProofError("mismatch", `inclusion proof derives root ${toHex(derived)}, not ${toHex(root)}`);
  }
}

/** The two roots a consistency path derives (consistencyProofRoots). */
export interface ConsistencyRoots {
  /** fr: the root of the first `m` leaves, as the path computes it. */
  readonly oldRoot: Uint8Array;
  /** sr: the root of all `n` leaves, as the path computes it. */
  readonly newRoot: Uint8Array;
}

/**
 * RFC 9162 §2.1.4.2 steps 3–6 for 0 < m < n: the roots fr and sr that a
 * consistency path derives, without comparing them to anything.
 *
 * `path` is the consistency_path *after* step 2: when m is an exact power of
 * two, the RFC has the verifier prepend the old root, so the caller must
 * prepend the hash it holds for the first m leaves (verifyConsistency prepends
 * the old root; a fork-evidence bundle carries the larger tree's own hash of
 * its first m leaves there). Every hash that feeds fr also feeds sr, which is
 * what makes a path that derives the new root but not the old one evidence of
 * a fork (docs/merkle.md, "Fork evidence").
 */
export function consistencyProofRoots(m: bigint, n: bigint, path: readonly Uint8Array[]): ConsistencyRoots {
  checkTreeSize(m, "old tree size");
  checkTreeSize(n, "new tree size");
  if (m === 0n || m >= n) throw new ProofError("out-of-range", `a consistency path needs 0 < old size < new size (got ${m} and ${n})`);
  path.forEach((hash, i) => checkHash(hash, `consistency path hash ${i}`));
  // 1. (after 2) the path holds at least the seed.
  const [seed, ...rest] = path;
  if (seed === undefined) throw new ProofError("malformed", `consistency proof from ${m} to ${n} is empty`);
  // 3.
  let fn = m - 1n;
  let sn = n - 1n;
  // 4.
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  // 5.
  let fr = seed;
  let sr = seed;
  // 6, and 7's check that sn is 0.
  walkPath(fn, sn, rest, `consistency proof from ${m} to ${n}`, (c, isLeft) => {
    if (isLeft) fr = nodeHash(c, fr);
    sr = isLeft ? nodeHash(c, sr) : nodeHash(sr, c);
  });
  return { oldRoot: fr, newRoot: sr };
}

/**
 * Throws ProofError unless `proof` proves that the tree of `m` leaves with
 * root `oldRoot` is a prefix of the tree of `n` leaves with root `newRoot`.
 * Beyond the RFC's 0 < m < n: m = n needs an empty proof and equal roots;
 * m = 0 needs an empty proof and the empty tree's root as `oldRoot`.
 */
export function verifyConsistency(m: bigint, n: bigint, oldRoot: Uint8Array, newRoot: Uint8Array, proof: readonly Uint8Array[]): void {
  checkTreeSize(m, "old tree size");
  checkTreeSize(n, "new tree size");
  checkHash(oldRoot, "old root hash");
  checkHash(newRoot, "new root hash");
  if (m > n) throw new ProofError("out-of-range", `old tree size ${m} exceeds the new tree size ${n}`);
  if (m === n || m === 0n) {
    if (proof.length !== 0) throw new ProofError("malformed", `a consistency proof from ${m} to ${n} must be empty (got ${proof.length} hashes)`);
    const expected = m === 0n ? emptyRoot() : newRoot;
    if (!bytesEqual(oldRoot, expected)) {
      throw new ProofError("mismatch", m === 0n ? "the root of an empty tree must be SHA-256 of nothing" : `two roots for tree size ${m}: ${toHex(oldRoot)} and ${toHex(newRoot)}`);
    }
    return;
  }
  // 2.
  const path = isPowerOfTwo(m) ? [oldRoot, ...proof] : proof;
  const roots = consistencyProofRoots(m, n, path);
  // 7. (second part)
  if (!bytesEqual(roots.oldRoot, oldRoot)) {
    throw new ProofError("mismatch", `consistency proof derives old root ${toHex(roots.oldRoot)}, not ${toHex(oldRoot)}`);
  }
  if (!bytesEqual(roots.newRoot, newRoot)) {
    throw new ProofError("mismatch", `consistency proof derives new root ${toHex(roots.newRoot)}, not ${toHex(newRoot)}`);
  }
}
