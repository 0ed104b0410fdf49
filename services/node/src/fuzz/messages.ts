// Random request messages built from the protobuf descriptors alone, so that
// an RPC added or renamed later is fuzzed without touching this suite. A
// message is made in its proto3 JSON form (what Connect JSON sends); binary
// encodings go through protobuf-es (`fromJson` then `toBinary`).
import { ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
import type { Random } from "./random.js";
import { fieldRole, is64Bit, isInteger, type FieldRole } from "./values.js";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Where a string sits: a field (by role), or a key or value inside a Struct or a map. */
export type StringSlot = FieldRole | "struct-key" | "struct-value" | "map-key";

/**
 * How one input class bends a message while it is generated. Each hook
 * returns a replacement, or undefined to keep the plausible value.
 */
export interface Mutation {
  /** A string field, list item, map key or value, or a string inside a Struct. */
  string?(value: string, slot: StringSlot): string | undefined;
  /** Any other scalar or enum field, in its JSON form (int64 as a string, bytes as base64, enums by name). */
  scalar?(field: DescField, value: Json): Json | undefined;
  /** A google.protobuf.Struct / Value / ListValue field. */
  struct?(typeName: string): Json | undefined;
  /** Keys to add to an object of this message type (unknown fields). */
  extraKeys?(message: DescMessage): Record<string, Json> | undefined;
}

export interface GeneratorContext {
  rng: Random;
  /** Log ids that pass validation and exist. */
  logIds: readonly string[];
  /** Page tokens and cursors servers issued, for this method's own listing. */
  pageTokens: readonly string[];
  /** Services the target serves, for the health service's `service` field. */
  serviceNames: readonly string[];
  /** Set every field (and at least one item of every list), so that a request gets past "is required" checks. */
  complete?: boolean;
}

/** The proto3 JSON of a random message, and how many values the mutation replaced. */
export interface Generated {
  json: { [key: string]: Json };
  mutated: number;
}

/** The content type a generated binary payload carries. */
const PLAUSIBLE_CONTENT_TYPE = "application/octet-stream";

/** Nesting of plain messages beyond which fields are left unset. */
const MAX_MESSAGE_DEPTH = 4;

export function randomMessage(desc: DescMessage, context: GeneratorContext, mutation: Mutation = {}): Generated {
  const state = { mutated: 0 };
  const json = new MessageBuilder(context, mutation, state).message(desc, 0);
  return { json, mutated: state.mutated };
}

class MessageBuilder {
  constructor(
    private readonly context: GeneratorContext,
    private readonly mutation: Mutation,
    private readonly state: { mutated: number },
  ) {}

  private get rng() {
    return this.context.rng;
  }

  message(desc: DescMessage, depth: number): { [key: string]: Json } {
    const out: { [key: string]: Json } = {};
    const chosenOneof = new Map<string, DescField>();
    for (const oneof of desc.oneofs) {
      if (oneof.fields.length > 0 && (this.context.complete || this.rng.chance(0.85))) chosenOneof.set(oneof.name, this.rng.pick(oneof.fields));
    }
    for (const field of desc.fields) {
      const realOneof = field.oneof && !field.proto.proto3Optional ? field.oneof : undefined;
      if (realOneof ? chosenOneof.get(realOneof.name) !== field : !this.context.complete && !this.rng.chance(presence(field))) continue;
      if (depth >= MAX_MESSAGE_DEPTH && (field.fieldKind === "message" || field.message)) continue;
      const value = this.field(field, depth);
      if (value !== undefined) out[field.jsonName] = value;
    }
    // A content type goes with a binary payload, and only with one
    // (EntryInput, Entry): a plausible one is set or dropped to match, so that
    // well-formed requests stay well-formed; a mutated one is kept.
    const contentType = desc.fields.find((field) => fieldRole(field) === "content-type");
    const current = contentType && out[contentType.jsonName];
    if (contentType && (current === undefined || current === PLAUSIBLE_CONTENT_TYPE)) {
      const binary = desc.fields.some((field) => field.oneof && field.scalar === ScalarType.BYTES && out[field.jsonName] !== undefined);
      if (binary) out[contentType.jsonName] = PLAUSIBLE_CONTENT_TYPE;
      else delete out[contentType.jsonName];
    }
    const extra = this.mutation.extraKeys?.(desc);
    if (extra) {
      this.state.mutated++;
      Object.assign(out, extra);
    }
    return out;
  }

  private field(field: DescField, depth: number): Json | undefined {
    switch (field.fieldKind) {
      case "scalar":
        return this.scalar(field, field.scalar, fieldRole(field));
      case "enum":
        return this.enumValue(field);
      case "message":
        if (field.message.typeName === "google.protobuf.FieldMask") return this.replaceString(this.fieldMaskPaths(field.parent, "jsonName"), "field-mask");
        return this.messageValue(field.message, depth);
      case "list": {
        const items: Json[] = [];
        for (let i = this.rng.between(this.context.complete ? 1 : 0, 3); i > 0; i--) {
          const item =
            field.listKind === "scalar"
              ? this.scalar(field, field.scalar, fieldRole(field))
              : field.listKind === "enum"
                ? this.enumValue(field)
                : this.messageValue(field.message, depth);
          if (item !== undefined) items.push(item);
        }
        return items;
      }
      case "map": {
        const entries: { [key: string]: Json } = {};
        for (let i = this.rng.between(0, 3); i > 0; i--) {
          const key = this.mapKey(field.mapKey);
          const value =
            field.mapKind === "scalar"
              ? this.scalar(field, field.scalar, "text")
              : field.mapKind === "enum"
                ? this.enumValue(field)
                : this.messageValue(field.message, depth);
          if (value !== undefined) entries[key] = value;
        }
        return entries;
      }
    }
  }

  private messageValue(desc: DescMessage, depth: number): Json | undefined {
    const typeName = desc.typeName;
    if (typeName === "google.protobuf.Struct" || typeName === "google.protobuf.Value" || typeName === "google.protobuf.ListValue") {
      const replaced = this.mutation.struct?.(typeName);
      if (replaced !== undefined) {
        this.state.mutated++;
        return replaced;
      }
      if (typeName === "google.protobuf.Struct") return this.jsonObject(2);
      if (typeName === "google.protobuf.ListValue") return this.jsonArray(2);
      return this.jsonValue(2);
    }
    if (typeName === "google.protobuf.Timestamp") return new Date(Date.UTC(2024, 0, 1) + this.rng.int(1e9) * 1000).toISOString();
    if (typeName === "google.protobuf.Duration") return `${this.rng.int(3600)}s`;
    if (typeName === "google.protobuf.FieldMask") return "";
    if (typeName === "google.protobuf.Any") return undefined;
    if (typeName.startsWith("google.protobuf.") && desc.fields.length === 1 && desc.fields[0]!.name === "value") {
      // A wrapper (StringValue, Int64Value, ...) is its value in JSON.
      const inner = desc.fields[0]!;
      return inner.fieldKind === "scalar" ? this.scalar(inner, inner.scalar, "text") : undefined;
    }
    return this.message(desc, depth + 1);
  }

  /**
   * One to three comma-separated field names of the message the mask sits
   * next to (the first non-google message field of `parent`), so that an
   * update names real fields; lowerCamel for a google.protobuf.FieldMask in
   * JSON, as declared for a string mask.
   */
  private fieldMaskPaths(parent: DescMessage, form: "name" | "jsonName"): string {
    const sibling = parent.fields.find((candidate) => candidate.message && !candidate.message.typeName.startsWith("google."));
    if (!sibling?.message) return "";
    const names = sibling.message.fields.map((candidate) => candidate[form]);
    return [...new Set(Array.from({ length: this.rng.between(1, 3) }, () => this.rng.pick(names)))].join(",");
  }

  private enumValue(field: DescField): Json {
    const values = field.enum!.values;
    const value: Json = this.rng.pick(values).name;
    return this.replaceScalar(field, value);
  }

  private replaceScalar(field: DescField, value: Json): Json {
    const replaced = this.mutation.scalar?.(field, value);
    if (replaced === undefined) return value;
    this.state.mutated++;
    return replaced;
  }

  private replaceString(value: string, slot: StringSlot): string {
    const replaced = this.mutation.string?.(value, slot);
    if (replaced === undefined) return value;
    this.state.mutated++;
    return replaced;
  }

  private scalar(field: DescField, scalar: ScalarType, role: FieldRole): Json {
    if (scalar === ScalarType.STRING) return this.replaceString(this.plausibleString(field, role), role);
    return this.replaceScalar(field, this.plausibleScalar(scalar, role));
  }

  private plausibleScalar(scalar: ScalarType, role: FieldRole): Json {
    const rng = this.rng;
    if (scalar === ScalarType.BOOL) return rng.chance(0.5);
    if (scalar === ScalarType.BYTES) {
      if (role === "page-token") return rng.chance(0.5) && this.context.pageTokens.length > 0 ? rng.pick(this.context.pageTokens) : "";
      const bytes = role === "kv-key" ? new TextEncoder().encode(`fuzz:${rng.word(1, 3)}`) : rng.bytes(rng.between(0, 24));
      return Buffer.from(bytes).toString("base64");
    }
    if (scalar === ScalarType.DOUBLE || scalar === ScalarType.FLOAT) return rng.chance(0.5) ? rng.between(0, 1000) : Math.round(rng.float() * 1e6) / 1e3;
    if (isInteger(scalar)) {
      const value =
        role === "position" ? rng.between(0, 40) : role === "duration" ? rng.pick([0, 100, 1000, 60_000]) : role === "size" ? rng.between(0, 20) : rng.between(-3, 100);
      return is64Bit(scalar) ? String(value) : value;
    }
    return null;
  }

  private plausibleString(field: DescField, role: FieldRole): string {
    const rng = this.rng;
    switch (role) {
      case "log-id":
        return rng.pick(this.context.logIds);
      case "node-id":
        return `spiffe://fuzz.example/annals/peer-${rng.between(1, 3)}`;
      case "page-token":
        return rng.chance(0.5) && this.context.pageTokens.length > 0 ? rng.pick(this.context.pageTokens) : "";
      case "kind":
        return rng.pick(["fuzz.created", "fuzz.updated", "order.placed", "a.b.c"]);
      case "kind-pattern":
        return rng.pick(["fuzz.>", "fuzz.*", "order.placed", ">", "*.*"]);
      case "url":
        return rng.pick(["http://127.0.0.1:9", "https://peer.invalid:8443"]);
      case "uuid":
        return rng.chance(0.3) ? "" : uuidLike(rng);
      case "checksum":
        return rng.hex(64);
      case "secret":
        return rng.hex(32);
      case "jwk":
        return JSON.stringify({ kty: "OKP", crv: "Ed25519", x: Buffer.from(rng.bytes(32)).toString("base64url") });
      case "field-mask":
        return this.fieldMaskPaths(field.parent, "name");
      case "content-type":
        return PLAUSIBLE_CONTENT_TYPE;
      case "service-name":
        return rng.pick(["", ...this.context.serviceNames]);
      default:
        return rng.word(1, 12);
    }
  }

  private mapKey(keyType: ScalarType): string {
    if (keyType === ScalarType.STRING) return this.replaceString(this.rng.word(1, 8), "map-key");
    if (keyType === ScalarType.BOOL) return String(this.rng.chance(0.5));
    return String(this.rng.between(0, 100));
  }

  jsonValue(depth: number): Json {
    const rng = this.rng;
    const kind = rng.int(depth > 0 ? 6 : 4);
    if (kind === 0) return null;
    if (kind === 1) return rng.chance(0.5);
    if (kind === 2) return rng.pick([0, 1, -1, 3.5, 1e21, 2 ** 53 + 2, rng.between(0, 1000)]);
    if (kind === 3) return this.replaceString(rng.word(0, 12), "struct-value");
    if (kind === 4) return this.jsonArray(depth - 1);
    return this.jsonObject(depth - 1);
  }

  jsonObject(depth: number): { [key: string]: Json } {
    const out: { [key: string]: Json } = {};
    for (let i = this.rng.between(0, 4); i > 0; i--) out[this.replaceString(this.rng.word(1, 6), "struct-key")] = this.jsonValue(depth);
    return out;
  }

  jsonArray(depth: number): Json[] {
    const out: Json[] = [];
    for (let i = this.rng.between(0, 3); i > 0; i--) out.push(this.jsonValue(depth));
    return out;
  }
}

/** Fields that identify what the call is about are set more often, so calls get past "required" checks. */
function presence(field: DescField): number {
  const role = fieldRole(field);
  return role === "log-id" || role === "kind" || role === "kv-key" || role === "node-id" ? 0.95 : 0.7;
}

function uuidLike(rng: Random): string {
  const hex = rng.hex(32);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** JSON nested `depth` levels deep, objects and arrays mixed (each JSON level is 2–3 protobuf levels in a Struct). */
export function deepJson(depth: number, rng: Random): { [key: string]: Json } {
  let inner: Json = rng.pick([1, "x", true, null]);
  for (let level = 1; level < depth; level++) inner = rng.chance(0.7) ? { d: inner } : [inner];
  return { d: inner };
}

/**
 * Every path from `desc` to a field that `accept`s, through message fields
 * (singular, repeated or map values), at most `maxDepth` messages deep.
 */
export function fieldPaths(desc: DescMessage, accept: (field: DescField) => boolean, maxDepth = 3): DescField[][] {
  const paths: DescField[][] = [];
  const walk = (message: DescMessage, prefix: DescField[]) => {
    for (const field of message.fields) {
      if (accept(field)) paths.push([...prefix, field]);
      const child = field.message;
      if (child && prefix.length + 1 < maxDepth && !child.typeName.startsWith("google.protobuf.") && field.fieldKind !== "map") walk(child, [...prefix, field]);
    }
  };
  walk(desc, []);
  return paths;
}
