// C2SP signed-note: a text ending in a newline, a blank line, then one or
// more signature lines `— <key name> <base64(key ID ‖ signature)>`.
//
// Verification follows the spec's rules: signatures from unknown keys
// (name and ID not both matching a given key) are ignored; a signature
// from a known key must verify, or the whole note is rejected; and at least
// one known key must have signed.
import { sign, verify, type KeyObject } from "node:crypto";
import { concatBytes, fromBase64, fromUtf8, toBase64, utf8 } from "./bytes.js";
import { verifyCosignature } from "./cosignature.js";
import { NoteError } from "./tlog-error.js";
import { SIGNATURE_TYPE_ED25519, createVerifierKey, keyIdHex, keyNameProblem, type VerifierKey } from "./verifier-key.js";

/** Signatures a note may carry here (signed-note asks verifiers to accept at least 16). */
export const MAX_NOTE_SIGNATURES = 100;
/** Bytes a note may have here. */
export const MAX_NOTE_SIZE = 1 << 20;

/** One signature line. */
export interface NoteSignature {
  readonly name: string;
  /** The big-endian uint32 before the signature bytes. */
  readonly keyId: number;
  /** The bytes after the key ID. */
  readonly signature: Uint8Array;
}

export interface Note {
  /** The signed text, including its final newline. */
  readonly text: string;
  readonly signatures: readonly NoteSignature[];
}

/** Signs note texts; `sign` returns the signature bytes that follow the key ID. */
export interface NoteSigner {
  readonly key: VerifierKey;
  sign(text: string): Uint8Array;
}

/** A signature that verified under a given key. */
export interface VerifiedSignature {
  readonly key: VerifierKey;
  readonly signature: NoteSignature;
  /** For a cosignature (type 0x04): its POSIX time in seconds. */
  readonly timestamp?: bigint;
}

export interface NoteSignatureCheck {
  readonly text: string;
  /** Signatures from the given keys, all verified. */
  readonly verified: readonly VerifiedSignature[];
  /** Signatures from keys not given (ignored, as signed-note says). */
  readonly unknown: readonly NoteSignature[];
}

const SIGNATURE_PREFIX = "\u2014 ";
// eslint-disable-next-line no-control-regex -- control characters are what this pattern is for
const CONTROL = /[\u0000-\u0009\u000b-\u001f]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function malformed(message: string): NoteError {
  return new NoteError("malformed", message);
}

/** Why a text cannot be a note's text (must end in a newline, no control characters but newline, valid Unicode), or null. */
export function noteTextProblem(text: string): string | null {
  if (!text.endsWith("\n")) return "must end with a newline";
  if (CONTROL.test(text)) return "must not contain control characters other than newline";
  if (LONE_SURROGATE.test(text)) return "must be valid UTF-8";
  if (utf8(text).length > MAX_NOTE_SIZE) return `must be at most ${MAX_NOTE_SIZE} bytes`;
  return null;
}

/** One signature line, `— <name> <base64(key ID ‖ signature)>` and its newline. */
export function formatSignatureLine(signature: NoteSignature): string {
  const id = new Uint8Array(4);
  new DataView(id.buffer).setUint32(0, signature.keyId);
  return `${SIGNATURE_PREFIX}${signature.name} ${toBase64(concatBytes(id, signature.signature))}\n`;
}

/** A note as text: its text, a blank line, its signature lines. */
export function formatNote(note: Note): string {
  const problem = noteTextProblem(note.text);
  if (problem) throw malformed(`note text ${problem}`);
  if (note.signatures.length === 0) throw malformed("a signed note has at least one signature");
  return `${note.text}\n${note.signatures.map(formatSignatureLine).join("")}`;
}

/**
 * Splits a signed note into its text and signature lines, checking the form
 * only (no signature is verified). Throws NoteError "malformed" for: invalid
 * UTF-8, control characters, no final newline, no blank line before the
 * signatures, a line after it that is not `— <valid name> <canonical base64
 * of 5 bytes or more>`, more than MAX_NOTE_SIGNATURES signatures.
 */
