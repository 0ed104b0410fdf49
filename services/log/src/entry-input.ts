import { binaryPayloadDigest, canonicalJson, contentTypeProblem, payloadProblem, sha256Hex, textProblem, type JsonValue } from "@annals/chain";
import type { logV1 } from "@annals/proto";
import { Code } from "@connectrpc/connect";
import { invalidArgument, rpcError } from "@annals/runtime";
import { localLogIdProblem, logIdProblem, MIRROR_PREFIX } from "@annals/logs";
import { kindProblem } from "@annals/topics";
import { isCanonicalUuid } from "./uuid-v7.js";

/** Size limits on what a producer may append. */
export interface LogLimits {
  /** Largest payload, in bytes of its canonical JSON or of its bytes. Default 262144 (256 KiB). */
  maxPayloadBytes: number;
  /** Largest metadata, in UTF-8 bytes of all keys and values together. Default 16384. */
  maxMetadataBytes: number;
  /** Most entries in one AppendBatch. Default 1000. */
  maxBatchEntries: number;
  /** Most Subscribe streams one token subject may have open at once (not for `log.relay` holders). Default 64. */
  maxSubscriptionsPerSubject: number;
}

export const DEFAULT_LOG_LIMITS: LogLimits = {
  maxPayloadBytes: 256 * 1024,
  maxMetadataBytes: 16 * 1024,
  maxBatchEntries: 1000,
  maxSubscriptionsPerSubject: 64,
};

/** Fixed bounds of short text fields. */
const MAX_ID_LENGTH = 255;

/** Kinds under `annals.` are written by the service itself (e.g. `annals.redaction`). */
export const RESERVED_KIND_PREFIX = "annals.";

/** An entry that passed validation, with its payload already canonicalised and hashed. */
export interface PreparedEntry {
  /** null: the server assigns a UUIDv7 when it sequences the entry. */
  uuid: string | null;
  kind: string;
  /** A JSON payload's canonical JSON (stored as it is; valid JSON); null for a binary one. */
  payloadJson: string | null;
  /** A binary payload's bytes; null for a JSON one. */
  binaryPayload: Uint8Array | null;
  /** A binary payload's media type; null for a JSON payload (the chain envelope tells them apart by it). */
  contentType: string | null;
  payloadDigest: string;
  sourceId: string;
  simTime: number | null;
  metadata: Record<string, string>;
  /** null when none. */
  reqId: string | null;
}

/** Validates a log id; throws INVALID_ARGUMENT naming `field`. */
export function checkLogId(logId: string, field = "log_id"): string {
  const problem = logIdProblem(logId);
  if (problem) throw invalidArgument(field, problem);
  return logId;
}

/**
 * Validates the id of a log a client writes to: INVALID_ARGUMENT for a name
 * no client may create, FAILED_PRECONDITION under `mirror/` (federation
 * mirrors take entries only from federation, whether or not this one exists yet).
 */
export function checkLocalLogId(logId: string, field = "log_id"): string {
  checkLogId(logId, field);
  if (logId.startsWith(MIRROR_PREFIX)) {
    throw rpcError(Code.FailedPrecondition, `log "${logId}": names under "${MIRROR_PREFIX}" are federation mirrors; only federation writes to them`, {
      reason: "LOG_IS_MIRROR",
      metadata: { log: logId },
    });
  }
  const problem = localLogIdProblem(logId);
  if (problem) throw invalidArgument(field, problem);
  return logId;
}

/**
 * Validates one producer entry and canonicalises its payload. `field` is the
 * entry's path in the request (`entry`, `entries[3]`) so errors name it.
 */
