import { ScalarType, getOption, hasOption, type DescField, type DescMessage, type Message } from "@bufbuild/protobuf";
import { googleApi } from "@annals/proto";
import { reflect, type ReflectMessage } from "@bufbuild/protobuf/reflect";
import { Code, type ConnectError } from "@connectrpc/connect";
import { textProblem } from "@annals/chain";
import { invalidArgument, rpcError } from "./errors.js";

// The checks every decoded request passes before a handler sees it, on both
// listeners, so that what no store can hold never reaches one:
// - every string (ids, names, map keys, text, and the strings and keys of
//   JSON payloads) is well-formed Unicode without U+0000: PostgreSQL's text
//   and jsonb refuse NUL; a lone UTF-16 surrogate (possible inside a Connect
//   JSON payload, `{"s":"\ud800"}`) is refused by jsonb — inside a shared
//   group-commit transaction — and becomes U+FFFD when protobuf encodes it,
//   so what is stored would differ from what was sent;
// - every enum holds one of its declared values: an unknown number decodes
//   without error in proto3 and would otherwise be read as some default;
// - every field the contract marks `(google.api.field_behavior) = REQUIRED`
//   is set (in nested messages too, when those are set).
// A payload's numbers and depth are the storing service's to judge.

/** protobuf-es holds a singular Struct field as a plain JSON object (a JsonObject), not as a message. */
const STRUCT = "google.protobuf.Struct";

/** A request message whose bytes did not decode; the pipeline refuses it. */
export class UndecodableRequest {
  constructor(readonly cause: unknown) {}

  /** INVALID_ARGUMENT saying that the request could not be decoded, and why. */
  toError(): ConnectError {
    const reason = this.cause instanceof Error ? this.cause.message : String(this.cause);
    return rpcError(Code.InvalidArgument, `the request could not be decoded: ${reason}`, { reason: "UNDECODABLE_REQUEST" });
  }
}

/** Why a request field is unacceptable, or null. */
export interface RequestProblem {
  /** The field path with proto names, e.g. `entries[2].metadata["k"]`. */
  field: string;
  problem: string;
}


/** The first problem of a decoded request message, or null. */
export function requestProblem(desc: DescMessage, message: Message): RequestProblem | null {
  return messageProblem(reflect(desc, message, false), "");
}

/**
 * Throws INVALID_ARGUMENT naming the field when the request has a problem;
 * `at` names the message's place in a client stream (`frame[3]`).
 */
export function checkRequest(desc: DescMessage, message: Message, at?: string): void {
  const found = requestProblem(desc, message);
  if (!found) return;
  const field = at === undefined ? found.field || "request" : found.field === "" ? at : `${at}.${found.field}`;
  throw invalidArgument(field, found.problem);
}

function messageProblem(message: ReflectMessage, path: string): RequestProblem | null {
  for (const field of message.fields) {
    const name = path === "" ? field.name : `${path}.${field.name}`;
    if (!message.isSet(field)) {
      if (isRequired(field)) return { field: name, problem: "is required" };
      continue;
    }
    const found = fieldProblem(message, field, name);
    if (found) return found;
  }
  return null;
}

function fieldProblem(message: ReflectMessage, field: DescField, name: string): RequestProblem | null {
  switch (field.fieldKind) {
    case "scalar":
      return field.scalar === ScalarType.STRING ? stringProblem(String(message.get(field)), name) : null;
    case "enum":
      return enumProblem(field, message.get(field), name);
    case "message":
      if (field.message.typeName === STRUCT) return jsonTextProblem(localValue(message, field), name);
      return messageProblem(message.get(field), name);
    case "list": {
      const list = message.get(field) as Iterable<unknown>;
      let index = 0;
      for (const item of list) {
        const itemName = `${name}[${index++}]`;
        const found =
          field.listKind === "scalar"
            ? field.scalar === ScalarType.STRING
              ? stringProblem(item as string, itemName)
              : null
            : field.listKind === "enum"
              ? enumProblem(field, item as number, itemName)
              : messageProblem(item as ReflectMessage, itemName);
        if (found) return found;
      }
      return null;
    }
    case "map": {
      const map = message.get(field) as Iterable<[unknown, unknown]>;
      for (const [key, value] of map) {
        const itemName = `${name}[${JSON.stringify(String(key))}]`;
        if (typeof key === "string") {
          const keyProblem = textProblem(key);
          if (keyProblem) return { field: `${name} key`, problem: keyProblem };
        }
        const found =
          field.mapKind === "scalar"
            ? field.scalar === ScalarType.STRING
              ? stringProblem(value as string, itemName)
              : null
            : field.mapKind === "enum"
              ? enumProblem(field, value as number, itemName)
              : messageProblem(value as ReflectMessage, itemName);
        if (found) return found;
      }
      return null;
    }
  }
}

const required = new WeakMap<DescField, boolean>();

/** Whether the contract marks the field `(google.api.field_behavior) = REQUIRED`. */
function isRequired(field: DescField): boolean {
  let known = required.get(field);
  if (known === undefined) {
    known = hasOption(field, googleApi.field_behavior) && getOption(field, googleApi.field_behavior).includes(googleApi.FieldBehavior.REQUIRED);
    required.set(field, known);
  }
  return known;
}

/** A field's value as the message holds it (JSON types stay plain JSON there). */
function localValue(message: ReflectMessage, field: DescField): unknown {
  const local = message.message as unknown as Record<string, unknown>;
  if (!field.oneof) return local[field.localName];
  const selected = local[field.oneof.localName] as { case?: string; value?: unknown };
  return selected.case === field.localName ? selected.value : undefined;
}

/** The first string or key in a JSON value that breaks the text rule. */
function jsonTextProblem(value: unknown, path: string): RequestProblem | null {
  if (typeof value === "string") return stringProblem(value, path);
  if (typeof value !== "object" || value === null) return null;
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const found = jsonTextProblem(item, `${path}[${index}]`);
      if (found) return found;
    }
    return null;
  }
  for (const [key, item] of Object.entries(value)) {
    const keyProblem = textProblem(key);
    if (keyProblem) return { field: path, problem: `holds a key that ${keyProblem}` };
    const found = jsonTextProblem(item, `${path}.${key}`);
    if (found) return found;
  }
  return null;
}

function stringProblem(value: string, field: string): RequestProblem | null {
  const problem = textProblem(value);
  return problem ? { field, problem } : null;
}

function enumProblem(field: DescField, value: number, name: string): RequestProblem | null {
  const desc = field.enum!;
  if (desc.values.some((candidate) => candidate.number === value)) return null;
  return { field: name, problem: `${value} is not a value of ${desc.typeName}` };
}
