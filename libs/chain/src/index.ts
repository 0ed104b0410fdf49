export { canonicalJson, ChainError } from "./canonical-json.js";
export { bytesEqual } from "./bytes.js";
export type { JsonValue } from "./canonical-json.js";
export { GENESIS_CHECKSUM, binaryPayloadDigest, chainEnvelope, entryChecksum, payloadDigest, sha256Hex } from "./hash-chain.js";
export type { ChainFields } from "./hash-chain.js";
export { MAX_CONTENT_TYPE_LENGTH, MAX_PAYLOAD_DEPTH, contentTypeProblem, payloadProblem, textProblem } from "./payload-rules.js";
export { ChainVerifier } from "./chain-verifier.js";
export type { EntryCheck, EntryProblem, StoredEntry } from "./chain-verifier.js";
export {
  EXPORT_FORMAT,
  EXPORT_FORMAT_V1,
  ExportVerifier,
  exportEndLine,
  exportEntryLine,
  exportHeaderLine,
} from "./export-format.js";
export type { ExportCheckOptions, ExportHeader, ExportProblem, ExportReport, ExportedEntry } from "./export-format.js";

// Transparency log (docs/merkle.md): RFC 6962 tree, C2SP tiles, signed notes, checkpoints,
// cosignatures, receipts, witnessing and fork evidence.
export { ProofError, TileError, NoteError, CheckpointError, TlogProofError, WitnessRequestError, ForkEvidenceError, TlogError } from "./tlog-error.js";
export type { ProofErrorReason, TileErrorReason, NoteErrorReason, CheckpointErrorReason, TlogProofErrorReason } from "./tlog-error.js";
export { HASH_SIZE, MAX_TREE_SIZE, emptyRoot, leafHash, nodeHash } from "./merkle-hash.js";
export { consistencyProofRoots, rootFromInclusionProof, verifyConsistency, verifyInclusion } from "./merkle-proof.js";
export type { ConsistencyRoots } from "./merkle-proof.js";
export { createReferenceMemo, referenceConsistencyProof, referenceInclusionProof, rootOfLeafHashes, rootOfLeaves } from "./merkle-reference.js";
export type { ReferenceMemo } from "./merkle-reference.js";
export { MAX_TILE_LEVEL, TILE_HEIGHT, TILE_WIDTH, encodeTileIndex, entryBundlePath, parseTilePath, partialTiles, tilePath, tileWidthAt, treeTiles } from "./tiles.js";
export type { EntryBundleId, TileId, TilePath } from "./tiles.js";
export { MAX_BUNDLE_ENTRY_SIZE, decodeEntryBundle, encodeEntryBundle } from "./entry-bundle.js";
export { decodeRightEdge, emptyRightEdge, encodeRightEdge, rightEdgeRoot, rightEdgesEqual } from "./right-edge.js";
export type { RightEdge } from "./right-edge.js";
export { rightEdgeFromTiles } from "./tile-reader.js";
export type { SubtreeCache, TileReader } from "./tile-reader.js";
export { appendLeaves, appendLeavesToTiles } from "./tile-append.js";
export type { LeafAppend, TileAppend, TileUpdate, TileWrite } from "./tile-append.js";
export { consistencyProof, inclusionProof, treeRoot } from "./tile-proofs.js";
export type { TileProofOptions } from "./tile-proofs.js";
export { createMemoryTileStore } from "./memory-tile-store.js";
export type { MemoryTileStore } from "./memory-tile-store.js";
export {
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
export type { SignatureType, VerifierKey } from "./verifier-key.js";
export {
  MAX_NOTE_SIGNATURES,
  MAX_NOTE_SIZE,
  addNoteSignatures,
  checkNoteSignatures,
  createNoteSigner,
  formatNote,
  formatSignatureLine,
  noteTextProblem,
  parseNote,
  signNote,
  verifyNote,
} from "./signed-note.js";
export type { Note, NoteSignature, NoteSignatureCheck, NoteSigner, VerifiedSignature } from "./signed-note.js";
export { MAX_COSIGNATURE_TIMESTAMP, cosignatureMessage, cosignatureSigner, createCosigner, verifyCosignature } from "./cosignature.js";
export type { Cosigner } from "./cosignature.js";
export {
  checkpointsEqual,
  formatCheckpoint,
  logOrigin,
  openCheckpoint,
  parseCheckpoint,
  parseCheckpointNote,
  parseLogOrigin,
  signCheckpoint,
} from "./checkpoint.js";
export type { Checkpoint, OpenedCheckpoint } from "./checkpoint.js";
export { MAX_PROOF_HASHES, TLOG_PROOF_HEADER, formatTlogProof, parseTlogProof, verifyTlogProof } from "./tlog-proof.js";
export type { TlogProof, TlogProofPolicy, VerifiedTlogProof } from "./tlog-proof.js";
export {
  MAX_WITNESS_PROOF_LINES,
  TLOG_SIZE_CONTENT_TYPE,
  decideAddCheckpoint,
  formatAddCheckpointRequest,
  formatConflictBody,
  parseAddCheckpointRequest,
  witnessResponse,
} from "./witness.js";
export type { AddCheckpointRequest, WitnessDecision, WitnessState } from "./witness.js";
export { FORK_EVIDENCE_HEADER, createForkEvidence, formatForkEvidence, parseForkEvidence, verifyForkEvidence } from "./fork-evidence.js";
export type { ForkEvidence, ForkVerdict } from "./fork-evidence.js";
export { WitnessPolicyError, verifyCosignedCheckpoint, verifyWitnessPolicy } from "./witness-policy.js";
export type { CosignedCheckpoint, WitnessPolicy } from "./witness-policy.js";