export function prepareEntry(input: logV1.EntryInput | undefined, limits: LogLimits, field: string): PreparedEntry {
  if (!input) throw invalidArgument(field, "is required");
  const kindError = kindProblem(input.kind);
  if (kindError) throw invalidArgument(`${field}.kind`, `${kindError}`);
  if (input.kind.startsWith(RESERVED_KIND_PREFIX)) {
    throw invalidArgument(`${field}.kind`, `kinds under "${RESERVED_KIND_PREFIX}" are reserved for the service`);
  }
  if (input.uuid !== "" && !isCanonicalUuid(input.uuid)) {
    throw invalidArgument(`${field}.uuid`, "must be empty or a lowercase hyphenated UUID");
  }
  checkText(input.sourceId, `${field}.source_id`);
  checkText(input.requestId, `${field}.request_id`);
  if (input.simTime !== undefined && !Number.isFinite(input.simTime)) {
    throw invalidArgument(`${field}.sim_time`, "must be a finite number");
  }
  const body = preparedBody(input, limits, field);
  let metadataBytes = 0;
  for (const [key, value] of Object.entries(input.metadata)) {
    if (key === "") throw invalidArgument(`${field}.metadata`, "has an empty key");
    const problem = textProblem(key) ?? textProblem(value);
    if (problem) throw invalidArgument(`${field}.metadata["${key}"]`, problem);
    metadataBytes += Buffer.byteLength(key, "utf8") + Buffer.byteLength(value, "utf8");
  }
  if (metadataBytes > limits.maxMetadataBytes) {
    throw invalidArgument(`${field}.metadata`, `is ${metadataBytes} bytes; the limit is ${limits.maxMetadataBytes}`, {
      limit: String(limits.maxMetadataBytes),
    });
  }
  return {
    uuid: input.uuid === "" ? null : input.uuid,
    kind: input.kind,
    ...body,
    sourceId: input.sourceId,
    simTime: input.simTime ?? null,
    metadata: input.metadata,
    reqId: input.requestId === "" ? null : input.requestId,
  };
}

/** The payload of an entry, checked against the limits and hashed: JSON (canonicalised) or bytes (with a content type). */
function preparedBody(
  input: logV1.EntryInput,
  limits: LogLimits,
  field: string,
): Pick<PreparedEntry, "payloadJson" | "binaryPayload" | "contentType" | "payloadDigest"> {
  const body = input.body;
  if (body.case === undefined) {
    throw invalidArgument(`${field}.payload`, "is required: a JSON object ({} for none) in payload, or bytes in binary_payload");
  }
  if (body.case === "binaryPayload") {
    const problem = contentTypeProblem(input.contentType);
    if (problem) throw invalidArgument(`${field}.content_type`, problem);
    if (body.value.byteLength > limits.maxPayloadBytes) {
      throw invalidArgument(`${field}.binary_payload`, `is ${body.value.byteLength} bytes; the limit is ${limits.maxPayloadBytes}`, {
        limit: String(limits.maxPayloadBytes),
      });
    }
    return { payloadJson: null, binaryPayload: body.value, contentType: input.contentType, payloadDigest: binaryPayloadDigest(body.value) };
  }
  if (input.contentType !== "") throw invalidArgument(`${field}.content_type`, "must be empty for a JSON payload (it types a binary_payload)");
  const payloadJson = canonicalPayload(body.value, `${field}.payload`);
  const payloadBytes = Buffer.byteLength(payloadJson, "utf8");
  if (payloadBytes > limits.maxPayloadBytes) {
    throw invalidArgument(`${field}.payload`, `is ${payloadBytes} bytes of canonical JSON; the limit is ${limits.maxPayloadBytes}`, {
      limit: String(limits.maxPayloadBytes),
    });
  }
  return { payloadJson, binaryPayload: null, contentType: null, payloadDigest: sha256Hex(payloadJson) };
}

function checkText(value: string, field: string): void {
  if (value.length > MAX_ID_LENGTH) throw invalidArgument(field, `is longer than ${MAX_ID_LENGTH} characters`);
  const problem = textProblem(value);
  if (problem) throw invalidArgument(field, problem);
}

/**
 * The payload's canonical JSON, after checking that every reader and store
 * can take it (payloadProblem).
 */
function canonicalPayload(payload: { [key: string]: JsonValue }, field: string): string {
  const problem = payloadProblem(payload);
  if (problem) throw invalidArgument(field, problem);
  return canonicalJson(payload);
}

