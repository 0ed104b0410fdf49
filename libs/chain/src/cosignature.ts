// C2SP tlog-cosignature, Ed25519 flavour (signature type 0x04): a witness's
// timestamped statement that, as of `timestamp`, the checkpoint is the
// largest consistent tree it has seen for the origin. The signature is
// timestamp (big-endian uint64) ‖ Ed25519 signature (64 bytes), over
//   "cosignature/v1\n" ‖ "time <decimal timestamp>\n" ‖ the checkpoint's note text.
// The key ID uses type byte 0x04, so a witness key never verifies as a log
// key or the other way round. (ML-DSA-44 cosignatures, type 0x06, are not
// supported: node:crypto has no ML-DSA on Node 20.)
import { sign, verify, type KeyObject } from "node:crypto";
import { concatBytes, utf8 } from "./bytes.js";
import type { NoteSigner } from "./signed-note.js";
import { NoteError } from "./tlog-error.js";
import { SIGNATURE_TYPE_COSIGNATURE_V1, createVerifierKey, type VerifierKey } from "./verifier-key.js";

/** The largest timestamp a cosignature may carry (2^63 - 1 seconds). */
export const MAX_COSIGNATURE_TIMESTAMP = (1n << 63n) - 1n;

const TIMESTAMPED_SIGNATURE_SIZE = 8 + 64;

function checkTimestamp(timestamp: bigint): void {
  if (typeof timestamp !== "bigint" || timestamp < 0n || timestamp > MAX_COSIGNATURE_TIMESTAMP) {
    throw new NoteError("malformed", `a cosignature timestamp is 0 to 2^63-1 POSIX seconds (got ${String(timestamp)})`);
  }
}

/** The message an Ed25519 cosignature signs, for the note text of a checkpoint and a POSIX time in seconds. */
export function cosignatureMessage(checkpointText: string, timestamp: bigint): Uint8Array {
  checkTimestamp(timestamp);
  return utf8(`cosignature/v1\ntime ${timestamp}\n${checkpointText}`);
}

/** A witness's cosigning key. */
export interface Cosigner {
  /** Its verifier key (type 0x04), to publish as a vkey. */
  readonly key: VerifierKey;
  /** The timestamped signature (72 bytes, without the key ID) over a checkpoint's note text at `timestamp`. */
  sign(checkpointText: string, timestamp: bigint): Uint8Array;
}

/**
 * A cosigner for an Ed25519 private key under `name`. It signs any text
 * given: only cosign a checkpoint that parsed and passed the witness checks
 * (witness.ts does both). Use a key that signs nothing else (tlog-cosignature
 * asks for distinct keys per cosigner, signed-note for distinct keys per type).
 */
export function createCosigner(name: string, privateKey: KeyObject): Cosigner {
  const key = createVerifierKey(name, SIGNATURE_TYPE_COSIGNATURE_V1, privateKey);
  return {
    key,
    sign(checkpointText, timestamp) {
      const stamp = new Uint8Array(8);
      new DataView(stamp.buffer).setBigUint64(0, timestamp);
      return concatBytes(stamp, sign(null, cosignatureMessage(checkpointText, timestamp), privateKey));
    },
  };
}

/** The cosigner as a note signer at a fixed time, for signNote and addNoteSignatures. */
export function cosignatureSigner(cosigner: Cosigner, timestamp: bigint): NoteSigner {
  checkTimestamp(timestamp);
  return { key: cosigner.key, sign: (text) => cosigner.sign(text, timestamp) };
}

/**
 * The timestamp of a cosignature that verifies under `key` for the note text,
 * or null when it does not (wrong length, timestamp beyond 2^63-1, or a bad
 * signature).
 */
export function verifyCosignature(key: VerifierKey, text: string, signature: Uint8Array): bigint | null {
  if (signature.length !== TIMESTAMPED_SIGNATURE_SIZE) return null;
  const timestamp = new DataView(signature.buffer, signature.byteOffset, 8).getBigUint64(0);
  if (timestamp > MAX_COSIGNATURE_TIMESTAMP) return null;
  return verify(null, cosignatureMessage(text, timestamp), key.keyObject, signature.subarray(8)) ? timestamp : null;
}
