// Where a fork starts: the first seq whose leaf differs between the mirror
// and the peer's signed tree. P(k) = "the peer's tree begins with the
// mirror's first k leaves" holds for k = 0 and, once false, stays false for
// every larger k, so the fork point is the largest k with P(k), plus one.
// Each probe is one Pull whose first frame carries the peer's latest
// checkpoint with two consistency proofs (PullCheckpoint): one from
// checkpoint_size, with the peer's root there, and one from after_seq. So
// one call tests two sizes, and the search splits the range in three.
import { bytesEqual, openCheckpoint, verifyConsistency, type VerifierKey } from "@annals/chain";
import type { federationV1 } from "@annals/proto";
import type { MirrorTree } from "./checkpoint-guard.js";

/** Asks the peer for its latest checkpoint with proofs from `previous` and from `position` (a Pull's first frame). */
export type ForkProbe = (previous: bigint, position: bigint) => Promise<federationV1.PullCheckpoint | undefined>;

/** Most probes one search makes (about 1 + log₃ of the mirror's size: 14 for a million leaves). */
const MAX_PROBES = 40;

/**
 * The fork point between the mirror (of `mirrorSize` leaves) and the peer's
 * current signed tree; `knownCommon` is a size already known to agree (0 at
 * worst). When a probe fails or does not verify, the search stops and the
 * answer is the first seq not shown to agree.
 */
export async function locateFork(input: {
  readonly key: VerifierKey;
  readonly probe: ForkProbe;
  readonly mirror: MirrorTree;
  readonly mirrorSize: bigint;
  readonly knownCommon?: bigint;
}): Promise<bigint> {
  const { key, probe, mirror, mirrorSize } = input;
  let low = input.knownCommon ?? 0n;
  /** Sizes tested in one probe: whether the peer's tree begins with the mirror's first k leaves (undefined: not told). */
  const test = async (previous: bigint, position: bigint): Promise<{ size: bigint; agrees: (k: bigint) => Promise<boolean | undefined> } | undefined> => {
    const answer = await probe(previous, position).catch(() => undefined);
    if (!answer) return undefined;
    let size: bigint;
    let root: Uint8Array;
    try {
      ({ size, rootHash: root } = openCheckpoint(answer.note, [key], { origin: key.name }).checkpoint);
    } catch {
      return undefined;
    }
    const agrees = async (k: bigint): Promise<boolean | undefined> => {
      if (k === 0n) return true;
      if (k > size || k > mirrorSize) return undefined;
      const mine = await mirror.root(k);
      if (k === size) return bytesEqual(mine, root);
      try {
        if (k === previous && answer.previousSize === k && answer.previousRoot.length > 0) {
          verifyConsistency(k, size, answer.previousRoot, root, answer.previousProof);
          return bytesEqual(answer.previousRoot, mine);
        }
        if (k === position && answer.position === k) {
          verifyConsistency(k, size, mine, root, answer.positionProof);
          return true;
        }
      } catch {
        return false;
      }
      return undefined;
    };
    return { size, agrees };
  };
  // First the largest size both hold: if they agree there, the fork is past it.
  const first = await test(mirrorSize, mirrorSize);
  if (!first) return low + 1n;
  let high = first.size < mirrorSize ? first.size : mirrorSize;
  const top = await first.agrees(high);
  if (top === undefined) {
    // The peer's tree is smaller than the mirror: its own root decides.
    const atPeerSize = await first.agrees(first.size);
    if (atPeerSize) return first.size + 1n;
    high = first.size;
  } else if (top) {
    return high + 1n;
  }
  // Now P(low) and not P(high).
  for (let probes = 1; high - low > 1n && probes < MAX_PROBES; probes++) {
    const third = (high - low) / 3n || 1n;
    const one = low + third;
    const two = one + third < high ? one + third : one;
    const step = await test(one, two);
    if (!step) break;
    const [p1, p2] = [await step.agrees(one), await step.agrees(two)];
    if (p1 === undefined || p2 === undefined) break;
    if (!p1) high = one;
    else if (!p2) [low, high] = [one, two];
    else low = two;
  }
  return low + 1n;
}
