// The puller's checkpoint checks and the fork locator on histories held in
// memory (no nodes): every way a peer's checkpoints can contradict the
// mirror or each other, including the ones a live peer is hard to make do
// (a replayed old checkpoint, a checkpoint signed by another key).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import {
  appendLeaves,
  consistencyProof,
  createMemoryTileStore,
  createNoteSigner,
  ed25519PrivateKeyFromSeed,
  emptyRightEdge,
  emptyRoot,
  leafHash,
  signCheckpoint,
  treeRoot,
  verifyForkEvidence,
} from "@annals/chain";
import { create } from "@bufbuild/protobuf";
import { federationV1 } from "@annals/proto";
import { ForkDetected, judgeCheckpoint, type AcceptedCheckpoint, type MirrorTree } from "./checkpoint-guard.js";
import { locateFork } from "./fork-locator.js";

const ORIGIN = "acme.example/annals/eu-1:orders";
const signer = createNoteSigner(ORIGIN, ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(3)));
const impostor = createNoteSigner(ORIGIN, ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(4)));
const key = signer.key;

const leaves = (label: string, count: number) => Array.from({ length: count }, (_, i) => new Uint8Array(createHash("sha256").update(`${label} ${i}`).digest()));

/** A history in memory: its tree, signed checkpoints, and what its Pull frames would carry. */
function history(data: readonly Uint8Array[]) {
  const store = createMemoryTileStore();
  store.applyUpdates(appendLeaves(emptyRightEdge(), data.map(leafHash)).updates);
  const root = (size: bigint) => (size === 0n ? Promise.resolve(emptyRoot()) : treeRoot(size, store.reader));
  const checkpoint = async (size: bigint, by = signer) => signCheckpoint({ origin: ORIGIN, size, rootHash: await root(size), extensions: [] }, [by]);
  const tree: MirrorTree = { root, consistencyProof: (from, to) => consistencyProof(from, to, store.reader) };
  /** The PullCheckpoint the serving side sends for its checkpoint of `size` (checkpoint-feed.ts). */
  const frame = async (size: bigint, position: bigint, previous: bigint, note?: string) =>
    create(federationV1.PullCheckpointSchema, {
      note: note ?? (await checkpoint(size)),
      position,
      positionProof: position > 0n && position < size ? await consistencyProof(position, size, store.reader) : [],
      previousSize: previous,
      previousProof: previous > 0n && previous < size ? await consistencyProof(previous, size, store.reader) : [],
      previousRoot: previous > 0n && previous < size ? await root(previous) : new Uint8Array(0),
    });
  const accepted = async (size: bigint): Promise<AcceptedCheckpoint> => ({ note: await checkpoint(size), size, root: await root(size) });
  return { root, checkpoint, tree, frame, accepted, size: BigInt(data.length) };
}

// The mirror holds history A to 100; the peer rewrote it after leaf 40 (history B).
const a = history(leaves("A", 120));
const b = history([...leaves("A", 120).slice(0, 40), ...leaves("B", 100)]);

async function fork(promise: Promise<unknown>): Promise<ForkDetected> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ForkDetected) return error;
    throw error;
  }
  assert.fail("no fork was detected");
}

