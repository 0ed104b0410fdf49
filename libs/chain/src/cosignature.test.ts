import assert from "node:assert/strict";
import { test } from "node:test";
import { fromUtf8 } from "./bytes.js";
import { MAX_COSIGNATURE_TIMESTAMP, cosignatureMessage, cosignatureSigner, createCosigner, verifyCosignature } from "./cosignature.js";
import { ARCHE_CHECKPOINT } from "./note-vectors.js";
import { addNoteSignatures, checkNoteSignatures, createNoteSigner, parseNote, signNote, verifyNote } from "./signed-note.js";
import { SIGNATURE_TYPE_COSIGNATURE_V1, ed25519PrivateKeyFromSeed, noteKeyId, parseVerifierKey } from "./verifier-key.js";

const witnessKey = ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(3));
const cosigner = createCosigner("witness.example/w1", witnessKey);
const checkpointText = "example.com/log\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";

test("the signed message is the tlog-cosignature example's form", () => {
  const message = fromUtf8(cosignatureMessage("example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n", 1679315147n));
  assert.equal(message, "cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n");
});

test("a published witness cosignature of a real checkpoint verifies, with its timestamp", () => {
  const witness = parseVerifierKey(ARCHE_CHECKPOINT.witnessVkey);
  const { verified, unknown } = checkNoteSignatures(ARCHE_CHECKPOINT.note, [witness]);
  assert.equal(verified.length, 1);
  assert.equal(verified[0]!.timestamp, ARCHE_CHECKPOINT.witnessTimestamp);
  assert.equal(unknown.length, 5);
  const tampered = ARCHE_CHECKPOINT.note.replace("1432088532", "1432088533");
  assert.throws(() => checkNoteSignatures(tampered, [witness]), { name: "NoteError", reason: "bad-signature" });
});

test("cosignatures use key type 0x04, carry their timestamp, and verify only for that text and time", () => {
  assert.equal(cosigner.key.type, SIGNATURE_TYPE_COSIGNATURE_V1);
  assert.equal(cosigner.key.keyId, noteKeyId("witness.example/w1", 0x04, cosigner.key.publicKey));
  // The same key as a plain note signer has another key ID: a cosignature never passes for a log signature.
  assert.notEqual(createNoteSigner("witness.example/w1", witnessKey).key.keyId, cosigner.key.keyId);
  const signature = cosigner.sign(checkpointText, 1_700_000_000n);
  assert.equal(signature.length, 72);
  assert.equal(verifyCosignature(cosigner.key, checkpointText, signature), 1_700_000_000n);
  assert.equal(verifyCosignature(cosigner.key, checkpointText.replace("5", "6"), signature), null);
  const later = signature.slice();
  later[7]! ^= 1;
  assert.equal(verifyCosignature(cosigner.key, checkpointText, later), null);
  assert.equal(verifyCosignature(cosigner.key, checkpointText, signature.subarray(0, 71)), null);
  const huge = signature.slice();
  huge[0] = 0x80;
  assert.equal(verifyCosignature(cosigner.key, checkpointText, huge), null);
});

test("a cosignature added to a log's note verifies with the witness key and is ignored by the log key", () => {
  const log = createNoteSigner("example.com/log", ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(4)));
  const note = addNoteSignatures(signNote(checkpointText, [log]), [cosignatureSigner(cosigner, 1_700_000_001n)]);
  assert.equal(parseNote(note).signatures.length, 2);
  assert.equal(verifyNote(note, [log.key]).unknown.length, 1);
  assert.equal(verifyNote(note, [cosigner.key]).verified[0]!.timestamp, 1_700_000_001n);
});

test("timestamps outside 0 to 2^63-1 are refused", () => {
  assert.throws(() => cosigner.sign(checkpointText, MAX_COSIGNATURE_TIMESTAMP + 1n), { name: "NoteError", reason: "malformed" });
  assert.throws(() => cosignatureSigner(cosigner, -1n), { name: "NoteError" });
  assert.equal(verifyCosignature(cosigner.key, checkpointText, cosigner.sign(checkpointText, MAX_COSIGNATURE_TIMESTAMP)), MAX_COSIGNATURE_TIMESTAMP);
});
