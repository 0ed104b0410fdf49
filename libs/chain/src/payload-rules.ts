import type { JsonValue } from "./canonical-json.js";

// What a payload (and any text annals stores) must be so that every store
// takes it and every reader reads it back unchanged. The services check
// requests with these rules before anything is queued or written.

/**
 * Why a string cannot be stored as it is, or null when it can: PostgreSQL's
 * text and jsonb refuse U+0000, and a lone UTF-16 surrogate is refused by
 * jsonb and turned into U+FFFD by UTF-8 encoders, so the stored value would
 * differ from the one sent (and hashed).
 */
export function textProblem(value: string): string | null {
  if (value.includes("\u0000")) return "contains a NUL character (U+0000)";
  if (!value.isWellFormed()) return "is not well-formed Unicode (it holds a lone UTF-16 surrogate)";
  return null;
}

/** The longest content type of a binary payload. */
export const MAX_CONTENT_TYPE_LENGTH = 255;

/** Why a binary payload's content type is unacceptable, or null: 1–255 printable ASCII characters. */
export function contentTypeProblem(contentType: string): string | null {
  if (contentType === "") return "is required with a binary payload (a media type, e.g. application/x-protobuf)";
  if (contentType.length > MAX_CONTENT_TYPE_LENGTH) return `is longer than ${MAX_CONTENT_TYPE_LENGTH} characters`;
  if (!/^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(contentType)) return "must be printable ASCII with no space at either end";
  return null;
}

/**
 * The deepest JSON nesting a payload may have: the payload object is level 1,
 * each object or array inside it one more. Every gRPC reader must be able to
 * decode what is stored, and decoders stop at 100 nested messages
 * (protobuf-es and Python's protobuf by default); each JSON object level
 * costs three (Struct, its map entry, Value) below the response's own
 * wrappers (e.g. SubscribeResponse, Event, Entry), so 30 levels reach at most
 * 94 (docs/hash-chain.md, "Payloads"; services/log hardening.test.ts
 * "the deepest payload").
 */
export const MAX_PAYLOAD_DEPTH = 30;

/**
 * Why a JSON payload cannot be stored and read back everywhere, or null.
 * PostgreSQL's jsonb refuses U+0000 and lone UTF-16 surrogates in strings
 * and keys (in one shared group-commit transaction, that would fail every
 * other writer's entries too), JSON has no NaN or infinities, numbers beyond
 * ±(2^53 − 1) may already have lost their value, and nesting is bounded by
 * MAX_PAYLOAD_DEPTH.
 */
export function payloadProblem(payload: JsonValue): string | null {
  return jsonProblem(payload, 1, "");
}

function jsonProblem(value: JsonValue, depth: number, path: string): string | null {
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return `${at(path)}holds a number JSON cannot carry (NaN or Infinity)`;
    // Doubles hold integers exactly only up to 2^53 − 1; a larger one may
    // have been rounded before it got here (JSON.parse rounds silently).
    if (Math.abs(value) > Number.MAX_SAFE_INTEGER) {
      return `${at(path)}holds the number ${value}, beyond ±(2^53 − 1): JSON numbers are doubles and larger ones may not keep their value; send it as a string`;
    }
    return null;
  }
  if (typeof value === "string") return stringProblem(value, path, "a string");
  if (value === null || typeof value === "boolean") return null;
  if (depth > MAX_PAYLOAD_DEPTH) return `${at(path)}nests deeper than ${MAX_PAYLOAD_DEPTH} levels`;
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const problem = jsonProblem(item, depth + 1, `${path}[${index}]`);
      if (problem) return problem;
    }
    return null;
  }
  if (typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      const keyProblem = stringProblem(key, path, "a key");
      if (keyProblem) return keyProblem;
      const problem = jsonProblem(item, depth + 1, `${path}.${key.length > 40 ? key.slice(0, 40) + "…" : key}`);
      if (problem) return problem;
    }
    return null;
  }
  return `${at(path)}is not JSON`;
}

function stringProblem(value: string, path: string, what: string): string | null {
  const problem = textProblem(value);
  return problem ? `${at(path)}holds ${what} that ${problem}` : null;
}

function at(path: string): string {
  return path === "" ? "" : `at ${path.startsWith(".") ? path.slice(1) : path}: `;
}
