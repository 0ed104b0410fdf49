// The pure part of a C2SP tlog-witness: the add-checkpoint request body
//
//   old <decimal size>
//   <base64 consistency proof hash>…   (at most 63)
//   <empty line>
//   <checkpoint note>
//
// and the decision the spec prescribes for it, given what the witness has
// stored for the origin. The caller does the HTTP, and must read the stored
// checkpoint and write the new one atomically (e.g. SELECT … FOR UPDATE),
// or two requests can roll the witness back (tlog-witness, add-checkpoint).
import { bytesEqual, parseDecimal, toBase64 } from "./bytes.js";
import { parseCheckpointNote, type Checkpoint } from "./checkpoint.js";
import { MAX_TREE_SIZE, checkHash, checkTreeSize, emptyRoot, hashFromBase64 } from "./merkle-hash.js";
import { verifyConsistency } from "./merkle-proof.js";
import type { Cosigner } from "./cosignature.js";
import { formatSignatureLine, verifyNote, type VerifiedSignature } from "./signed-note.js";
import { NoteError, TlogError, WitnessRequestError } from "./tlog-error.js";
import type { VerifierKey } from "./verifier-key.js";

/** The most consistency proof lines a client may send. */
export const MAX_WITNESS_PROOF_LINES = 63;
/** Content-Type of a 409 response body. */
export const TLOG_SIZE_CONTENT_TYPE = "text/x.tlog.size";

export interface AddCheckpointRequest {
  /** The size of the latest checkpoint the client believes the witness cosigned. */
  readonly oldSize: bigint;
  /** Consistency proof from oldSize to the checkpoint's size. */
  readonly proof: readonly Uint8Array[];
  /** The signed checkpoint note, as sent. */
  readonly note: string;
  /** Its body, parsed but NOT yet verified: use the origin to look up keys and state, nothing else. */
  readonly checkpoint: Checkpoint;
}

function malformed(message: string, cause?: unknown): WitnessRequestError {
  return new WitnessRequestError("malformed", message, cause === undefined ? undefined : { cause });
}

/** The request body. */
export function formatAddCheckpointRequest(request: { readonly oldSize: bigint; readonly proof: readonly Uint8Array[]; readonly note: string }): string {
  checkTreeSize(request.oldSize, "old size");
  if (request.proof.length > MAX_WITNESS_PROOF_LINES) throw malformed(`at most ${MAX_WITNESS_PROOF_LINES} proof lines`);
  request.proof.forEach((hash, i) => checkHash(hash, `consistency proof hash ${i}`));
  return [`old ${request.oldSize}`, ...request.proof.map(toBase64), ""].map((line) => `${line}\n`).join("") + request.note;
}

/**
 * Reads a request body; throws WitnessRequestError (answer 400) when it is
 * not `old <size>`, up to 63 base64 32-byte hashes, an empty line and a
 * signed note whose text is a checkpoint.
 */
export function parseAddCheckpointRequest(body: string): AddCheckpointRequest {
  const split = body.indexOf("\n\n");
  if (split < 0) throw malformed("the body needs an empty line before the checkpoint");
  const lines = body.slice(0, split).split("\n");
  const note = body.slice(split + 2);
  const oldLine = lines.shift()!;
  const oldSize = oldLine.startsWith("old ") ? parseDecimal(oldLine.slice(4), MAX_TREE_SIZE) : null;
  if (oldSize === null) throw malformed("the first line must be old <decimal size, no leading zeros>");
  if (lines.length > MAX_WITNESS_PROOF_LINES) throw malformed(`at most ${MAX_WITNESS_PROOF_LINES} consistency proof lines`);
  const proof = lines.map((line, i) => {
    const hash = hashFromBase64(line);
    if (hash === null) throw malformed(`proof line ${i + 1} must be the canonical base64 of a 32-byte hash`);
    return hash;
  });
  let checkpoint: Checkpoint;
  try {
    checkpoint = parseCheckpointNote(note);
  } catch (error) {
    throw malformed(`the checkpoint: ${(error as Error).message}`, error);
  }
  return { oldSize, proof, note, checkpoint };
}

