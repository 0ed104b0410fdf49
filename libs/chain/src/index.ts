export { canonicalJson, ChainError } from "./canonical-json.js";
export type { JsonValue } from "./canonical-json.js";
export { GENESIS_CHECKSUM, chainEnvelope, entryChecksum, payloadDigest, sha256Hex } from "./hash-chain.js";
export type { ChainFields } from "./hash-chain.js";
export { ChainVerifier } from "./chain-verifier.js";
export type { EntryCheck, EntryProblem, StoredEntry } from "./chain-verifier.js";
export {
  EXPORT_FORMAT,
  ExportVerifier,
  exportEndLine,
  exportEntryLine,
  exportHeaderLine,
} from "./export-format.js";
export type { ExportHeader, ExportProblem, ExportReport, ExportedEntry } from "./export-format.js";
