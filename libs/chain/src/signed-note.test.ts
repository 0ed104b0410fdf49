import assert from "node:assert/strict";
import { test } from "node:test";
import { ARCHE_CHECKPOINT, C2SP_EXAMPLE, GO_NOTE_EXAMPLE } from "./note-vectors.js";
import { MAX_NOTE_SIGNATURES, addNoteSignatures, checkNoteSignatures, createNoteSigner, formatNote, parseNote, signNote, verifyNote } from "./signed-note.js";
import { ed25519PrivateKeyFromSeed, parseVerifierKey } from "./verifier-key.js";

const signerA = createNoteSigner("example.com/a", ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(1)));
const signerB = createNoteSigner("example.com/b", ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(2)));

test("the published notes verify, and the Go example is reproduced byte for byte", () => {
  assert.equal(verifyNote(C2SP_EXAMPLE.note, [parseVerifierKey(C2SP_EXAMPLE.vkey)]).text, "This is an example message.\n");
  const seed = Buffer.from(GO_NOTE_EXAMPLE.seedBase64, "base64").subarray(1);
  assert.equal(signNote(GO_NOTE_EXAMPLE.text, [createNoteSigner("PeterNeumann", ed25519PrivateKeyFromSeed(seed))]), GO_NOTE_EXAMPLE.note);
  const opened = verifyNote(GO_NOTE_EXAMPLE.note, [parseVerifierKey(GO_NOTE_EXAMPLE.vkey)]);
  assert.equal(opened.text, GO_NOTE_EXAMPLE.text);
  // A real checkpoint: one signature of ours verifies, five from other keys are ignored.
  const arche = verifyNote(ARCHE_CHECKPOINT.note, [parseVerifierKey(ARCHE_CHECKPOINT.logVkey)]);
  assert.equal(arche.verified.length, 1);
  assert.equal(arche.unknown.length, 5);
});

test("a changed text or signature is rejected", () => {
  const key = parseVerifierKey(GO_NOTE_EXAMPLE.vkey);
  assert.throws(() => verifyNote(GO_NOTE_EXAMPLE.note.replace("cryptography", "cryptographY"), [key]), { name: "NoteError", reason: "bad-signature" });
  assert.throws(() => verifyNote(GO_NOTE_EXAMPLE.note.replace("x08go", "x08gp"), [key]), { name: "NoteError" });
  // Flip every base64 character of the signature in turn.
  const line = GO_NOTE_EXAMPLE.note.indexOf("x08go");
  for (let i = line + 8; i < GO_NOTE_EXAMPLE.note.length - 2; i += 7) {
    const note = GO_NOTE_EXAMPLE.note.slice(0, i) + (GO_NOTE_EXAMPLE.note[i] === "A" ? "B" : "A") + GO_NOTE_EXAMPLE.note.slice(i + 1);
    assert.throws(() => verifyNote(note, [key]), { name: "NoteError" }, `char ${i}`);
  }
});

test("unknown signers are ignored, a known signer that fails rejects the note, no known signer rejects it", () => {
  const note = signNote("hello\n", [signerA, signerB]);
  const onlyA = verifyNote(note, [signerA.key]);
  assert.equal(onlyA.verified.length, 1);
  assert.equal(onlyA.unknown[0]!.name, "example.com/b");
  assert.throws(() => verifyNote(note, [parseVerifierKey(C2SP_EXAMPLE.vkey)]), { name: "NoteError", reason: "unverified" });
  // Same name, other key (so other ID): unknown, not a failure.
  const impostor = createNoteSigner("example.com/a", ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(9)));
  assert.throws(() => verifyNote(note, [impostor.key]), { name: "NoteError", reason: "unverified" });
  // A's name and ID on B's signature bytes: the known key's signature fails, the note is rejected.
  const parsed = parseNote(note);
  const forged = formatNote({ text: parsed.text, signatures: [parsed.signatures[1]!, { ...parsed.signatures[0]!, signature: parsed.signatures[1]!.signature }] });
  assert.throws(() => verifyNote(forged, [signerA.key, signerB.key]), { name: "NoteError", reason: "bad-signature" });
  assert.equal(checkNoteSignatures(note, []).verified.length, 0);
});

test("texts with blank lines round-trip, and signatures can be added", () => {
  const text = "first\n\nthird\n\n";
  const note = signNote(text, [signerA]);
  assert.equal(parseNote(note).text, text);
  const both = addNoteSignatures(note, [signerB]);
  assert.ok(both.startsWith(note));
  assert.equal(verifyNote(both, [signerA.key, signerB.key]).verified.length, 2);
});

test("every malformed note is rejected as malformed", () => {
  const good = signNote("text\n", [signerA]);
  const sig = good.slice(good.indexOf("\u2014"));
  const bad = [
    "",
    "text\n",
    "text\n\n",
    good.slice(0, -1), // no final newline
    `text\n${sig}`, // no blank line
    `text\r\n\n${sig}`, // control character
    `te\txt\n\n${sig}`,
    `text\n\n${sig}garbage\n`,
    `text\n\n${sig}\n`, // blank line after the signatures
    `text\n\n${sig.replace("\u2014 ", "- ")}`,
    `text\n\n${sig.replace("\u2014 ", "\u2014")}`,
    `text\n\n${sig.replace(" ", "  ")}`,
    `text\n\n${sig.replace("example.com/a", "example.com/a extra")}`,
    `text\n\n${sig.replace("example.com/a", "a+b")}`,
    `text\n\n\u2014 example.com/a AAAAAA==\n`, // 4 bytes: a key ID and no signature
    `text\n\n\u2014 example.com/a ${"A".repeat(87)}\n`, // not canonical base64
    `text\n\n${sig.replace(/=\n$/, "\n")}`, // padding removed
    `text\n\n${sig.repeat(MAX_NOTE_SIGNATURES + 1)}`,
  ];
  for (const note of bad) assert.throws(() => parseNote(note), { name: "NoteError", reason: "malformed" }, JSON.stringify(note.slice(0, 60)));
  assert.throws(() => parseNote(new Uint8Array([0x74, 0xff, 0x0a, 0x0a])), { name: "NoteError", message: /UTF-8/ });
  assert.throws(() => signNote("no newline", [signerA]), { name: "NoteError", reason: "malformed" });
  assert.throws(() => signNote("text\n", []), { name: "NoteError", message: /at least one signature/ });
  assert.equal(parseNote(new TextEncoder().encode(good)).signatures.length, 1);
  assert.equal(parseNote(`text\n\n${sig.repeat(16)}`).signatures.length, 16);
});

test("two different keys with one name and ID are refused as ambiguous", () => {
  const twin = { ...signerA.key, publicKey: signerB.key.publicKey };
  assert.throws(() => verifyNote(signNote("x\n", [signerA]), [signerA.key, twin]), { name: "NoteError", reason: "bad-key", message: /share the name/ });
});
