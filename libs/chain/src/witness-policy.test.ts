import assert from "node:assert/strict";
import { test } from "node:test";
import { createCosigner, cosignatureSigner } from "./cosignature.js";
import { createTestLog, testLeaves } from "./log-fixture.js";
import { addNoteSignatures } from "./signed-note.js";
import { ed25519PrivateKeyFromSeed } from "./verifier-key.js";
import { WitnessPolicyError, verifyCosignedCheckpoint } from "./witness-policy.js";

const log = createTestLog(testLeaves("policy", 20));
const witnesses = [1, 2, 3].map((n) => createCosigner(`w${n}.example/w`, ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(100 + n))));
const keys = witnesses.map((witness) => witness.key);

test("a checkpoint meets a k-of-N policy with k cosignatures, not with fewer; other keys' lines are ignored", async () => {
  const note = await log.checkpoint(20n);
  const two = addNoteSignatures(note, [cosignatureSigner(witnesses[0]!, 1_700_000_000n), cosignatureSigner(witnesses[2]!, 1_700_000_001n)]);
  const opened = verifyCosignedCheckpoint(two, log.signer.key, { keys, threshold: 2 });
  assert.equal(opened.checkpoint.size, 20n);
  assert.deepEqual(opened.cosignatures.map((c) => [c.key.name, c.timestamp]), [["w1.example/w", 1_700_000_000n], ["w3.example/w", 1_700_000_001n]]);
  assert.throws(() => verifyCosignedCheckpoint(two, log.signer.key, { keys, threshold: 3 }), (error: unknown) => error instanceof WitnessPolicyError && error.reason === "quorum");
  // The same witness twice is one vote.
  const twice = addNoteSignatures(note, [cosignatureSigner(witnesses[0]!, 1n), cosignatureSigner(witnesses[0]!, 2n)]);
  assert.throws(() => verifyCosignedCheckpoint(twice, log.signer.key, { keys, threshold: 2 }), WitnessPolicyError);
  // A stranger's cosignature does not count and does not fail the note.
  const stranger = createCosigner("stranger.example/w", ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(99)));
  const withStranger = addNoteSignatures(two, [cosignatureSigner(stranger, 5n)]);
  assert.equal(verifyCosignedCheckpoint(withStranger, log.signer.key, { keys, threshold: 2 }).cosignatures.length, 2);
});

test("a cosignature line naming a policy key that does not verify rejects the note; a log key is not a witness key", async () => {
  const note = await log.checkpoint(20n);
  const cosigned = addNoteSignatures(note, [cosignatureSigner(witnesses[1]!, 1_700_000_000n)]);
  // Another checkpoint's cosignature moved onto this one.
  const other = addNoteSignatures(await log.checkpoint(19n), [cosignatureSigner(witnesses[1]!, 1_700_000_000n)]);
  const moved = note + other.slice(other.lastIndexOf("\u2014 w2"));
  assert.notEqual(moved, cosigned);
  assert.throws(() => verifyCosignedCheckpoint(moved, log.signer.key, { keys, threshold: 1 }), (error: unknown) => error instanceof WitnessPolicyError && error.reason === "bad-cosignature");
  assert.throws(() => verifyCosignedCheckpoint(cosigned, log.signer.key, { keys: [log.signer.key], threshold: 1 }), (error: unknown) => error instanceof WitnessPolicyError && error.reason === "bad-policy");
});
