// A client's witness policy (docs/merkle.md, "Witnesses"): a checkpoint is
// trusted once the log signed it and at least `threshold` of the given
// witness keys (type 0x04, tlog-cosignature) cosigned it. One vote per
// witness key, however many lines it signed; lines from other keys are
// ignored, as signed-note says; a line that names a given key but does not
// verify rejects the note.
import { openCheckpoint, type OpenedCheckpoint } from "./checkpoint.js";
import { checkNoteSignatures, type VerifiedSignature } from "./signed-note.js";
import { TlogError } from "./tlog-error.js";
import { SIGNATURE_TYPE_COSIGNATURE_V1, keyIdHex, type VerifierKey } from "./verifier-key.js";

export interface WitnessPolicy {
  /** Witness verifier keys (type 0x04). */
  readonly keys: readonly VerifierKey[];
  /** How many of them must have cosigned: 0 to keys.length. */
  readonly threshold: number;
}

/** Why a checkpoint did not meet a witness policy. */
export class WitnessPolicyError extends TlogError<"bad-policy" | "bad-cosignature" | "quorum"> {
  override readonly name = "WitnessPolicyError";
}

/** The verified cosignatures of the policy's witnesses on a note, one per key; throws WitnessPolicyError unless there are `threshold`. */
export function verifyWitnessPolicy(note: string, policy: WitnessPolicy): VerifiedSignature[] {
  const { keys, threshold } = policy;
  if (!Number.isInteger(threshold) || threshold < 0 || threshold > keys.length) {
    throw new WitnessPolicyError("bad-policy", `the witness threshold must be 0 to ${keys.length} (got ${threshold})`);
  }
  const notWitness = keys.find((key) => key.type !== SIGNATURE_TYPE_COSIGNATURE_V1);
  if (notWitness) throw new WitnessPolicyError("bad-policy", `${notWitness.name} is not a witness key (type 0x04)`);
  let verified: readonly VerifiedSignature[];
  try {
    verified = checkNoteSignatures(note, keys).verified;
  } catch (error) {
    throw new WitnessPolicyError("bad-cosignature", `cosignatures: ${(error as Error).message}`, { cause: error });
  }
  const byKey = new Map(verified.map((signature) => [`${signature.key.name}+${keyIdHex(signature.key.keyId)}`, signature]));
  if (byKey.size < threshold) throw new WitnessPolicyError("quorum", `${byKey.size} of the ${keys.length} witnesses cosigned; the policy needs ${threshold}`);
  return [...byKey.values()];
}

/** A checkpoint signed by the log and cosigned as the policy asks. */
export interface CosignedCheckpoint extends OpenedCheckpoint {
  readonly cosignatures: readonly VerifiedSignature[];
}

/**
 * Opens a checkpoint note (openCheckpoint: NoteError, CheckpointError) and
 * checks its cosignatures against the policy (WitnessPolicyError).
 */
export function verifyCosignedCheckpoint(note: string, logKey: VerifierKey, policy: WitnessPolicy, options: { readonly origin?: string } = {}): CosignedCheckpoint {
  const opened = openCheckpoint(note, [logKey], options);
  return { ...opened, cosignatures: verifyWitnessPolicy(note, policy) };
}
