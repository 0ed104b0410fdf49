// RFC 6962 / RFC 9162 §2.1.1 Merkle tree hashing with SHA-256: the hashes every
// other transparency-log file builds on. A leaf is hashed with a 0x00 prefix
// and an interior node with 0x01, so that no leaf can pass for a node (second
// preimage resistance, RFC 9162 §2.1.1).
import { fromBase64 } from "./bytes.js";
import { sha256Bytes } from "./sha256.js";
import { ProofError } from "./tlog-error.js";

/** Bytes of a SHA-256 hash: every leaf hash, node hash and root. */
export const HASH_SIZE = 32;

/** The largest tree size (and leaf index bound): sizes are int64 on the wire. */
export const MAX_TREE_SIZE = (1n << 63n) - 1n;

function sha256(input: Uint8Array): Uint8Array {
  const digest = sha256Bytes(input);
  return new Uint8Array(digest.buffer, digest.byteOffset, HASH_SIZE);
}

const EMPTY_ROOT = sha256(new Uint8Array());

/** MTH({}) = SHA-256 of the empty string, the root of a tree with no leaves. */
export function emptyRoot(): Uint8Array {
  return EMPTY_ROOT.slice();
}

/** MTH({d}) = SHA-256(0x00 ‖ d): the hash of the leaf holding `data`. */
export function leafHash(data: Uint8Array): Uint8Array {
  const input = new Uint8Array(1 + data.length);
  input.set(data, 1);
  return sha256(input);
}

const nodeInput = new Uint8Array(1 + 2 * HASH_SIZE);
nodeInput[0] = 1;

/** SHA-256(0x01 ‖ left ‖ right): the hash of an interior node. */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  if (left.length !== HASH_SIZE || right.length !== HASH_SIZE) {
    throw new ProofError("malformed", `a node's children must be ${HASH_SIZE}-byte hashes (got ${left.length} and ${right.length} bytes)`);
  }
  // One reused input buffer: hashing is synchronous, so no two calls share it at once.
  nodeInput.set(left, 1);
  nodeInput.set(right, 1 + HASH_SIZE);
  return sha256(nodeInput);
}

/** The largest power of two strictly smaller than n (n ≥ 2): where RFC 9162 splits a tree of n leaves. */
export function splitPoint(n: bigint): bigint {
  return 1n << BigInt((n - 1n).toString(2).length - 1);
}

/** Whether n is 2^i for some i ≥ 0. */
export function isPowerOfTwo(n: bigint): boolean {
  return n > 0n && (n & (n - 1n)) === 0n;
}

/** Refuses a tree size or index that is not an integer in 0..MAX_TREE_SIZE. */
export function checkTreeSize(value: bigint, what: string): void {
  if (typeof value !== "bigint" || value < 0n || value > MAX_TREE_SIZE) {
    throw new ProofError("out-of-range", `${what} must be an integer from 0 to 2^63-1 (got ${String(value)})`);
  }
}

/** Refuses a value that is not a 32-byte hash. */
export function checkHash(value: Uint8Array, what: string): void {
  if (!(value instanceof Uint8Array) || value.length !== HASH_SIZE) {
    throw new ProofError("malformed", `${what} must be a ${HASH_SIZE}-byte hash`);
  }
}

/** A 32-byte hash from its canonical base64 (a proof line, a checkpoint's root), or null. */
export function hashFromBase64(text: string): Uint8Array | null {
  const hash = fromBase64(text);
  return hash !== null && hash.length === HASH_SIZE ? hash : null;
}
