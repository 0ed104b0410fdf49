// SHA-256 for the chain and the Merkle tree (sha256Hex is exported through hash-chain.ts).
import * as crypto from "node:crypto";

// crypto.hash (Node ≥ 20.12) skips the Hash object: about twice as fast as
// createHash for a 65-byte node and three times for an entry's envelope, and
// every appended entry hashes several; older Node 20 releases fall back to
// createHash.
const oneShot = typeof crypto.hash === "function" ? crypto.hash : undefined;

/** SHA-256 of bytes, or of a string's UTF-8 bytes, as a Buffer. */
export function sha256Bytes(input: string | Uint8Array): Buffer {
  return oneShot ? oneShot("sha256", input, "buffer") : crypto.createHash("sha256").update(input).digest();
}

/** Lowercase hex SHA-256 of bytes, or of a string's UTF-8 bytes. */
export function sha256Hex(input: string | Uint8Array): string {
  return oneShot ? oneShot("sha256", input, "hex") : crypto.createHash("sha256").update(input).digest("hex");
}