/** What the witness stored for an origin: the latest checkpoint it cosigned. */
export interface WitnessState {
  readonly size: bigint;
  readonly rootHash: Uint8Array;
}

/** The spec's answer to an add-checkpoint request. */
export type WitnessDecision =
  | {
      /** Cosign (cosignature.ts), store `checkpoint` as the new state, answer 200 with the cosignature lines. */
      readonly status: 200;
      readonly checkpoint: Checkpoint;
      /** The checkpoint's note text as received: what the cosignature signs (witnessResponse). */
      readonly text: string;
      readonly signatures: readonly VerifiedSignature[];
    }
  | {
      /**
       * 404: no key for the origin. 403: no valid signature from a trusted key,
       * or a trusted key's signature fails. 400: old size above the
       * checkpoint's. 409: old size is not the stored size (body:
       * formatConflictBody(latestSize), Content-Type TLOG_SIZE_CONTENT_TYPE).
       * 422: the proof does not verify, a non-empty proof from 0, an empty
       * tree with another root, or the stored size with another root.
       */
      readonly status: 400 | 403 | 404 | 409 | 422;
      readonly reason: string;
      /** The stored size (always set; what a 409 answers). */
      readonly latestSize: bigint;
    };

/**
 * Applies tlog-witness's checks, in its order, to a parsed request.
 * `logKeys` are the keys the witness trusts for the request's origin (empty:
 * unknown origin); `latest` is its stored state for that origin (null: never
 * cosigned, which the spec treats as size 0). Nothing is verified against
 * the clock: the cosignature's timestamp is the caller's.
 */
export function decideAddCheckpoint(request: AddCheckpointRequest, logKeys: readonly VerifierKey[], latest: WitnessState | null): WitnessDecision {
  const latestSize = latest?.size ?? 0n;
  const refuse = (status: 400 | 403 | 404 | 409 | 422, reason: string): WitnessDecision => ({ status, reason, latestSize });
  const { checkpoint } = request;
  if (logKeys.length === 0) return refuse(404, `unknown origin ${JSON.stringify(checkpoint.origin)}`);
  let signatures: readonly VerifiedSignature[];
  let text: string;
  try {
    ({ verified: signatures, text } = verifyNote(request.note, logKeys));
  } catch (error) {
    return refuse(403, `checkpoint signature: ${(error as Error).message}`);
  }
  if (request.oldSize > checkpoint.size) return refuse(400, `old size ${request.oldSize} is above the checkpoint size ${checkpoint.size}`);
  if (request.oldSize !== latestSize) return refuse(409, `old size ${request.oldSize} is not the size ${latestSize} the witness cosigned last`);
  if (checkpoint.size === 0n && !bytesEqual(checkpoint.rootHash, emptyRoot())) return refuse(422, "a checkpoint of size 0 must have the empty tree's root");
  if (request.oldSize === 0n) {
    if (request.proof.length > 0) return refuse(422, "a consistency proof from size 0 must be empty");
  } else {
    try {
      verifyConsistency(request.oldSize, checkpoint.size, latest!.rootHash, checkpoint.rootHash, request.proof);
    } catch (error) {
      const same = request.oldSize === checkpoint.size;
      return refuse(422, same && error instanceof TlogError && error.reason === "mismatch" ? "same size as the stored checkpoint, different root" : `consistency proof: ${(error as Error).message}`);
    }
  }
  return { status: 200, checkpoint, text, signatures };
}

/** The body of a 200 answer: the witness's cosignature line on the accepted checkpoint, at `timestamp` (POSIX seconds, from the caller's clock, not 0). */
export function witnessResponse(accepted: { readonly text: string }, cosigner: Cosigner, timestamp: bigint): string {
  // tlog-witness: "the timestamp MUST NOT be zero".
  if (timestamp === 0n) throw new NoteError("malformed", "a witness cosignature's timestamp must not be zero");
  return formatSignatureLine({ name: cosigner.key.name, keyId: cosigner.key.keyId, signature: cosigner.sign(accepted.text, timestamp) });
}

/** The body of a 409 answer: the stored size and a newline. */
export function formatConflictBody(latestSize: bigint): string {
  return `${latestSize}\n`;
}
