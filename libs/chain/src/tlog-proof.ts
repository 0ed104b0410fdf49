// C2SP tlog-proof: an offline receipt that a leaf is in a log — the leaf's
// index, its inclusion proof, and the signed (and possibly cosigned)
// checkpoint the proof leads to:
//
//   c2sp.org/tlog-proof@v1
//   [extra <base64>]
//   index <decimal>
//   <base64 hash>…            (leaf's sibling first)
//   <empty line>
//   <checkpoint note, verbatim>
//
// For annals the leaf is the 32 raw bytes of the entry's chain checksum.
import { fromBase64, parseDecimal, toBase64 } from "./bytes.js";
import { openCheckpoint, parseCheckpointNote, type Checkpoint } from "./checkpoint.js";
import { MAX_TREE_SIZE, checkHash, checkTreeSize, hashFromBase64, leafHash } from "./merkle-hash.js";
import { verifyInclusion } from "./merkle-proof.js";
import { checkNoteSignatures, type VerifiedSignature } from "./signed-note.js";
import { TlogError, TlogProofError } from "./tlog-error.js";
import { keyIdHex, type VerifierKey } from "./verifier-key.js";

/** The first line of every tlog-proof. */
export const TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1";
/** The most hashes an inclusion proof in a tree of at most 2^63-1 leaves has. */
export const MAX_PROOF_HASHES = 63;

export interface TlogProof {
  /** Unauthenticated application data (annals writes none). */
  readonly extra?: Uint8Array;
  /** The leaf's index: for annals, seq − 1. */
  readonly index: bigint;
  /** The inclusion proof, leaf's sibling first. */
  readonly hashes: readonly Uint8Array[];
  /** The checkpoint as a signed note, with any cosignatures. */
  readonly checkpoint: string;
}

function malformed(message: string, cause?: unknown): TlogProofError {
  return new TlogProofError("malformed", message, cause === undefined ? undefined : { cause });
}

function checkCheckpointNote(note: string): void {
  try {
    parseCheckpointNote(note);
  } catch (error) {
    throw malformed(`the checkpoint: ${(error as Error).message}`, error);
  }
}

/** The proof as text. */
export function formatTlogProof(proof: TlogProof): string {
  checkTreeSize(proof.index, "leaf index");
  if (proof.hashes.length > MAX_PROOF_HASHES) throw malformed(`an inclusion proof has at most ${MAX_PROOF_HASHES} hashes`);
  proof.hashes.forEach((hash, i) => checkHash(hash, `inclusion proof hash ${i}`));
  if (proof.extra !== undefined && proof.extra.length === 0) throw malformed("extra data, when present, is not empty");
  checkCheckpointNote(proof.checkpoint);
  const lines = [TLOG_PROOF_HEADER, ...(proof.extra ? [`extra ${toBase64(proof.extra)}`] : []), `index ${proof.index}`, ...proof.hashes.map(toBase64)];
  return `${lines.join("\n")}\n\n${proof.checkpoint}`;
}

/**
 * Reads a tlog-proof. Throws TlogProofError "malformed" for a wrong first
 * line, an empty or non-canonical `extra`, an index that is not a decimal
 * without leading zeros up to 2^63-1, a hash line that is not the canonical
 * base64 of 32 bytes, more than 63 hashes, no empty line before the
 * checkpoint, or a checkpoint that is not a signed checkpoint note.
 */
export function parseTlogProof(text: string): TlogProof {
  const split = text.indexOf("\n\n");
  if (split < 0) throw malformed("a tlog-proof needs an empty line before its checkpoint");
  const lines = text.slice(0, split).split("\n");
  const checkpoint = text.slice(split + 2);
  if (lines.shift() !== TLOG_PROOF_HEADER) throw malformed(`a tlog-proof starts with the line ${TLOG_PROOF_HEADER}`);
  let extra: Uint8Array | undefined;
  if (lines[0]?.startsWith("extra ")) {
    const decoded = fromBase64(lines.shift()!.slice("extra ".length));
    if (decoded === null || decoded.length === 0) throw malformed("the extra line must hold non-empty canonical base64");
    extra = decoded;
  }
  const indexLine = lines.shift() ?? "";
  const index = indexLine.startsWith("index ") ? parseDecimal(indexLine.slice("index ".length), MAX_TREE_SIZE) : null;
  if (index === null) throw malformed("the line after the header (and extra) must be index <decimal from 0 to 2^63-1, no leading zeros>");
  if (lines.length > MAX_PROOF_HASHES) throw malformed(`an inclusion proof has at most ${MAX_PROOF_HASHES} hashes`);
  const hashes = lines.map((line, i) => {
    const hash = hashFromBase64(line);
    if (hash === null) throw malformed(`proof line ${i + 1} must be the canonical base64 of a 32-byte hash`);
    return hash;
  });
  checkCheckpointNote(checkpoint);
  return { ...(extra ? { extra } : {}), index, hashes, checkpoint };
}

