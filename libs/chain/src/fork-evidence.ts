// annals' fork-evidence bundle: two checkpoints signed by one log key for
// one origin that no single append-only history can have both produced,
// with the consistency path that shows it. Text, built from signed notes:
//
//   annals/fork-evidence/v1
//   <base64 hash>…          consistency path from the smaller size to the larger
//   <empty line>
//   <checkpoint note with the smaller size (or either, when equal)>
//   <empty line>
//   <checkpoint note with the larger size>
//
// When the smaller size m is an exact power of two, the path's first line is
// the larger tree's own hash of its first m leaves (the hash that RFC 9162
// has an honest verifier take from the old checkpoint instead), so that the
// path alone derives both roots. Why a verdict of "proves misbehaviour" is
// sound is in docs/merkle.md, "Fork evidence".
import { bytesEqual, toBase64, toHex } from "./bytes.js";
import { openCheckpoint, parseCheckpointNote, type Checkpoint } from "./checkpoint.js";
import { checkHash, emptyRoot, hashFromBase64, isPowerOfTwo } from "./merkle-hash.js";
import { consistencyProofRoots } from "./merkle-proof.js";
import { ForkEvidenceError } from "./tlog-error.js";
import type { VerifierKey } from "./verifier-key.js";

/** The first line of a bundle. */
export const FORK_EVIDENCE_HEADER = "annals/fork-evidence/v1";
/** The most path lines a bundle holds: 63 for the RFC proof, plus the seed. */
const MAX_PATH_LINES = 64;

export interface ForkEvidence {
  /** The consistency path from the smaller size to the larger, seeded as described above. */
  readonly path: readonly Uint8Array[];
  /** The signed checkpoint with the smaller (or equal) size. */
  readonly smaller: string;
  /** The signed checkpoint with the larger (or equal) size. */
  readonly larger: string;
}

function malformed(message: string, cause?: unknown): ForkEvidenceError {
  return new ForkEvidenceError("malformed", message, cause === undefined ? undefined : { cause });
}

function checkpointOf(note: string, which: string): Checkpoint {
  try {
    return parseCheckpointNote(note);
  } catch (error) {
    throw malformed(`the ${which} checkpoint: ${(error as Error).message}`, error);
  }
}

/** The bundle as text. Checks the form (two checkpoint notes of one origin, in size order), not the signatures. */
export function formatForkEvidence(evidence: ForkEvidence): string {
  const smaller = checkpointOf(evidence.smaller, "smaller");
  const larger = checkpointOf(evidence.larger, "larger");
  if (smaller.origin !== larger.origin) throw malformed("both checkpoints must have the same origin");
  if (smaller.size > larger.size) throw malformed("the smaller checkpoint comes first");
  if (evidence.path.length > MAX_PATH_LINES) throw malformed(`a path has at most ${MAX_PATH_LINES} hashes`);
  evidence.path.forEach((hash, i) => checkHash(hash, `path hash ${i}`));
  return [FORK_EVIDENCE_HEADER, ...evidence.path.map(toBase64)].map((line) => `${line}\n`).join("") + `\n${evidence.smaller}\n${evidence.larger}`;
}

/** Reads a bundle; throws ForkEvidenceError "malformed" when it does not have the form above. */
export function parseForkEvidence(text: string): ForkEvidence {
  const lines = text.split("\n");
  if (lines.shift() !== FORK_EVIDENCE_HEADER) throw malformed(`a fork-evidence bundle starts with the line ${FORK_EVIDENCE_HEADER}`);
  const path: Uint8Array[] = [];
  for (let line = lines.shift(); line !== ""; line = lines.shift()) {
    if (line === undefined) throw malformed("the path must be followed by an empty line");
    const hash = hashFromBase64(line);
    if (hash === null) throw malformed(`path line ${path.length + 1} must be the canonical base64 of a 32-byte hash`);
    if (path.push(hash) > MAX_PATH_LINES) throw malformed(`a path has at most ${MAX_PATH_LINES} hashes`);
  }
  // A checkpoint's text has no empty line, so the first note ends at the empty line after its signature lines.
  const textEnd = lines.indexOf("");
  let end = textEnd + 1;
  while (end < lines.length && lines[end]!.startsWith("\u2014 ")) end++;
  if (textEnd < 0 || end >= lines.length || lines[end] !== "") throw malformed("the two checkpoints must be separated by an empty line");
  const evidence = { path, smaller: `${lines.slice(0, end).join("\n")}\n`, larger: lines.slice(end + 1).join("\n") };
  // The form checks of formatForkEvidence, and the exact text back (no stray lines anywhere).
  if (formatForkEvidence(evidence) !== text) throw malformed("the bundle is not in canonical form");
  return evidence;
}

