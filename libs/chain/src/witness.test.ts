import assert from "node:assert/strict";
import { test } from "node:test";
import { toBase64 } from "./bytes.js";
import { parseCheckpointNote, signCheckpoint } from "./checkpoint.js";
import { emptyRoot } from "./merkle-hash.js";
import { createCosigner } from "./cosignature.js";
import { createNoteSigner, verifyNote } from "./signed-note.js";
import { createTestLog, testLeaves } from "./log-fixture.js";
import { consistencyProof } from "./tile-proofs.js";
import { ed25519PrivateKeyFromSeed } from "./verifier-key.js";
import {
  MAX_WITNESS_PROOF_LINES,
  decideAddCheckpoint,
  formatAddCheckpointRequest,
  formatConflictBody,
  parseAddCheckpointRequest,
  witnessResponse,
  type WitnessState,
} from "./witness.js";

const log = createTestLog(testLeaves("witnessed", 200));
const keys = [log.signer.key];

async function request(oldSize: bigint, size: bigint, note?: string) {
  const proof = oldSize === 0n ? [] : await consistencyProof(oldSize, size, log.store.reader);
  return parseAddCheckpointRequest(formatAddCheckpointRequest({ oldSize, proof, note: note ?? (await log.checkpoint(size)) }));
}

const stateAt = async (size: bigint): Promise<WitnessState> => ({ size, rootHash: await log.root(size) });

test("the tlog-witness example body parses", () => {
  const body = [
    "old 20852014",
    "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=",
    "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=",
    "5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=",
    "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=",
    "",
    "example.com/behind-the-sofa",
    "20852163",
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=",
    "",
    "\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=",
    "\u2014 example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=",
    "",
  ].join("\n");
  const parsed = parseAddCheckpointRequest(body);
  assert.equal(parsed.oldSize, 20852014n);
  assert.equal(parsed.proof.length, 4);
  assert.equal(parsed.checkpoint.origin, "example.com/behind-the-sofa");
  assert.equal(parsed.checkpoint.size, 20852163n);
  assert.equal(formatAddCheckpointRequest(parsed), body);
});

test("a witness accepts the first checkpoint from 0, then consistent growth, and the same checkpoint again", async () => {
  const first = decideAddCheckpoint(await request(0n, 50n), keys, null);
  assert.equal(first.status, 200);
  assert.equal(first.status === 200 && first.checkpoint.size, 50n);
  // The 200 body is the cosignature line; appended to the checkpoint it verifies under the witness key.
  const cosigner = createCosigner("acme.example/annals/eu-2", ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(31)));
  assert.ok(first.status === 200);
  const body = witnessResponse(first, cosigner, 1_700_000_000n);
  assert.match(body, /^\u2014 acme\.example\/annals\/eu-2 [A-Za-z0-9+/]+=*\n$/);
  assert.equal(verifyNote((await log.checkpoint(50n)) + body, [cosigner.key]).verified[0]!.timestamp, 1_700_000_000n);
  assert.throws(() => witnessResponse(first, cosigner, 0n), { name: "NoteError", message: /not be zero/ });
  assert.equal((decideAddCheckpoint(await request(50n, 120n), keys, await stateAt(50n))).status, 200);
  assert.equal((decideAddCheckpoint(await request(120n, 120n), keys, await stateAt(120n))).status, 200);
  const empty = signCheckpoint({ origin: log.origin, size: 0n, rootHash: emptyRoot(), extensions: [] }, [log.signer]);
  assert.equal(decideAddCheckpoint(await request(0n, 0n, empty), keys, null).status, 200);
});

