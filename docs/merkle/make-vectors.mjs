// Writes vectors.json from @annals/chain. Run from the repository root after a
// build: node docs/merkle/make-vectors.mjs. Every key comes from a fixed seed
// and Ed25519 is deterministic, so the output is the same on every run. The
// vectors are checked independently by check_vectors.py and by libs/chain's
// tests (merkle-vectors.test.ts).
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import {
  addNoteSignatures,
  appendLeaves,
  consistencyProof,
  cosignatureSigner,
  createCosigner,
  decideAddCheckpoint,
  formatAddCheckpointRequest,
  parseAddCheckpointRequest,
  witnessResponse,
  createForkEvidence,
  createMemoryTileStore,
  createNoteSigner,
  ed25519PrivateKeyFromSeed,
  emptyRightEdge,
  encodeEntryBundle,
  encodeRightEdge,
  formatTlogProof,
  formatVerifierKey,
  inclusionProof,
  leafHash,
  logOrigin,
  rightEdgeFromTiles,
  signCheckpoint,
  tilePath,
  entryBundlePath,
  treeRoot,
  treeTiles,
  verifyForkEvidence,
} from "@annals/chain";
// Published vectors that libs/chain's tests use; copied here so that check_vectors.py checks itself against them.
import { ARCHE_CHECKPOINT, C2SP_EXAMPLE, GO_NOTE_EXAMPLE } from "../../libs/chain/dist/note-vectors.js";
import { REFERENCE_CONSISTENCY_PROOFS, REFERENCE_INCLUSION_PROOFS, REFERENCE_LEAVES, REFERENCE_ROOTS } from "../../libs/chain/dist/rfc6962-vectors.js";

const hex = (bytes) => Buffer.from(bytes).toString("hex");
const b64 = (bytes) => Buffer.from(bytes).toString("base64");
const sha256 = (text) => new Uint8Array(createHash("sha256").update(text).digest());

/** A tree of leaves (data), its tiles, and checkpoints signed by `signer`. */
function tree(leaves, signer, origin) {
  const store = createMemoryTileStore();
  store.applyUpdates(appendLeaves(emptyRightEdge(), leaves.map(leafHash)).updates);
  const root = (size) => treeRoot(BigInt(size), store.reader);
  return {
    leaves,
    store,
    root,
    checkpoint: async (size) => signCheckpoint({ origin, size: BigInt(size), rootHash: await root(size), extensions: [] }, [signer]),
    inclusion: async (index, size) => (await inclusionProof(BigInt(index), BigInt(size), store.reader)).map(hex),
    consistency: async (m, n) => (await consistencyProof(BigInt(m), BigInt(n), store.reader)).map(hex),
  };
}

const nodeId = "spiffe://acme.example/annals/eu-1";
const logId = "orders";
const origin = logOrigin(nodeId, logId);
const logSeed = sha256("annals merkle vectors: log signing key");
const logSigner = createNoteSigner(origin, ed25519PrivateKeyFromSeed(logSeed));
const witnessName = "acme.example/annals/eu-2";
const witnessSeed = sha256("annals merkle vectors: witness key");
const cosigner = createCosigner(witnessName, ed25519PrivateKeyFromSeed(witnessSeed));
const strangerSeed = sha256("annals merkle vectors: a key that is not the log's");
const stranger = createNoteSigner(origin, ed25519PrivateKeyFromSeed(strangerSeed));
const cosignedAt = 1767225600n; // 2026-01-01T00:00:00Z

// 1. The tree over the four entries of docs/hash-chain/vectors.json: the worked example of docs/merkle.md.
const chainVectors = JSON.parse(readFileSync(new URL("../hash-chain/vectors.json", import.meta.url), "utf8"));
// The first four: the worked example of docs/merkle.md is a tree of four.
const chainEntries = chainVectors.chains[0].entries.slice(0, 4);
const small = tree(chainEntries.map((entry) => new Uint8Array(Buffer.from(entry.checksum, "hex"))), logSigner, origin);
const smallCheckpoint = await small.checkpoint(4);
const example = {
  description: "The tree of the four entries of docs/hash-chain/vectors.json (leaf for seq s = its checksum's 32 bytes, at index s-1).",
  leaves: chainEntries.map((entry) => ({ seq: entry.seq, checksum: entry.checksum, leaf_hash: hex(leafHash(Buffer.from(entry.checksum, "hex"))) })),
  roots: await Promise.all([0, 1, 2, 3, 4].map(async (size) => ({ size, root: hex(await small.root(size)) }))),
  checkpoint_note: smallCheckpoint,
  receipt: {
    seq: "2",
    leaf: chainEntries[1].checksum,
    proof: formatTlogProof({ index: 1n, hashes: await inclusionProof(1n, 4n, small.store.reader), checkpoint: smallCheckpoint }),
  },
  consistency: { m: 3, n: 4, proof: await small.consistency(3, 4) },
};

