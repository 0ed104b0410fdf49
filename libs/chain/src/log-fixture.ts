// A small deterministic log for the tests of receipts, witnesses and fork
// evidence: leaves that look like chain checksums, its tiles in memory, a
// signing key from a fixed seed, and checkpoints at any size. Not exported
// from index.ts.
import { createHash } from "node:crypto";
import { signCheckpoint } from "./checkpoint.js";
import { leafHash } from "./merkle-hash.js";
import { createMemoryTileStore, type MemoryTileStore } from "./memory-tile-store.js";
import { emptyRightEdge } from "./right-edge.js";
import { createNoteSigner, type NoteSigner } from "./signed-note.js";
import { appendLeaves } from "./tile-append.js";
import { treeRoot } from "./tile-proofs.js";
import { ed25519PrivateKeyFromSeed } from "./verifier-key.js";

export interface TestLog {
  readonly origin: string;
  readonly signer: NoteSigner;
  /** Leaf data: 32 bytes each, like an entry's checksum. */
  readonly leaves: readonly Uint8Array[];
  readonly store: MemoryTileStore;
  root(size: bigint): Promise<Uint8Array>;
  /** The log's signed checkpoint note at `size`. */
  checkpoint(size: bigint): Promise<string>;
}

/** `count` leaves of 32 bytes derived from `label`. */
export function testLeaves(label: string, count: number): Uint8Array[] {
  return Array.from({ length: count }, (_, i) => new Uint8Array(createHash("sha256").update(`${label} ${i}`).digest()));
}

/** A log of the given leaves, signed with a key from seed byte `seedByte` (the same byte gives the same key). */
export function createTestLog(leaves: readonly Uint8Array[], seedByte = 7, origin = "acme.example/annals/eu-1:orders"): TestLog {
  const store = createMemoryTileStore();
  store.applyUpdates(appendLeaves(emptyRightEdge(), leaves.map(leafHash)).updates);
  const signer = createNoteSigner(origin, ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(seedByte)));
  const root = (size: bigint) => treeRoot(size, store.reader);
  return {
    origin,
    signer,
    leaves,
    store,
    root,
    checkpoint: async (size) => signCheckpoint({ origin, size, rootHash: await root(size), extensions: [] }, [signer]),
  };
}
