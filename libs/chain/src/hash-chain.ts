import { createHash } from "node:crypto";
import { canonicalJson, type JsonValue } from "./canonical-json.js";

/** The prev_checksum of a log's first entry: 64 zeros. */
export const GENESIS_CHECKSUM = "0".repeat(64);

/** Everything of an entry that its checksum covers (docs/hash-chain.md). */
export interface ChainFields {
  /** The log the entry was first appended to (a mirror keeps its origin's id). */
  logId: string;
  seq: bigint;
  uuid: string;
  kind: string;
  /** "" when none. */
  sourceId: string;
  /** null when none. */
  simTime: number | null;
  /** Microseconds since the Unix epoch. */
  wallTimeUs: bigint;
  /** "" when none. */
  reqId: string;
  metadata: Readonly<Record<string, string>>;
  /**
   * The media type of a binary payload; null for a JSON payload. Only a
   * binary entry's envelope has a `content_type` member, so a JSON entry's
   * checksum is what it always was, and the two kinds can never be confused.
   */
  contentType: string | null;
  payloadDigest: string;
  prevChecksum: string;
}

/** Lowercase hex SHA-256 of a string's UTF-8 bytes. */
export function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/** SHA-256 of the payload's canonical JSON; what the chain covers instead of the payload. */
export function payloadDigest(payload: { [key: string]: JsonValue }): string {
  return sha256Hex(canonicalJson(payload));
}

/** SHA-256 (lowercase hex) of a binary payload's bytes. */
export function binaryPayloadDigest(payload: Uint8Array): string {
  return createHash("sha256").update(payload).digest("hex");
}

/**
 * The envelope an entry's checksum is computed over. Integers that may exceed
 * 2^53 (seq, wall_time) are decimal strings so every JSON library reads them
 * exactly.
 */
export function chainEnvelope(fields: ChainFields): { [key: string]: JsonValue } {
  return {
    ...(fields.contentType === null ? {} : { content_type: fields.contentType }),
    log_id: fields.logId,
    seq: fields.seq.toString(),
    uuid: fields.uuid,
    kind: fields.kind,
    source_id: fields.sourceId,
    sim_time: fields.simTime,
    wall_time: fields.wallTimeUs.toString(),
    req_id: fields.reqId,
    metadata: { ...fields.metadata },
    payload_digest: fields.payloadDigest,
    prev_checksum: fields.prevChecksum,
  };
}

/** The entry's checksum: SHA-256 of the canonical JSON of its envelope. */
export function entryChecksum(fields: ChainFields): string {
  return sha256Hex(canonicalJson(chainEnvelope(fields)));
}
