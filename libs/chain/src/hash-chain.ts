import { canonicalJson, type JsonValue } from "./canonical-json.js";
import { sha256Hex } from "./sha256.js";

export { sha256Hex };

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

/** SHA-256 of the payload's canonical JSON; what the chain covers instead of the payload. */
export function payloadDigest(payload: { [key: string]: JsonValue }): string {
  return sha256Hex(canonicalJson(payload));
}

/** SHA-256 (lowercase hex) of a binary payload's bytes. */
export function binaryPayloadDigest(payload: Uint8Array): string {
  return sha256Hex(payload);
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

/**
 * The canonical JSON of an entry's envelope, canonicalJson(chainEnvelope(fields)),
 * written directly: its members in their sorted order, each value as JCS
 * writes it (strings and numbers as JSON.stringify does; the metadata, a map
 * of strings, with its keys sorted by UTF-16 code units as JCS sorts them).
 * Every appended entry is hashed once through this (vectors.test.ts and the
 * equivalence test in hash-chain.test.ts pin it to the spec).
 */
export function canonicalEnvelope(fields: ChainFields): string {
  if (fields.simTime !== null && !Number.isFinite(fields.simTime)) return canonicalJson(chainEnvelope(fields)); // refused as canonicalJson refuses it
  const metadataKeys = Object.keys(fields.metadata).sort();
  let metadata = "";
  for (const key of metadataKeys) metadata += `${metadata === "" ? "" : ","}${JSON.stringify(key)}:${JSON.stringify(fields.metadata[key])}`;
  return (
    `{${fields.contentType === null ? "" : `"content_type":${JSON.stringify(fields.contentType)},`}"kind":${JSON.stringify(fields.kind)},` +
    `"log_id":${JSON.stringify(fields.logId)},"metadata":{${metadata}},"payload_digest":${JSON.stringify(fields.payloadDigest)},` +
    `"prev_checksum":${JSON.stringify(fields.prevChecksum)},"req_id":${JSON.stringify(fields.reqId)},"seq":"${fields.seq}",` +
    `"sim_time":${JSON.stringify(fields.simTime)},"source_id":${JSON.stringify(fields.sourceId)},"uuid":${JSON.stringify(fields.uuid)},` +
    `"wall_time":"${fields.wallTimeUs}"}`
  );
}

/** The entry's checksum: SHA-256 of the canonical JSON of its envelope. */
export function entryChecksum(fields: ChainFields): string {
  return sha256Hex(canonicalEnvelope(fields));
}