test("each of the spec's refusals", async () => {
  const at50 = await stateAt(50n);
  const decide = async (req: ReturnType<typeof request>, logKeys = keys, state: WitnessState | null = at50) => decideAddCheckpoint(await req, logKeys, state);
  assert.equal((await decide(request(50n, 120n), [])).status, 404);
  const stranger = createNoteSigner(log.origin, ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(66)));
  assert.equal((await decide(request(50n, 120n), [stranger.key])).status, 403);
  const forged = (await log.checkpoint(120n)).replace(/ [A-Za-z0-9+/]{10}/, (m) => m.slice(0, -1) + (m.endsWith("A") ? "B" : "A"));
  assert.equal((await decide(request(50n, 120n, forged))).status, 403);
  const tooOld = await decide(request(50n, 120n).then((r) => ({ ...r, oldSize: 121n })));
  assert.equal(tooOld.status, 400);
  const conflict = await decide(request(40n, 120n));
  assert.deepEqual([conflict.status, conflict.status !== 200 && conflict.latestSize], [409, 50n]);
  assert.equal(formatConflictBody(50n), "50\n");
  assert.equal(decideAddCheckpoint({ ...(await request(0n, 120n)), proof: [emptyRoot()] }, keys, null).status, 422);
  const badProof = await request(50n, 120n);
  for (let i = 0; i < badProof.proof.length; i++) {
    const proof = badProof.proof.map((hash, j) => (j === i ? hash.map((b, k) => (k === 31 ? b ^ 0x80 : b)) : hash));
    assert.equal(decideAddCheckpoint({ ...badProof, proof }, keys, at50).status, 422, `hash ${i}`);
  }
  assert.equal(decideAddCheckpoint({ ...badProof, proof: badProof.proof.slice(0, -1) }, keys, at50).status, 422);
  // The stored checkpoint at 50 differs from this log's: the proof cannot verify against it.
  const otherHistory = { size: 50n, rootHash: await createTestLog(testLeaves("other", 50)).root(50n) };
  assert.equal(decideAddCheckpoint(badProof, keys, otherHistory).status, 422);
  const sameSizeOtherRoot = decideAddCheckpoint(await request(50n, 50n), keys, otherHistory);
  assert.deepEqual([sameSizeOtherRoot.status, sameSizeOtherRoot.status !== 200 && sameSizeOtherRoot.reason], [422, "same size as the stored checkpoint, different root"]);
  const badEmpty = signCheckpoint({ origin: log.origin, size: 0n, rootHash: await log.root(1n), extensions: [] }, [log.signer]);
  assert.equal(decideAddCheckpoint(await request(0n, 0n, badEmpty), keys, null).status, 422);
});

test("malformed bodies are refused before any decision (400)", async () => {
  const good = formatAddCheckpointRequest({ oldSize: 50n, proof: await consistencyProof(50n, 120n, log.store.reader), note: await log.checkpoint(120n) });
  const hashLine = good.split("\n")[1]!;
  const bad = [
    "",
    good.replace("old 50", "old 050"),
    good.replace("old 50", "old -50"),
    good.replace("old 50", "old  50"),
    good.replace("old 50", "new 50"),
    good.replace("old 50", "old 9223372036854775808"),
    good.replace(hashLine, hashLine.slice(0, -2)),
    good.replace(hashLine, `${hashLine}x`),
    good.slice(0, good.indexOf("\n\n")),
    good.replace(/\n\n(.*)$/s, (_, note: string) => `\n\n${note.replace(/\n\n/, "\n")}`),
    good.replace(/\n\n.*\n(\d+)\n/s, (m) => m.replace(/\n(\d+)\n$/, "\nx\n")),
    [`old 1`, ...Array.from({ length: MAX_WITNESS_PROOF_LINES + 1 }, () => hashLine), "", ""].join("\n") + (await log.checkpoint(120n)),
  ];
  for (const body of bad) assert.throws(() => parseAddCheckpointRequest(body), { name: "WitnessRequestError", reason: "malformed" }, JSON.stringify(body.slice(0, 60)));
  assert.equal(parseCheckpointNote(parseAddCheckpointRequest(good).note).size, 120n);
  assert.ok(good.includes(`\n${toBase64((await consistencyProof(50n, 120n, log.store.reader))[0]!)}\n`));
});
