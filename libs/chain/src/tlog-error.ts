// The errors of the transparency-log files. Each concept has its own class
// (so a caller can tell a bad tile path from a bad note by `instanceof`),
// and every error carries a machine-readable `reason` besides its message.

/** Base class of the transparency-log errors; never thrown itself. */
export abstract class TlogError<Reason extends string = string> extends Error {
  constructor(
    readonly reason: Reason,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Why a Merkle proof or a tree size was refused (merkle-proof.ts, merkle-reference.ts). */
export type ProofErrorReason = "out-of-range" | "malformed" | "mismatch";
/** A proof that does not verify, or sizes and indexes that no proof can have. */
export class ProofError extends TlogError<ProofErrorReason> {
  override readonly name = "ProofError";
}

/** Why a tile, a tile path or an entry bundle was refused (tiles.ts, entry-bundle.ts, tile-*.ts). */
export type TileErrorReason = "bad-path" | "out-of-range" | "bad-tile" | "bad-bundle";
export class TileError extends TlogError<TileErrorReason> {
  override readonly name = "TileError";
}

/**
 * Why a note or a verifier key was refused (signed-note.ts, verifier-key.ts).
 * `malformed`: not a signed note (or a signature that cannot be made, such as
 * a cosignature timestamp out of range); `bad-key`: not a usable verifier key;
 * `unverified`: no signature from a known key; `bad-signature`: a known key's
 * signature does not verify (the whole note is rejected, as signed-note says
 * clients should).
 */
export type NoteErrorReason = "malformed" | "bad-key" | "unverified" | "bad-signature";
export class NoteError extends TlogError<NoteErrorReason> {
  override readonly name = "NoteError";
}

/** Why a checkpoint body or a log origin was refused (checkpoint.ts). */
export type CheckpointErrorReason = "malformed" | "bad-origin" | "wrong-origin";
export class CheckpointError extends TlogError<CheckpointErrorReason> {
  override readonly name = "CheckpointError";
}

/** Why a tlog-proof receipt was refused (tlog-proof.ts). */
export type TlogProofErrorReason = "malformed" | "wrong-origin" | "bad-signature" | "witnesses" | "inclusion";
export class TlogProofError extends TlogError<TlogProofErrorReason> {
  override readonly name = "TlogProofError";
}

/** A tlog-witness add-checkpoint body that is not well formed (witness.ts): HTTP 400. */
export class WitnessRequestError extends TlogError<"malformed"> {
  override readonly name = "WitnessRequestError";
}

/** A fork-evidence bundle that is not well formed (fork-evidence.ts). */
export class ForkEvidenceError extends TlogError<"malformed" | "not-a-fork"> {
  override readonly name = "ForkEvidenceError";
}
