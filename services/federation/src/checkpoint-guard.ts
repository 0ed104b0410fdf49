// The puller's checks of a peer's signed checkpoints (docs/merkle.md,
// "Federation"). Each checkpoint that arrives with a Pull frame must verify
// under the peer's registered log key, extend the last checkpoint accepted
// (a consistency proof from it, with the root the peer's tree has there),
// and agree with the mirror's own tree (its root at the checkpoint's size, or
// a consistency proof from the mirror's size to the checkpoint's). Anything
// else is a fork: ForkDetected, with the evidence bundle that shows it when
// two signed checkpoints contradict each other.
import {
  bytesEqual,
  createForkEvidence,
  emptyRoot,
  openCheckpoint,
  verifyConsistency,
  verifyForkEvidence,
  type Checkpoint,
  type VerifierKey,
} from "@annals/chain";
import type { federationV1 } from "@annals/proto";

/** What the puller found (GetForkEvidenceResponse.detail starts with it). */
export type ForkFinding = "TRUNCATED" | "SAME_SIZE" | "INCONSISTENT" | "ROOT_MISMATCH" | "UNVERIFIED_SIGNATURE";

/** The last checkpoint of a peer's log that the puller accepted. */
export interface AcceptedCheckpoint {
  readonly note: string;
  readonly size: bigint;
  readonly root: Uint8Array;
}

/** The mirror's own tree, through the local log service. */
export interface MirrorTree {
  /** The root of the mirror's first `size` leaves (the empty tree's for 0). */
  root(size: bigint): Promise<Uint8Array>;
  /** The consistency proof between two sizes of the mirror's tree. */
  consistencyProof(from: bigint, to: bigint): Promise<Uint8Array[]>;
}

/** A fork: the replication stops with reason FORK. */
export class ForkDetected extends Error {
  override readonly name = "ForkDetected";
  constructor(
    readonly finding: ForkFinding,
    message: string,
    /** The fork-evidence bundle; "" when no two checkpoints of the log's key show the fork. */
    readonly evidence: string,
    /** Whether `evidence` proves misbehaviour by itself (verifyForkEvidence). */
    readonly proves: boolean,
    /** The checkpoint that showed the fork, when it verified. */
    readonly checkpoint: Checkpoint | undefined,
  ) {
    super(message);
  }
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex").slice(0, 16);
const isPowerOfTwo = (n: bigint) => n > 0n && (n & (n - 1n)) === 0n;

/** A bundle and its verdict; "" and false when the two notes cannot form one (other origins). */
function evidenceOf(key: VerifierKey, input: Parameters<typeof createForkEvidence>[0]): { evidence: string; proves: boolean } {
  try {
    const evidence = createForkEvidence(input);
    return { evidence, proves: verifyForkEvidence(evidence, key).provesMisbehaviour };
  } catch {
    return { evidence: "", proves: false };
  }
}

/**
 * Checks one checkpoint from a Pull frame. `mirrorSize` is the mirror's
 * tree size once every entry received before the frame is stored (it equals
 * the frame's position). Returns the checkpoint to accept; throws
 * ForkDetected.
 */
export async function judgeCheckpoint(input: {
  readonly key: VerifierKey;
  readonly accepted: AcceptedCheckpoint | undefined;
  readonly received: federationV1.PullCheckpoint;
  readonly mirrorSize: bigint;
  readonly mirror: MirrorTree;
}): Promise<AcceptedCheckpoint> {
  const { key, accepted, received, mirrorSize: h, mirror } = input;
  let checkpoint: Checkpoint;
  try {
    checkpoint = openCheckpoint(received.note, [key], { origin: key.name }).checkpoint;
  } catch (error) {
    throw new ForkDetected(
      "UNVERIFIED_SIGNATURE",
      `the peer's checkpoint does not verify under its registered log key ${key.name}: ${(error as Error).message}`,
      "",
      false,
      undefined,
    );
  }
  const n = checkpoint.size;
  const r = checkpoint.rootHash;
  const fork = (finding: ForkFinding, message: string, found: { evidence: string; proves: boolean } = { evidence: "", proves: false }) =>
    new ForkDetected(finding, message, found.evidence, found.proves, checkpoint);

  if (accepted) {
    const a = accepted.size;
    if (n === a && !bytesEqual(r, accepted.root)) {
      throw fork("SAME_SIZE", `the peer signed two roots for size ${n}: ${hex(accepted.root)}… accepted before, ${hex(r)}… now`, evidenceOf(key, { checkpoints: [accepted.note, received.note], proof: [] }));
    }
    if (n < a) {
      // Smaller than a checkpoint it signed before: the log lost entries. The
      // mirror holds the tree of the accepted checkpoint, so the path between
      // the two comes from the mirror's own tree.
      let found = { evidence: "", proves: false };
      if (a <= h && n > 0n) {
        const proof = await mirror.consistencyProof(n, a);
        found = evidenceOf(key, { checkpoints: [received.note, accepted.note], proof, ...(isPowerOfTwo(n) ? { prefixRoot: await mirror.root(n) } : {}) });
      }
      throw fork("TRUNCATED", `the peer's checkpoint has size ${n}, smaller than the size ${a} it signed before: its log was truncated or rolled back`, found);
    }
    if (n > a && a > 0n) {
      if (received.previousSize !== a || received.previousRoot.length === 0) {
        throw fork("INCONSISTENT", `the peer sent checkpoint ${n} without a consistency proof from the accepted size ${a}`);
      }
      try {
        verifyConsistency(a, n, received.previousRoot, r, received.previousProof);
      } catch (error) {
        throw fork("INCONSISTENT", `the peer's consistency proof from size ${a} to ${n} does not verify: ${(error as Error).message}`);
      }
      if (!bytesEqual(received.previousRoot, accepted.root)) {
        throw fork(
          "INCONSISTENT",
          `the peer's tree of size ${n} begins with ${a} leaves whose root is ${hex(received.previousRoot)}…, but the peer signed ${hex(accepted.root)}… for size ${a}`,
          evidenceOf(key, { checkpoints: [accepted.note, received.note], proof: received.previousProof, ...(isPowerOfTwo(a) ? { prefixRoot: received.previousRoot } : {}) }),
        );
      }
    }
  }
  // The mirror's own tree, built from the entries the peer sent, against the checkpoint.
  if (n <= h) {
    const mine = await mirror.root(n);
    if (!bytesEqual(mine, r)) throw fork("ROOT_MISMATCH", `the mirror's tree of size ${n} has root ${hex(mine)}…, the peer's checkpoint ${hex(r)}…`);
  } else {
    const mine = h === 0n ? emptyRoot() : await mirror.root(h);
    try {
      if (received.position !== h) throw new Error(`the proof starts at ${received.position}, the mirror holds ${h}`);
      verifyConsistency(h, n, mine, r, received.positionProof);
    } catch (error) {
      throw fork("ROOT_MISMATCH", `the mirror's tree of size ${h} is not a prefix of the peer's checkpoint of size ${n}: ${(error as Error).message}`);
    }
  }
  return { note: received.note, size: n, root: r };
}