// 2. A log of 300 leaves (stand-ins for checksums): every root, proofs across tile boundaries, its tiles.
const SIZE = 300;
const leaves = Array.from({ length: SIZE }, (_, i) => sha256(`annals merkle vector leaf ${i + 1}`));
const main = tree(leaves, logSigner, origin);
const inclusion = [];
for (const [index, size] of [[0, 1], [0, 2], [1, 2], [2, 3], [5, 8], [0, 255], [254, 255], [255, 256], [0, 257], [256, 257], [100, 300], [255, 300], [256, 300], [299, 300]]) {
  inclusion.push({ index, size, proof: await main.inclusion(index, size) });
}
const consistency = [];
for (const [m, n] of [[1, 2], [1, 3], [2, 3], [3, 7], [4, 7], [6, 8], [7, 8], [100, 300], [128, 300], [255, 256], [256, 257], [256, 300], [257, 300], [299, 300], [300, 300], [0, 300]]) {
  consistency.push({ m, n, proof: await main.consistency(m, n) });
}
const tiles = [...treeTiles(BigInt(SIZE))].map((tile) => {
  const bytes = main.store.get(tile.level, tile.index).subarray(0, tile.width * 32);
  return { path: tilePath(tile), hex: hex(bytes) };
});
const bundles = [0n, 1n].map((index) => {
  const width = Math.min(256, SIZE - Number(index) * 256);
  return { path: entryBundlePath({ index, width }), hex: hex(encodeEntryBundle(leaves.slice(Number(index) * 256, Number(index) * 256 + width))) };
});
const checkpoints = [];
for (const size of [0, 1, 255, 256, 300]) checkpoints.push({ size, note: await main.checkpoint(size) });
const cosignedNote = addNoteSignatures(await main.checkpoint(SIZE), [cosignatureSigner(cosigner, cosignedAt)]);
const log = {
  node_id: nodeId,
  log_id: logId,
  origin,
  signing_key_seed: hex(logSeed),
  verifier_key: formatVerifierKey(logSigner.key),
  leaves: leaves.map(hex),
  roots: await Promise.all(Array.from({ length: SIZE + 1 }, async (_, size) => hex(await main.root(size)))),
  inclusion,
  consistency,
  tiles,
  entry_bundles: bundles,
  right_edge: hex(encodeRightEdge(await rightEdgeFromTiles(BigInt(SIZE), main.store.reader))),
  checkpoints,
};

// 3. A receipt (tlog-proof) for seq 200 in the cosigned checkpoint of size 300.
const receipt = {
  seq: "200",
  leaf: hex(leaves[199]),
  verifier_key: formatVerifierKey(logSigner.key),
  witness_key: formatVerifierKey(cosigner.key),
  proof: formatTlogProof({ index: 199n, hashes: await inclusionProof(199n, BigInt(SIZE), main.store.reader), checkpoint: cosignedNote }),
};

// 4. A witness cosignature (tlog-cosignature, Ed25519) on that checkpoint.
const cosignature = {
  witness_name: witnessName,
  witness_key_seed: hex(witnessSeed),
  verifier_key: formatVerifierKey(cosigner.key),
  timestamp: cosignedAt.toString(),
  signed_message: `cosignature/v1\ntime ${cosignedAt}\n${cosignedNote.slice(0, cosignedNote.indexOf("\n\n") + 1)}`,
  note: cosignedNote,
};

// 5. Fork evidence: a second history that shares the first 150 leaves, signed with the same key.
const rewritten = tree([...leaves.slice(0, 150), ...Array.from({ length: 170 }, (_, i) => sha256(`annals merkle vector rewritten leaf ${151 + i}`))], logSigner, origin);
const vkey = formatVerifierKey(logSigner.key);
const forkCases = [
  ["rewrite: the larger checkpoint's tree has other leaves below the smaller size", vkey, { checkpoints: [await main.checkpoint(200), await rewritten.checkpoint(230)], proof: await consistencyProof(200n, 230n, rewritten.store.reader) }],
  ["truncation: the log signed a smaller tree than one it signed before", vkey, { checkpoints: [await main.checkpoint(250), await rewritten.checkpoint(170)], proof: await consistencyProof(170n, 250n, main.store.reader) }],
  ["same size, two roots", vkey, { checkpoints: [await main.checkpoint(160), await rewritten.checkpoint(160)], proof: [] }],
  ["the smaller size is a power of two (256): the path starts with the larger tree's root of its first 256 leaves", vkey, { checkpoints: [await main.checkpoint(256), await rewritten.checkpoint(300)], proof: await consistencyProof(256n, 300n, rewritten.store.reader), prefixRoot: await rewritten.root(256) }],
  ["consistent checkpoints prove nothing", vkey, { checkpoints: [await main.checkpoint(100), await main.checkpoint(300)], proof: await consistencyProof(100n, 300n, main.store.reader) }],
  ["a wrong key proves nothing", formatVerifierKey(stranger.key), { checkpoints: [await main.checkpoint(200), await rewritten.checkpoint(230)], proof: await consistencyProof(200n, 230n, rewritten.store.reader) }],
];
const fork_evidence = forkCases.map(([name, verifierKey, input]) => {
  const bundle = createForkEvidence(input);
  const verdict = verifyForkEvidence(bundle, verifierKey === vkey ? logSigner.key : stranger.key);
  return { name, verifier_key: verifierKey, bundle, proves_misbehaviour: verdict.provesMisbehaviour, ...(verdict.provesMisbehaviour ? { kind: verdict.kind } : {}) };
});
// A bundle whose path was changed after the fact: the path no longer derives the larger root.
const tampered = fork_evidence[0].bundle.replace(/\n([A-Za-z0-9+/])/, (_, c) => `\n${c === "A" ? "B" : "A"}`);
fork_evidence.push({ name: "a changed path proves nothing", verifier_key: vkey, bundle: tampered, proves_misbehaviour: verifyForkEvidence(tampered, logSigner.key).provesMisbehaviour });