export function parseNote(input: string | Uint8Array): Note {
  if (input instanceof Uint8Array && input.length > MAX_NOTE_SIZE) throw malformed(`a note must be at most ${MAX_NOTE_SIZE} bytes`);
  const note = input instanceof Uint8Array ? fromUtf8(input) : input;
  if (note === null) throw malformed("a note must be valid UTF-8");
  const problem = noteTextProblem(note);
  if (problem) throw malformed(`a note ${problem}`);
  // The text ends at the last blank line (the text itself may hold blank lines).
  const split = note.lastIndexOf("\n\n");
  if (split < 0) throw malformed("a note needs a blank line between its text and its signatures");
  const text = note.slice(0, split + 1);
  if (split + 2 === note.length) throw malformed("a note needs at least one signature line after its blank line");
  const lines = note.slice(split + 2, -1).split("\n");
  if (lines.length > MAX_NOTE_SIGNATURES) throw malformed(`a note may carry at most ${MAX_NOTE_SIGNATURES} signatures here`);
  const signatures = lines.map((line, i) => {
    const where = `signature line ${i + 1}`;
    if (!line.startsWith(SIGNATURE_PREFIX)) throw malformed(`${where} must start with "— " (em dash, space)`);
    const parts = line.slice(SIGNATURE_PREFIX.length).split(" ");
    if (parts.length !== 2) throw malformed(`${where} must be "— <key name> <base64 signature>"`);
    const [name, encoded] = parts as [string, string];
    const nameProblem = keyNameProblem(name);
    if (nameProblem) throw malformed(`${where}: key name ${nameProblem}`);
    const bytes = fromBase64(encoded);
    if (bytes === null || bytes.length < 5) throw malformed(`${where}: the signature must be canonical base64 of a key ID and a signature`);
    return { name, keyId: new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0), signature: bytes.slice(4) };
  });
  return { text, signatures };
}

/** A note signer for plain Ed25519 signatures (type 0x01) under `name`. */
export function createNoteSigner(name: string, privateKey: KeyObject): NoteSigner {
  const key = createVerifierKey(name, SIGNATURE_TYPE_ED25519, privateKey);
  return { key, sign: (text) => new Uint8Array(sign(null, utf8(text), privateKey)) };
}

/** Signs `text` with every signer: the signed note. */
export function signNote(text: string, signers: readonly NoteSigner[]): string {
  const problem = noteTextProblem(text);
  if (problem) throw malformed(`note text ${problem}`);
  return formatNote({ text, signatures: signers.map((signer) => ({ name: signer.key.name, keyId: signer.key.keyId, signature: signer.sign(text) })) });
}

/** Adds signatures (a witness's cosignatures, say) to an already signed note, keeping its lines as they are. */
export function addNoteSignatures(note: string, signers: readonly NoteSigner[]): string {
  const { text, signatures } = parseNote(note);
  const added = signers.map((signer) => ({ name: signer.key.name, keyId: signer.key.keyId, signature: signer.sign(text) }));
  return formatNote({ text, signatures: [...signatures, ...added] });
}

function keyIndex(keys: readonly VerifierKey[]): Map<string, VerifierKey> {
  const index = new Map<string, VerifierKey>();
  for (const key of keys) {
    const id = `${key.name}\n${key.keyId}`;
    const other = index.get(id);
    if (other && !(other.type === key.type && Buffer.from(other.publicKey).equals(key.publicKey))) {
      throw new NoteError("bad-key", `two different keys share the name ${key.name} and ID ${keyIdHex(key.keyId)}`);
    }
    index.set(id, key);
  }
  return index;
}

/**
 * Verifies the signatures of the given keys on a note, without requiring
 * any: for counting witness cosignatures. Throws NoteError "malformed" for a
 * malformed note and "bad-signature" when a given key's signature fails.
 */
export function checkNoteSignatures(input: string | Uint8Array, keys: readonly VerifierKey[]): NoteSignatureCheck {
  const note = parseNote(input);
  const known = keyIndex(keys);
  const verified: VerifiedSignature[] = [];
  const unknown: NoteSignature[] = [];
  const message = utf8(note.text);
  for (const signature of note.signatures) {
    const key = known.get(`${signature.name}\n${signature.keyId}`);
    if (key === undefined) {
      unknown.push(signature);
      continue;
    }
    if (key.type === SIGNATURE_TYPE_ED25519) {
      if (signature.signature.length !== 64 || !verify(null, message, key.keyObject, signature.signature)) throw badSignature(key);
      verified.push({ key, signature });
    } else {
      const timestamp = verifyCosignature(key, note.text, signature.signature);
      if (timestamp === null) throw badSignature(key);
      verified.push({ key, signature, timestamp });
    }
  }
  return { text: note.text, verified, unknown };
}

function badSignature(key: VerifierKey): NoteError {
  return new NoteError("bad-signature", `the signature of ${key.name}+${keyIdHex(key.keyId)} does not verify`);
}

/**
 * Opens a signed note: checkNoteSignatures, and at least one given key must
 * have signed (NoteError "unverified" otherwise). Returns the text, which is
 * only to be trusted after this.
 */
export function verifyNote(input: string | Uint8Array, keys: readonly VerifierKey[]): NoteSignatureCheck {
  const check = checkNoteSignatures(input, keys);
  if (check.verified.length === 0) {
    const names = [...new Set(keys.map((key) => key.name))].join(", ");
    throw new NoteError("unverified", `the note carries no signature from ${names || "any given key"}`);
  }
  return check;
}