describe("judgeCheckpoint", () => {
  test("the honest peer's checkpoints pass, below, at and above the mirror's size", async () => {
    const accepted = await a.accepted(60n);
    for (const size of [60n, 80n, 100n, 120n]) {
      const next = await judgeCheckpoint({ key, accepted, received: await a.frame(size, 100n, 60n), mirrorSize: 100n, mirror: a.tree });
      assert.equal(next.size, size);
    }
    // The first checkpoint, before any was accepted, and a mirror still empty.
    assert.equal((await judgeCheckpoint({ key, accepted: undefined, received: await a.frame(120n, 0n, 0n), mirrorSize: 0n, mirror: a.tree })).size, 120n);
  });

  test("a rewrite below the mirror's size and the accepted checkpoint: TRUNCATED, with evidence that proves it", async () => {
    const found = await fork(judgeCheckpoint({ key, accepted: await a.accepted(100n), received: await b.frame(70n, 100n, 100n), mirrorSize: 100n, mirror: a.tree }));
    assert.equal(found.finding, "TRUNCATED");
    assert.equal(found.proves, true);
    assert.equal(verifyForkEvidence(found.evidence, key).provesMisbehaviour, true);
  });

  test("same size, another root: SAME_SIZE", async () => {
    const found = await fork(judgeCheckpoint({ key, accepted: await a.accepted(100n), received: await b.frame(100n, 100n, 100n), mirrorSize: 100n, mirror: a.tree }));
    assert.deepEqual([found.finding, found.proves], ["SAME_SIZE", true]);
  });

  test("a larger checkpoint whose tree does not begin with the accepted one: INCONSISTENT (also from a power-of-two size)", async () => {
    for (const acceptedSize of [100n, 64n]) {
      const found = await fork(judgeCheckpoint({ key, accepted: await a.accepted(acceptedSize), received: await b.frame(130n, 100n, acceptedSize), mirrorSize: 100n, mirror: a.tree }));
      assert.deepEqual([found.finding, found.proves], ["INCONSISTENT", true], `from ${acceptedSize}`);
      assert.equal(verifyForkEvidence(found.evidence, key).provesMisbehaviour, true);
    }
  });

  test("a replayed older checkpoint of another history: TRUNCATED with proof; a replayed one of the same history: TRUNCATED without", async () => {
    const replayed = await b.checkpoint(50n);
    const found = await fork(judgeCheckpoint({ key, accepted: await a.accepted(100n), received: await a.frame(50n, 100n, 100n, replayed), mirrorSize: 100n, mirror: a.tree }));
    assert.deepEqual([found.finding, found.proves], ["TRUNCATED", true]);
    const stale = await fork(judgeCheckpoint({ key, accepted: await a.accepted(100n), received: await a.frame(50n, 100n, 100n), mirrorSize: 100n, mirror: a.tree }));
    assert.deepEqual([stale.finding, stale.proves], ["TRUNCATED", false]);
    assert.match(String((verifyForkEvidence(stale.evidence, key) as { reason?: string }).reason), /consistent/);
  });

  test("a checkpoint signed by a key that is not the registered one: UNVERIFIED_SIGNATURE", async () => {
    const note = await a.checkpoint(110n, impostor);
    const found = await fork(judgeCheckpoint({ key, accepted: await a.accepted(100n), received: await a.frame(110n, 100n, 100n, note), mirrorSize: 100n, mirror: a.tree }));
    assert.deepEqual([found.finding, found.evidence], ["UNVERIFIED_SIGNATURE", ""]);
  });

  test("the mirror's entries disagree with a checkpoint consistent with the accepted one: ROOT_MISMATCH, not provable by checkpoints", async () => {
    // The mirror took B's entries 41..100 after accepting A's checkpoint of 40, and A signs 90.
    const found = await fork(judgeCheckpoint({ key, accepted: await a.accepted(40n), received: await a.frame(90n, 100n, 40n), mirrorSize: 100n, mirror: b.tree }));
    assert.deepEqual([found.finding, found.proves], ["ROOT_MISMATCH", false]);
    // And ahead of the mirror: the proof from the mirror's size does not fit.
    const ahead = await fork(judgeCheckpoint({ key, accepted: await a.accepted(40n), received: await a.frame(120n, 100n, 40n), mirrorSize: 100n, mirror: b.tree }));
    assert.equal(ahead.finding, "ROOT_MISMATCH");
  });

  test("a proof that does not verify is a fork, and a missing one too", async () => {
    const frame = await b.frame(130n, 100n, 100n);
    frame.previousProof = frame.previousProof.map((hash) => hash.map((byte) => byte ^ 1));
    assert.equal((await fork(judgeCheckpoint({ key, accepted: await a.accepted(100n), received: frame, mirrorSize: 100n, mirror: a.tree }))).finding, "INCONSISTENT");
    const bare = await a.frame(110n, 100n, 0n);
    assert.equal((await fork(judgeCheckpoint({ key, accepted: await a.accepted(100n), received: bare, mirrorSize: 100n, mirror: a.tree }))).finding, "INCONSISTENT");
  });
});

describe("locateFork", () => {
  /** Probes answered by a peer holding `peer` (what the first frame of a Pull carries); counts the probes. */
  const prober = (peer: ReturnType<typeof history>) => {
    let probes = 0;
    return {
      count: () => probes,
      probe: async (previous: bigint, position: bigint) => {
        probes++;
        return peer.frame(peer.size, position, previous);
      },
    };
  };

  test("finds the first differing leaf, whatever the sizes", async () => {
    for (const [common, mirrorSize] of [[40, 100], [0, 100], [99, 100], [1, 7], [63, 64], [64, 65], [200, 1000]] as const) {
      const base = leaves("A", 1000);
      const mirror = history(base.slice(0, mirrorSize));
      const peer = history([...base.slice(0, common), ...leaves(`B${common}`, 50)]);
      const found = prober(peer);
      assert.equal(await locateFork({ key, probe: found.probe, mirror: mirror.tree, mirrorSize: BigInt(mirrorSize) }), BigInt(common + 1), `common ${common}, mirror ${mirrorSize}`);
      assert.ok(found.count() <= 2 + Math.ceil(Math.log(mirrorSize + 1) / Math.log(3)) + 1, `${found.count()} probes for ${mirrorSize}`);
    }
  });

  test("a truncated peer whose tree is a prefix of the mirror: the fork point is just past it", async () => {
    const truncated = history(leaves("A", 120).slice(0, 45));
    assert.equal(await locateFork({ key, probe: prober(truncated).probe, mirror: a.tree, mirrorSize: 100n }), 46n);
  });

  test("a peer that does not answer, or answers with another key's checkpoint: the first seq not shown to agree", async () => {
    assert.equal(await locateFork({ key, probe: async () => undefined, mirror: a.tree, mirrorSize: 100n, knownCommon: 10n }), 11n);
    const forged = async (previous: bigint, position: bigint) => ({ ...(await b.frame(b.size, position, previous)), note: await b.checkpoint(b.size, impostor) });
    assert.equal(await locateFork({ key, probe: forged, mirror: a.tree, mirrorSize: 100n }), 1n);
  });
});