// 6. Witnessing (tlog-witness add-checkpoint, 2 of 3 witnesses): the requests a log sends, the witnesses'
// answers, and the note it publishes (its checkpoint with the cosignature lines, sorted). The federation
// service's witness answers these requests with these exact lines (witness.test.ts "the vectors").
const witnessedOrigin = logOrigin(nodeId, "witnessed");
const witnessedSigner = createNoteSigner(witnessedOrigin, ed25519PrivateKeyFromSeed(logSeed));
const witnessedTree = tree(leaves, witnessedSigner, witnessedOrigin);
const quorum = [1, 2, 3].map((n) => {
  const seed = sha256(`annals merkle vectors: witness ${n}`);
  return { seed, cosigner: createCosigner(`acme.example/annals/w${n}`, ed25519PrivateKeyFromSeed(seed)) };
});
const witnessState = new Map();
async function addCheckpoint(witness, oldSize, size, timestamp) {
  const body = formatAddCheckpointRequest({ oldSize: BigInt(oldSize), proof: oldSize === 0 ? [] : await consistencyProof(BigInt(oldSize), BigInt(size), witnessedTree.store.reader), note: await witnessedTree.checkpoint(size) });
  const decision = decideAddCheckpoint(parseAddCheckpointRequest(body), [witnessedSigner.key], witnessState.get(witness) ?? null);
  if (decision.status !== 200) throw new Error(`witness ${witness} answered ${decision.status}: ${decision.reason}`);
  witnessState.set(witness, { size: decision.checkpoint.size, rootHash: decision.checkpoint.rootHash });
  return { witness, timestamp: timestamp.toString(), body, response: witnessResponse(decision, quorum[witness].cosigner, timestamp) };
}
const witnessRequests = [await addCheckpoint(0, 0, 256, cosignedAt), await addCheckpoint(0, 256, 300, cosignedAt + 60n), await addCheckpoint(1, 0, 300, cosignedAt + 61n)];
const witnessedLines = witnessRequests.slice(1).map((request) => request.response.slice(0, -1)).sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
const witnessed = {
  description: "A log's checkpoint of size 300 witnessed by 2 of 3 witnesses: add-checkpoint bodies (witness 0 first at 256, then from 256 to 300 with a consistency proof; witness 1 from 0), their answers, and the published note.",
  origin: witnessedOrigin,
  verifier_key: formatVerifierKey(witnessedSigner.key),
  threshold: 2,
  witnesses: quorum.map((witness) => ({ verifier_key: formatVerifierKey(witness.cosigner.key), key_seed: hex(witness.seed) })),
  requests: witnessRequests,
  published_note: (await witnessedTree.checkpoint(300)) + witnessedLines.map((line) => `${line}\n`).join(""),
};

const published = {
  description: "Published by others (transparency-dev/merkle, c2sp.org/signed-note, golang.org/x/mod/sumdb/note, a checkpoint of the CT log arche2025h1 cosigned by the witness remora.n621.de): a check of the checkers.",
  rfc6962: { leaves: REFERENCE_LEAVES, roots: REFERENCE_ROOTS, inclusion: REFERENCE_INCLUSION_PROOFS, consistency: REFERENCE_CONSISTENCY_PROOFS },
  notes: [
    { verifier_key: C2SP_EXAMPLE.vkey, note: C2SP_EXAMPLE.note },
    { verifier_key: GO_NOTE_EXAMPLE.vkey, note: GO_NOTE_EXAMPLE.note },
    { verifier_key: ARCHE_CHECKPOINT.logVkey, note: ARCHE_CHECKPOINT.note },
  ],
  cosigned_checkpoint: { witness_key: ARCHE_CHECKPOINT.witnessVkey, timestamp: ARCHE_CHECKPOINT.witnessTimestamp.toString(), note: ARCHE_CHECKPOINT.note },
};

const vectors = {
  description: "Test vectors for docs/merkle.md. Checked by libs/chain (merkle-vectors.test.ts) and docs/merkle/check_vectors.py. Generated by make-vectors.mjs from fixed seeds.",
  example,
  log,
  receipt,
  cosignature,
  fork_evidence,
  witnessed,
  published,
};
writeFileSync(new URL("./vectors.json", import.meta.url), JSON.stringify(vectors, null, 2) + "\n");
console.log(`vectors.json: ${SIZE} leaves, ${inclusion.length} inclusion and ${consistency.length} consistency proofs, ${tiles.length} tiles, ${fork_evidence.length} fork-evidence bundles`);
