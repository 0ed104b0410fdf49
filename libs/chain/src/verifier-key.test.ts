import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { test } from "node:test";
import { toHex } from "./bytes.js";
import { C2SP_EXAMPLE, FORMATS_VKEYS, GO_NOTE_EXAMPLE } from "./note-vectors.js";
import {
  SIGNATURE_TYPE_COSIGNATURE_V1,
  SIGNATURE_TYPE_ED25519,
  createVerifierKey,
  ed25519PrivateKeyFromSeed,
  ed25519PublicKeyBytes,
  formatVerifierKey,
  keyNameProblem,
  noteKeyId,
  parseVerifierKey,
} from "./verifier-key.js";

test("published verifier keys parse, and their key IDs are recomputed", () => {
  const example = parseVerifierKey(C2SP_EXAMPLE.vkey);
  assert.equal(example.name, "example.com/foo");
  assert.equal(example.keyId, 0x530d903a);
  assert.equal(example.type, SIGNATURE_TYPE_ED25519);
  assert.equal(toHex(example.publicKey), C2SP_EXAMPLE.publicKeyHex);
  assert.equal(noteKeyId(example.name, SIGNATURE_TYPE_ED25519, example.publicKey), 0x530d903a);
  for (const vkey of [C2SP_EXAMPLE.vkey, GO_NOTE_EXAMPLE.vkey, FORMATS_VKEYS.ed25519, FORMATS_VKEYS.cosignature]) {
    assert.equal(formatVerifierKey(parseVerifierKey(vkey)), vkey);
  }
  // The tlog-cosignature key ID rule (type byte 0x04) gives the published ID.
  assert.equal(parseVerifierKey(FORMATS_VKEYS.cosignature).type, SIGNATURE_TYPE_COSIGNATURE_V1);
});

test("a key from a seed has the published verifier key", () => {
  const seed = Buffer.from(GO_NOTE_EXAMPLE.seedBase64, "base64").subarray(1);
  const key = createVerifierKey("PeterNeumann", SIGNATURE_TYPE_ED25519, ed25519PrivateKeyFromSeed(seed));
  assert.equal(formatVerifierKey(key), GO_NOTE_EXAMPLE.vkey);
});

test("every mangled verifier key is refused", () => {
  const good = GO_NOTE_EXAMPLE.vkey;
  // Every proper substring and every single-character change (as Go's note tests do).
  for (let i = 0; i <= good.length; i++) {
    for (let j = i + 1; j <= good.length; j++) {
      if (i !== 0 || j !== good.length) assert.throws(() => parseVerifierKey(good.slice(i, j)), { name: "NoteError", reason: "bad-key" }, good.slice(i, j));
    }
  }
  for (let i = 0; i < good.length; i++) {
    const changed = good.slice(0, i) + String.fromCharCode(good.charCodeAt(i) + 1) + good.slice(i + 1);
    if (changed.split("+").length === good.split("+").length) assert.throws(() => parseVerifierKey(changed), { name: "NoteError" }, changed);
  }
  const bad = [
    "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", // upper-case ID
    "PeterNeumann+00000000+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", // wrong ID
    "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", // space in the name
    "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", // empty name
    "rekor.sigstore.dev+12345678+AwEB", // unknown type
    "x+12345678+THIS_IS_NOT_BASE64!",
  ];
  for (const text of bad) assert.throws(() => parseVerifierKey(text), { name: "NoteError", reason: "bad-key" }, text);
});

test("key names follow signed-note", () => {
  for (const name of ["example.com/log", "acme.example/annals/eu-1:orders", "ünïcode"]) assert.equal(keyNameProblem(name), null, name);
  for (const name of ["", "a b", "a\tb", "a\u00a0b", "a\u2003b", "a\u3000b", "a+b", "a\nb", "\ud800"]) assert.notEqual(keyNameProblem(name), null, JSON.stringify(name));
});

test("keys that are not Ed25519 are refused", () => {
  const { publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  assert.throws(() => ed25519PublicKeyBytes(publicKey), { name: "NoteError", reason: "bad-key" });
  assert.throws(() => createVerifierKey("x", SIGNATURE_TYPE_ED25519, new Uint8Array(31)), { name: "NoteError", message: /32 bytes/ });
  assert.throws(() => ed25519PrivateKeyFromSeed(new Uint8Array(31)), { name: "NoteError" });
});
