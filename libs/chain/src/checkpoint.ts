// C2SP tlog-checkpoint: the note text `<origin>\n<size>\n<base64 root>\n`
// followed by optional extension lines, signed as a signed note; and the
// annals rule that names a log's origin.
import { bytesEqual, parseDecimal, toBase64 } from "./bytes.js";
import { MAX_TREE_SIZE, checkHash, checkTreeSize, hashFromBase64 } from "./merkle-hash.js";
import { parseNote, signNote, verifyNote, type NoteSigner, type VerifiedSignature } from "./signed-note.js";
import { CheckpointError } from "./tlog-error.js";
import { keyNameProblem, type VerifierKey } from "./verifier-key.js";

export interface Checkpoint {
  /** The log's identity (for annals: logOrigin). */
  readonly origin: string;
  /** Leaves in the tree. */
  readonly size: bigint;
  /** The RFC 6962 root of the tree at that size. */
  readonly rootHash: Uint8Array;
  /** Opaque extra lines after the root (annals writes none). */
  readonly extensions: readonly string[];
}

/** The checkpoint's note text. */
export function formatCheckpoint(checkpoint: Checkpoint): string {
  const { origin, size, rootHash, extensions } = checkpoint;
  if (origin === "" || origin.includes("\n")) throw new CheckpointError("malformed", "a checkpoint origin is one non-empty line");
  checkTreeSize(size, "checkpoint size");
  checkHash(rootHash, "checkpoint root hash");
  for (const line of extensions) {
    if (line === "" || line.includes("\n")) throw new CheckpointError("malformed", "a checkpoint extension is one non-empty line");
  }
  return [origin, size.toString(), toBase64(rootHash), ...extensions].map((line) => `${line}\n`).join("");
}

/**
 * Reads a checkpoint's note text. Throws CheckpointError "malformed" unless
 * it is at least three non-empty lines ending in a newline: an origin, a
 * size in decimal without leading zeros (at most 2^63-1), the canonical
 * base64 of a 32-byte root, then non-empty extension lines. The origin is
 * taken as it is: tlog-checkpoint tells clients not to assume its form.
 */
export function parseCheckpoint(text: string): Checkpoint {
  if (!text.endsWith("\n")) throw new CheckpointError("malformed", "a checkpoint ends with a newline");
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3) throw new CheckpointError("malformed", "a checkpoint has at least three lines: origin, size, root hash");
  if (lines.some((line) => line === "")) throw new CheckpointError("malformed", "a checkpoint has no empty lines");
  const [origin, sizeText, rootText, ...extensions] = lines as [string, string, string, ...string[]];
  const size = parseDecimal(sizeText, MAX_TREE_SIZE);
  if (size === null) throw new CheckpointError("malformed", `checkpoint size must be a decimal from 0 to 2^63-1 without leading zeros (got ${JSON.stringify(sizeText.slice(0, 30))})`);
  const rootHash = hashFromBase64(rootText);
  if (rootHash === null) throw new CheckpointError("malformed", "checkpoint root hash must be the canonical base64 of 32 bytes");
  return { origin, size, rootHash, extensions };
}

/**
 * The checkpoint of a signed note, WITHOUT verifying any signature: for the
 * form checks of formats that embed a checkpoint note, and to learn the
 * origin whose keys to verify with. Throws NoteError or CheckpointError.
 */
export function parseCheckpointNote(note: string): Checkpoint {
  return parseCheckpoint(parseNote(note).text);
}

/** Whether two checkpoints say the same (origin, size, root and extensions). */
export function checkpointsEqual(a: Checkpoint, b: Checkpoint): boolean {
  return a.origin === b.origin && a.size === b.size && bytesEqual(a.rootHash, b.rootHash) && a.extensions.join("\n") === b.extensions.join("\n");
}

/** The signed note of a checkpoint. */
export function signCheckpoint(checkpoint: Checkpoint, signers: readonly NoteSigner[]): string {
  return signNote(formatCheckpoint(checkpoint), signers);
}

/** A checkpoint whose signature verified. */
export interface OpenedCheckpoint {
  readonly checkpoint: Checkpoint;
  /** The note as received (to store, forward or put into a receipt unchanged). */
  readonly note: string;
  readonly signatures: readonly VerifiedSignature[];
}

/**
 * Verifies a checkpoint note under the log's key(s) (signed-note rules:
 * NoteError) and parses it (CheckpointError); with `origin`, the checkpoint
 * must name that origin (CheckpointError "wrong-origin").
 */
export function openCheckpoint(note: string, logKeys: readonly VerifierKey[], options: { readonly origin?: string } = {}): OpenedCheckpoint {
  const { text, verified } = verifyNote(note, logKeys);
  const checkpoint = parseCheckpoint(text);
  if (options.origin !== undefined && checkpoint.origin !== options.origin) {
    throw new CheckpointError("wrong-origin", `the checkpoint is for origin ${JSON.stringify(checkpoint.origin)}, not ${JSON.stringify(options.origin)}`);
  }
  return { checkpoint, note, signatures: verified };
}

const SPIFFE = "spiffe://";

/**
 * The origin of an annals log: the node id without "spiffe://", a colon, the
 * log id (`spiffe://acme.example/annals/eu-1` and `orders` give
 * `acme.example/annals/eu-1:orders`). Node ids and log ids never contain a
 * colon, so the first colon splits an origin back into both (parseLogOrigin):
 * two different (node, log) pairs never share an origin. With "/" as the
 * separator they could (node `…/a/log/b`, log `c` against node `…/a`, log
 * `b/log/c`). The origin is also the key name of the log's signatures, so it
 * must be a valid key name: no spaces, no '+'.
 */
export function logOrigin(nodeId: string, logId: string): string {
  if (!nodeId.startsWith(SPIFFE) || nodeId.length === SPIFFE.length) throw new CheckpointError("bad-origin", `node id must be spiffe://<trust domain>/<path> (got ${JSON.stringify(nodeId.slice(0, 100))})`);
  const node = nodeId.slice(SPIFFE.length);
  if (node.includes(":")) throw new CheckpointError("bad-origin", "node id must not contain ':' after spiffe://");
  if (logId === "" || logId.includes(":")) throw new CheckpointError("bad-origin", "log id must be non-empty and must not contain ':'");
  const origin = `${node}:${logId}`;
  const problem = keyNameProblem(origin);
  if (problem) throw new CheckpointError("bad-origin", `origin ${problem}`);
  return origin;
}

/** The node id and log id of an annals origin (logOrigin's inverse). */
export function parseLogOrigin(origin: string): { readonly nodeId: string; readonly logId: string } {
  const colon = origin.indexOf(":");
  if (colon <= 0) throw new CheckpointError("bad-origin", `not an annals log origin (<node>:<log id>): ${JSON.stringify(origin.slice(0, 100))}`);
  const parts = { nodeId: `${SPIFFE}${origin.slice(0, colon)}`, logId: origin.slice(colon + 1) };
  logOrigin(parts.nodeId, parts.logId); // validates both halves
  return parts;
}
