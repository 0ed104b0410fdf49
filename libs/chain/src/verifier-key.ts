// C2SP signed-note keys: key names, key IDs, and verifier keys ("vkeys")
// `<name>+<hex key ID>+<base64(type ‖ public key)>`, for the two Ed25519
// signature types annals uses: 0x01 (plain Ed25519 note signatures: the logs'
// checkpoints) and 0x04 (timestamped cosignatures, c2sp.org/tlog-cosignature:
// the witnesses). Keys are node:crypto KeyObjects; raw bytes only on the wire.
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { concatBytes, fromBase64, toBase64, utf8 } from "./bytes.js";
import { NoteError } from "./tlog-error.js";

/** Signature type of plain Ed25519 note signatures (signed-note). */
export const SIGNATURE_TYPE_ED25519 = 0x01;
/** Signature type of timestamped Ed25519 checkpoint cosignatures (tlog-cosignature). */
export const SIGNATURE_TYPE_COSIGNATURE_V1 = 0x04;
export type SignatureType = typeof SIGNATURE_TYPE_ED25519 | typeof SIGNATURE_TYPE_COSIGNATURE_V1;

const ED25519_PUBLIC_KEY_SIZE = 32;

/** A key that verifies note signatures. */
export interface VerifierKey {
  /** The key name of its signature lines. */
  readonly name: string;
  /** SHA-256(name ‖ "\n" ‖ type ‖ public key)[:4] as a big-endian uint32. */
  readonly keyId: number;
  readonly type: SignatureType;
  /** The 32-byte Ed25519 public key (RFC 8032 encoding). */
  readonly publicKey: Uint8Array;
  /** The same key for node:crypto's verify. */
  readonly keyObject: KeyObject;
}

// Unicode White_Space is the set Go's unicode.IsSpace uses (signed-note's "Unicode spaces").
const SPACE = /\p{White_Space}/u;
// eslint-disable-next-line no-control-regex -- control characters are what this pattern is for
const CONTROL = /[\u0000-\u001f]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why a key name is not valid (signed-note: non-empty, no Unicode spaces, no '+'), or null. */
export function keyNameProblem(name: string): string | null {
  if (typeof name !== "string" || name === "") return "must not be empty";
  if (SPACE.test(name)) return "must not contain spaces";
  if (name.includes("+")) return "must not contain '+'";
  if (CONTROL.test(name)) return "must not contain control characters";
  if (LONE_SURROGATE.test(name)) return "must be valid Unicode";
  return null;
}

/** The key ID: SHA-256(name ‖ 0x0A ‖ type ‖ public key)[:4], big-endian. */
export function noteKeyId(name: string, type: SignatureType, publicKey: Uint8Array): number {
  const digest = createHash("sha256").update(concatBytes(utf8(name), new Uint8Array([0x0a, type]), publicKey)).digest();
  return digest.readUInt32BE(0);
}

/** The raw 32-byte public key of an Ed25519 KeyObject (public or private). */
export function ed25519PublicKeyBytes(key: KeyObject): Uint8Array {
  if (key.asymmetricKeyType !== "ed25519") throw new NoteError("bad-key", `expected an Ed25519 key (got ${key.asymmetricKeyType ?? key.type})`);
  const publicKey = key.type === "private" ? createPublicKey(key) : key;
  const { x } = publicKey.export({ format: "jwk" });
  return new Uint8Array(Buffer.from(x!, "base64url"));
}

/**
 * The Ed25519 private key whose RFC 8032 seed is `seed` (32 bytes): for keys
 * kept as seeds and for deterministic test keys (docs/merkle/make-vectors.mjs).
 */
export function ed25519PrivateKeyFromSeed(seed: Uint8Array): KeyObject {
  if (seed.length !== 32) throw new NoteError("bad-key", `an Ed25519 seed has 32 bytes (got ${seed.length})`);
  // PKCS#8 wrapping of an Ed25519 seed (RFC 8410 §7): a fixed 16-byte prefix, then the seed.
  const prefix = Buffer.from("302e020100300506032b657004220420", "hex");
  return createPrivateKey({ key: Buffer.concat([prefix, seed]), format: "der", type: "pkcs8" });
}

/** A verifier key for `publicKey` (32 raw bytes or a KeyObject) under `name`. */
export function createVerifierKey(name: string, type: SignatureType, publicKey: Uint8Array | KeyObject): VerifierKey {
  const problem = keyNameProblem(name);
  if (problem) throw new NoteError("bad-key", `key name ${problem}`);
  if (type !== SIGNATURE_TYPE_ED25519 && type !== SIGNATURE_TYPE_COSIGNATURE_V1) {
    throw new NoteError("bad-key", `unsupported signature type 0x${Number(type).toString(16).padStart(2, "0")} (annals uses 0x01 and 0x04)`);
  }
  const raw = publicKey instanceof Uint8Array ? publicKey : ed25519PublicKeyBytes(publicKey);
  if (raw.length !== ED25519_PUBLIC_KEY_SIZE) throw new NoteError("bad-key", `an Ed25519 public key has 32 bytes (got ${raw.length})`);
  let keyObject: KeyObject;
  try {
    keyObject = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(raw).toString("base64url") }, format: "jwk" });
  } catch (error) {
    throw new NoteError("bad-key", "not an Ed25519 public key", { cause: error });
  }
  return { name, keyId: noteKeyId(name, type, raw), type, publicKey: raw.slice(), keyObject };
}

/** `<name>+<8 lowercase hex digits>+<base64(type ‖ public key)>`. */
export function formatVerifierKey(key: VerifierKey): string {
  return `${key.name}+${keyIdHex(key.keyId)}+${toBase64(concatBytes(new Uint8Array([key.type]), key.publicKey))}`;
}

/**
 * Parses a verifier key. Refuses, with NoteError "bad-key": a missing part,
 * an invalid name, a key ID that is not 8 lowercase hex digits or does not
 * match the key, non-canonical base64, a type other than 0x01 and 0x04, and a
 * public key that is not 32 bytes.
 */
export function parseVerifierKey(text: string): VerifierKey {
  // The name has no '+', the ID none either; the base64 may have some.
  const first = text.indexOf("+");
  const second = first < 0 ? -1 : text.indexOf("+", first + 1);
  if (second < 0) throw new NoteError("bad-key", "a verifier key is <name>+<key id>+<base64 key>");
  const name = text.slice(0, first);
  const idText = text.slice(first + 1, second);
  const material = fromBase64(text.slice(second + 1));
  const problem = keyNameProblem(name);
  if (problem) throw new NoteError("bad-key", `verifier key name ${problem}`);
  if (!/^[0-9a-f]{8}$/.test(idText)) throw new NoteError("bad-key", `verifier key ID must be 8 lowercase hex digits (got ${JSON.stringify(idText.slice(0, 20))})`);
  if (material === null || material.length === 0) throw new NoteError("bad-key", "verifier key material is not canonical base64");
  const key = createVerifierKey(name, material[0] as SignatureType, material.subarray(1));
  if (key.keyId !== Number.parseInt(idText, 16)) {
    throw new NoteError("bad-key", `verifier key ID ${idText} does not match the key (expected ${keyIdHex(key.keyId)})`);
  }
  return key;
}

/** A key ID as vkeys spell it: 8 lowercase hex digits. */
export function keyIdHex(keyId: number): string {
  return keyId.toString(16).padStart(8, "0");
}