/** Who must have signed a receipt's checkpoint. */
export interface TlogProofPolicy {
  /** The log's verifier key. */
  readonly logKey: VerifierKey;
  /** The origin the checkpoint must name; default the log key's name (annals names keys after origins). */
  readonly origin?: string;
  /** Witness keys (type 0x04) and how many of them must have cosigned; default none. */
  readonly witnesses?: { readonly keys: readonly VerifierKey[]; readonly threshold: number };
}

export interface VerifiedTlogProof {
  readonly index: bigint;
  readonly checkpoint: Checkpoint;
  /** Verified cosignatures of the policy's witnesses, one per witness key. */
  readonly cosignatures: readonly VerifiedSignature[];
  readonly extra?: Uint8Array;
}

/**
 * Verifies a receipt offline, in tlog-proof's order: the leaf hash of
 * `leaf` (annals: the entry's 32 checksum bytes), the checkpoint's origin and
 * log signature, the witnesses' cosignatures against the policy, then the
 * inclusion proof against the checkpoint's root. Throws TlogProofError whose
 * reason names the step that failed: "malformed", "wrong-origin",
 * "bad-signature", "witnesses" or "inclusion".
 */
export function verifyTlogProof(input: string | TlogProof, leaf: Uint8Array, policy: TlogProofPolicy): VerifiedTlogProof {
  const proof = typeof input === "string" ? parseTlogProof(input) : input;
  const hash = leafHash(leaf);
  const origin = policy.origin ?? policy.logKey.name;
  let checkpoint: Checkpoint;
  try {
    checkpoint = openCheckpoint(proof.checkpoint, [policy.logKey], { origin }).checkpoint;
  } catch (error) {
    const reason = error instanceof TlogError && error.reason === "wrong-origin" ? "wrong-origin" : error instanceof TlogError && error.reason === "malformed" ? "malformed" : "bad-signature";
    throw new TlogProofError(reason, `checkpoint: ${(error as Error).message}`, { cause: error });
  }
  const cosignatures = checkWitnesses(proof.checkpoint, policy.witnesses);
  try {
    verifyInclusion(hash, proof.index, checkpoint.size, proof.hashes, checkpoint.rootHash);
  } catch (error) {
    throw new TlogProofError("inclusion", `leaf ${proof.index} is not proven in the tree of ${checkpoint.size}: ${(error as Error).message}`, { cause: error });
  }
  return { index: proof.index, checkpoint, cosignatures, ...(proof.extra ? { extra: proof.extra } : {}) };
}

function checkWitnesses(note: string, witnesses: TlogProofPolicy["witnesses"]): VerifiedSignature[] {
  if (witnesses === undefined) return [];
  const { keys, threshold } = witnesses;
  if (!Number.isInteger(threshold) || threshold < 0 || threshold > keys.length) {
    throw new TlogProofError("witnesses", `the witness threshold must be 0 to ${keys.length} (got ${threshold})`);
  }
  let verified: readonly VerifiedSignature[];
  try {
    verified = checkNoteSignatures(note, keys).verified;
  } catch (error) {
    throw new TlogProofError("witnesses", `cosignatures: ${(error as Error).message}`, { cause: error });
  }
  // One vote per witness key, however many lines it signed.
  const byKey = new Map(verified.map((signature) => [`${signature.key.name}+${keyIdHex(signature.key.keyId)}`, signature]));
  if (byKey.size < threshold) {
    throw new TlogProofError("witnesses", `${byKey.size} of the ${keys.length} witnesses cosigned; the policy needs ${threshold}`);
  }
  return [...byKey.values()];
}