/** What verifyForkEvidence concluded. */
export type ForkVerdict =
  | {
      readonly provesMisbehaviour: true;
      /**
       * same-size: one size, two roots. inconsistent: the path derives the larger
       * checkpoint's root but another root for the smaller size. empty-tree: a
       * checkpoint of size 0 whose root is not the empty tree's.
       */
      readonly kind: "same-size" | "inconsistent" | "empty-tree";
      readonly origin: string;
      readonly smaller: Checkpoint;
      readonly larger: Checkpoint;
      /** For "inconsistent": the root of the larger tree's first `smaller.size` leaves, which the log never signed. */
      readonly derivedSmallerRoot?: Uint8Array;
      readonly explanation: string;
    }
  | { readonly provesMisbehaviour: false; readonly reason: string };

/**
 * Checks a bundle against the log's verifier key (and the origin, by default
 * the key's name). Never throws for a bad bundle: the verdict says why it
 * does not prove anything.
 */
export function verifyForkEvidence(input: string | ForkEvidence, logKey: VerifierKey, options: { readonly origin?: string } = {}): ForkVerdict {
  const no = (reason: string): ForkVerdict => ({ provesMisbehaviour: false, reason });
  let evidence: ForkEvidence;
  try {
    evidence = typeof input === "string" ? parseForkEvidence(input) : parseForkEvidence(formatForkEvidence(input));
  } catch (error) {
    return no(`not a fork-evidence bundle: ${(error as Error).message}`);
  }
  const origin = options.origin ?? logKey.name;
  const opened: Checkpoint[] = [];
  for (const [which, note] of [["smaller", evidence.smaller], ["larger", evidence.larger]] as const) {
    try {
      opened.push(openCheckpoint(note, [logKey], { origin }).checkpoint);
    } catch (error) {
      return no(`the ${which} checkpoint is not the log's: ${(error as Error).message}`);
    }
  }
  const [smaller, larger] = opened as [Checkpoint, Checkpoint];
  const proves = (kind: "same-size" | "inconsistent" | "empty-tree", explanation: string, derivedSmallerRoot?: Uint8Array): ForkVerdict => ({
    provesMisbehaviour: true,
    kind,
    origin,
    smaller,
    larger,
    ...(derivedSmallerRoot ? { derivedSmallerRoot } : {}),
    explanation,
  });
  const m = smaller.size;
  const n = larger.size;
  if (m === 0n && !bytesEqual(smaller.rootHash, emptyRoot())) {
    return proves("empty-tree", `the log signed a tree of size 0 with root ${toHex(smaller.rootHash)}, not the empty tree's`);
  }
  if (m === n) {
    if (evidence.path.length > 0) return no("checkpoints of equal size need no path");
    if (bytesEqual(smaller.rootHash, larger.rootHash)) return no(`both checkpoints have size ${m} and the same root: no fork`);
    return proves("same-size", `the log signed two roots for size ${m}: ${toHex(smaller.rootHash)} and ${toHex(larger.rootHash)}`);
  }
  if (m === 0n) return no("the empty tree is consistent with every tree");
  let roots;
  try {
    roots = consistencyProofRoots(m, n, evidence.path);
  } catch (error) {
    return no(`the path does not fit sizes ${m} and ${n}: ${(error as Error).message}`);
  }
  if (!bytesEqual(roots.newRoot, larger.rootHash)) {
    return no(`the path derives ${toHex(roots.newRoot)}, not the larger checkpoint's root ${toHex(larger.rootHash)}: it says nothing about the log's tree`);
  }
  if (bytesEqual(roots.oldRoot, smaller.rootHash)) return no(`the path proves that size ${m} is a prefix of size ${n}: the checkpoints are consistent`);
  return proves(
    "inconsistent",
    `the tree of size ${n} the log signed begins with ${m} leaves whose root is ${toHex(roots.oldRoot)}, but the log also signed ${toHex(smaller.rootHash)} for size ${m}`,
    roots.oldRoot,
  );
}

/**
 * Builds a bundle from two signed checkpoints of one origin (in either
 * order), the RFC 9162 consistency proof from the smaller size to the larger
 * computed over the tree the larger checkpoint commits to (from the log, or
 * from a mirror's own copy of it), and, when the smaller size is an exact
 * power of two, `prefixRoot`: that tree's root of its first (smaller size)
 * leaves. Run verifyForkEvidence on the result to learn whether it proves
 * anything.
 */
export function createForkEvidence(input: { readonly checkpoints: readonly [string, string]; readonly proof: readonly Uint8Array[]; readonly prefixRoot?: Uint8Array }): string {
  const [a, b] = input.checkpoints;
  const [smaller, larger] = checkpointOf(a, "first").size <= checkpointOf(b, "second").size ? [a, b] : [b, a];
  const m = checkpointOf(smaller, "smaller").size;
  const n = checkpointOf(larger, "larger").size;
  let path = input.proof;
  if (m > 0n && m < n && isPowerOfTwo(m)) {
    if (input.prefixRoot === undefined) throw malformed(`the smaller size ${m} is a power of two: prefixRoot (the larger tree's root of its first ${m} leaves) is needed`);
    checkHash(input.prefixRoot, "prefixRoot");
    path = [input.prefixRoot, ...path];
  }
  return formatForkEvidence({ path, smaller, larger });
}
