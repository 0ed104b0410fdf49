// The fuzz corpus: the input classes, and the bytes of a planned case, built
// from the case's own random stream when it runs (plan.ts says which call).
import { ScalarType, fromJson, toBinary, type DescField, type DescMessage, type DescMethod } from "@bufbuild/protobuf";
import { WireType } from "@bufbuild/protobuf/wire";
import { deepJson, fieldPaths, randomMessage, type GeneratorContext, type Json, type Mutation } from "./messages.js";
import type { CasePlan, Transport } from "./plan.js";
import { concat, lengthDelimited, nestedGroups, nestedStruct, tag, varint, wrapInPath, wrongWireTypeRecord } from "./protobuf-bytes.js";
import { Random } from "./random.js";
import {
  BAD_LOG_IDS,
  BAD_NODE_IDS,
  BAD_PAGE_TOKENS,
  EXTREME_DOUBLES,
  INVALID_UTF8,
  LONE_SURROGATES,
  ODD_STRINGS,
  extremeIntegers,
  fieldRole,
  isInteger,
} from "./values.js";

/** What one case sends. Bodies are already encoded (JSON text as UTF-8 for Connect JSON). */
export interface FuzzRequest {
  inputClass: string;
  /** One per message; a client stream sends several. */
  messages: Uint8Array[];
  /** Replaces the framed messages as the whole request body (framing classes). */
  body?: Uint8Array;
  /** Extra or replaced request headers; a null value removes a default one. */
  headers?: Record<string, string | null>;
  /** Replaces the request path (`/pkg.Service/Method` or the SSE path with its query). */
  path?: string;
  /** For h2-socket: the bytes written to the TCP connection. */
  socketBytes?: Uint8Array;
  /** HTTP method for http-get cases (GET unless set). */
  httpMethod?: string;
  /** A short printable form of what was sent, for the failure table. */
  reproducer: string;
  /**
   * Set when INTERNAL is not a defect of the service for this input, and why:
   * the protocol prescribes it, or the transport library answers a protocol
   * violation before any annals code runs. Such answers are counted apart.
   */
  expectedInternal?: string;
}

const isStringField = (field: DescField) => field.scalar === ScalarType.STRING && field.fieldKind !== "map";
const isEnumField = (field: DescField) => field.enum !== undefined && field.fieldKind !== "map";
const isStructField = (field: DescField) => field.message?.typeName === "google.protobuf.Struct";
const hasField = (rpc: DescMethod, accept: (field: DescField) => boolean) => fieldPaths(rpc.input, accept).length > 0;
const hasRole = (rpc: DescMethod, ...roles: string[]) => hasField(rpc, (field) => roles.includes(fieldRole(field)));
/** String fields, map keys and Structs all carry strings. */
const carriesStrings = (rpc: DescMethod) => hasField(rpc, (field) => field.scalar === ScalarType.STRING || field.fieldKind === "map" || isStructField(field));
const carriesNumbers = (rpc: DescMethod) => hasField(rpc, (field) => field.scalar !== undefined && field.scalar !== ScalarType.STRING && field.scalar !== ScalarType.BYTES && field.scalar !== ScalarType.BOOL);
/** Whether the method's input holds a JSON payload (a google.protobuf.Struct). */
export const storesJson = (rpc: DescMethod) => hasField(rpc, isStructField);

/** JSON nesting depths every payload-carrying method is sent (each level is 2–3 protobuf levels; protobuf-es and Python stop at 100). */
export const DEEP_JSON_SWEEP = [20, 30, 33, 40, 60, 61, 100, 200];

export interface BuildContext {
  /** Log ids that exist on the target and pass validation. */
  logIds: readonly string[];
  /** Page tokens and cursors the target issued, by method. */
  pageTokens: ReadonlyMap<string, readonly string[]>;
  serviceNames: readonly string[];
}

type Encoding = "json" | "binary";

interface ClassContext {
  rng: Random;
  /** A sweep's nesting depth, instead of a random one. */
  depth?: number;
  rpc: DescMethod;
  encoding: Encoding;
  transport: Transport;
  generator: GeneratorContext;
  /** Tokens issued by other listings than this method's. */
  foreignTokens: readonly string[];
}

interface InputClass {
  name: string;
  /** Relative frequency among the classes that fit a case. */
  weight: number;
  /** Whether the class can be sent this way to this method (a method without enum fields has no bad enum to send). */
  fits(transport: Transport, rpc: DescMethod): boolean;
  /** The request, or undefined when the method has nothing this class can bend. */
  build(context: ClassContext): FuzzRequest | undefined;
}

const isBinary = (transport: Transport) => transport === "grpc-js" || transport === "connect-proto" || transport === "grpc-web" || transport === "h2-raw";
const anyMessageTransport = (transport: Transport) => transport !== "h2-socket" && transport !== "http-get";
const isStreamingRequest = (rpc: DescMethod) => rpc.methodKind === "client_streaming" || rpc.methodKind === "bidi_streaming";
const isStreamingCall = (rpc: DescMethod) => rpc.methodKind !== "unary";

/** Encodes generated messages; undefined when protobuf-es refuses the JSON (only JSON can carry it). */
function encode(desc: DescMessage, messages: ReadonlyArray<{ [key: string]: Json }>, encoding: Encoding): Uint8Array[] | undefined {
  if (encoding === "json") return messages.map((json) => new TextEncoder().encode(JSON.stringify(json)));
  try {
    return messages.map((json) => toBinary(desc, fromJson(desc, json)));
  } catch {
    return undefined;
  }
}

function reproducerOf(messages: readonly Uint8Array[], encoding: Encoding): string {
  const first = messages[0] ?? new Uint8Array();
  const more = messages.length > 1 ? ` (+${messages.length - 1} more)` : "";
  if (encoding === "json") return shorten(JSON.stringify(new TextDecoder().decode(first)), 90) + more;
  return hexOf(first) + more;
}

function hexOf(bytes: Uint8Array, max = 36): string {
  const hex = Buffer.from(bytes.subarray(0, max)).toString("hex");
  return bytes.length > max ? `${hex}…(${bytes.length} B)` : `${hex || "(empty)"}`;
}

function shorten(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 12)}…(${text.length} ch)` : text;
}

/**
 * Random messages of the method's input type bent by `mutation`; with
 * `mustMutate`, retried until the mutation changed something (undefined if
 * it never does: the method has no field of that kind).
 */
function generated(context: ClassContext, name: string, mutation: Mutation | undefined, mustMutate = true): FuzzRequest | undefined {
  const count = isStreamingRequest(context.rpc) ? context.rng.between(1, 3) : 1;
  for (let attempt = 0; attempt < 6; attempt++) {
    const jsons: Array<{ [key: string]: Json }> = [];
    let mutated = 0;
    for (let i = 0; i < count; i++) {
      const message = randomMessage(context.rpc.input, context.generator, mutation);
      jsons.push(message.json);
      mutated += message.mutated;
    }
    if (mustMutate && mutated === 0) continue;
    const messages = encode(context.rpc.input, jsons, context.encoding);
    if (!messages) return undefined;
    return { inputClass: name, messages, reproducer: reproducerOf(messages, context.encoding) };
  }
  return undefined;
}

/** A valid message, encoded, then changed by `change` (bytes of the first message). */
function bytesClass(context: ClassContext, name: string, change: (bytes: Uint8Array) => Uint8Array | undefined): FuzzRequest | undefined {
  const base = generated(context, name, undefined, false);
  if (!base) return undefined;
  const changed = change(base.messages[0]!);
  if (!changed) return undefined;
  const messages = [changed, ...base.messages.slice(1)];
  return { inputClass: name, messages, reproducer: reproducerOf(messages, "binary") };
}

/** Appends a record for a field found by `accept` (wrapped in the message fields leading to it). */
function appendRecord(
  context: ClassContext,
  name: string,
  accept: (field: DescField) => boolean,
  record: (field: DescField) => number[],
): FuzzRequest | undefined {
  const paths = fieldPaths(context.rpc.input, accept);
  if (paths.length === 0) return undefined;
  const path = context.rng.pick(paths);
  return bytesClass(context, name, (bytes) => concat(bytes, wrapInPath(path, record(path[path.length - 1]!))));
}


function insertAt(value: string, insert: string, rng: Random): string {
  const at = rng.int(value.length + 1);
  return value.slice(0, at) + insert + value.slice(at);
}

/** The message-level classes: plausible messages with some values replaced; they go out as JSON and as binary. */
const messageClasses: InputClass[] = [
  {
    name: "valid",
    weight: 4,
    fits: anyMessageTransport,
    build: (context) => generated(context, "valid", undefined, false),
  },
  {
    name: "nul",
    weight: 1,
    fits: (transport, rpc) => anyMessageTransport(transport) && carriesStrings(rpc),
    build: (context) =>
      generated(context, "nul", { string: (value) => (context.rng.chance(0.5) ? insertAt(value, "\u0000", context.rng) : undefined) }),
  },
  {
    name: "odd-strings",
    weight: 1,
    fits: (transport, rpc) => anyMessageTransport(transport) && carriesStrings(rpc),
    build: (context) => generated(context, "odd-strings", { string: () => (context.rng.chance(0.5) ? context.rng.pick(ODD_STRINGS) : undefined) }),
  },
  {
    name: "bad-ids",
    weight: 2,
    fits: (transport, rpc) => anyMessageTransport(transport) && hasRole(rpc, "log-id", "node-id"),
    build: (context) =>
      generated(context, "bad-ids", {
        string: (_value, slot) => (slot === "log-id" ? context.rng.pick(BAD_LOG_IDS) : slot === "node-id" ? context.rng.pick(BAD_NODE_IDS) : undefined),
      }),
  },
  {
    name: "bad-page-token",
    weight: 1,
    fits: (transport, rpc) => anyMessageTransport(transport) && hasRole(rpc, "page-token"),
    build: (context) => {
      const token = () => (context.foreignTokens.length > 0 && context.rng.chance(0.4) ? context.rng.pick(context.foreignTokens) : context.rng.pick(BAD_PAGE_TOKENS));
      return generated(context, "bad-page-token", {
        string: (_value, slot) => (slot === "page-token" ? token() : undefined),
        scalar: (field) => (fieldRole(field) === "page-token" ? Buffer.from(token()).toString("base64") : undefined),
      });
    },
  },
  {
    name: "positions",
    weight: 2,
    fits: (transport, rpc) => anyMessageTransport(transport) && carriesNumbers(rpc),
    build: (context) =>
      generated(context, "positions", {
        scalar: (field) => {
          if (field.scalar === undefined || !context.rng.chance(0.7)) return undefined;
          if (isInteger(field.scalar)) return context.rng.pick(extremeIntegers(field.scalar));
          if (fieldRole(field) === "double") return context.rng.pick(EXTREME_DOUBLES);
          return undefined;
        },
      }),
  },
  {
    name: "huge-string",
    weight: 0.4,
    fits: (transport, rpc) => anyMessageTransport(transport) && hasField(rpc, (field) => field.scalar === ScalarType.STRING || field.scalar === ScalarType.BYTES),
    build: (context) => {
      // Mostly under the 4 MiB message limit, sometimes over it.
      const size = context.rng.pick([64 * 1024, 512 * 1024, 1024 * 1024, 4 * 1024 * 1024 + 1]);
      let done = false;
      const once = () => !done && context.rng.chance(0.5) && (done = true);
      return generated(context, "huge-string", {
        string: () => (once() ? "x".repeat(size) : undefined),
        scalar: (field) => (field.scalar === ScalarType.BYTES && once() ? Buffer.alloc(size, 0x78).toString("base64") : undefined),
      });
    },
  },
  {
    name: "deep-json",
    weight: 2,
    fits: (transport, rpc) => anyMessageTransport(transport) && hasField(rpc, isStructField),
    build: (context) => {
      const depth = context.depth ?? context.rng.pick(DEEP_JSON_SWEEP);
      return generated(context, `deep-json`, { struct: () => deepJson(depth, context.rng) });
    },
  },
];

/** Classes only JSON can carry. */
const jsonClasses: InputClass[] = [
  {
    name: "lone-surrogate",
    weight: 2,
    fits: (transport, rpc) => transport === "connect-json" && carriesStrings(rpc),
    build: (context) =>
      generated(context, "lone-surrogate", { string: (value) => (context.rng.chance(0.5) ? insertAt(value, context.rng.pick(LONE_SURROGATES), context.rng) : undefined) }),
  },
  {
    name: "unknown-field",
    weight: 1,
    fits: (transport) => transport === "connect-json",
    build: (context) =>
      generated(context, "unknown-field", { extraKeys: () => (context.rng.chance(0.6) ? { [context.rng.pick(["noSuchField", "log_idd", "x"])]: context.rng.pick<Json>([1, "a", {}, [1], null]) } : undefined) }),
  },
  {
    name: "bad-enum-name",
    weight: 1,
    fits: (transport, rpc) => transport === "connect-json" && hasField(rpc, isEnumField),
    build: (context) =>
      generated(context, "bad-enum-name", {
        scalar: (field, value) => {
          if (!field.enum || typeof value !== "string") return undefined;
          return context.rng.pick<Json>([value.slice(0, -1), value.toLowerCase(), `${value}X`, "UNKNOWN", 99, -1, 2 ** 31, ""]);
        },
      }),
  },
  {
    name: "wrong-type",
    weight: 1,
    fits: (transport) => transport === "connect-json",
    build: (context) =>
      generated(context, "wrong-type", {
        scalar: () => (context.rng.chance(0.5) ? context.rng.pick<Json>(["abc", [], {}, true, 1.5, "1e999", "0x10", " 1", -0.5, "NaN", "=="]) : undefined),
        string: () => (context.rng.chance(0.3) ? (context.rng.pick<Json>([1, [], {}, true]) as unknown as string) : undefined),
      }),
  },
  {
    name: "json-syntax",
    weight: 2,
    fits: (transport) => transport === "connect-json",
    build: (context) => {
      const rng = context.rng;
      const base = generated(context, "json-syntax", undefined, false);
      const text = new TextDecoder().decode(base?.messages[0] ?? new Uint8Array());
      const variants: Array<[string, () => Uint8Array]> = [
        ["truncated", () => new TextEncoder().encode(text.slice(0, rng.int(Math.max(1, text.length))))],
        ["random-bytes", () => rng.bytes(rng.between(0, 200))],
        ["invalid-utf8", () => concat(new TextEncoder().encode('{"'), rng.pick(INVALID_UTF8), new TextEncoder().encode('":1}'))],
        ["invalid-utf8-value", () => concat(new TextEncoder().encode(text.slice(0, -1) + (text.length > 2 ? "," : "") + '"x":"'), rng.pick(INVALID_UTF8), new TextEncoder().encode('"}'))],
        ["deep-unknown", () => new TextEncoder().encode(`{"x":${"[".repeat(rng.pick([200, 5000, 100_000]))}`)],
        ["not-an-object", () => new TextEncoder().encode(rng.pick(["null", "[]", "1", '"x"', "", " ", "{}{}", "{,}"]))],
        ["duplicate-key", () => new TextEncoder().encode(text.length > 2 ? `${text.slice(0, -1)},${text.slice(1)}` : '{"a":1,"a":2}')],
      ];
      const [variant, make] = rng.pick(variants);
      const bytes = make();
      return { inputClass: `json-syntax:${variant}`, messages: [bytes], reproducer: shorten(JSON.stringify(new TextDecoder().decode(bytes)), 90) };
    },
  },
];

/** Classes of protobuf binary that no library would write. */
const binaryClasses: InputClass[] = [
  {
    name: "random-bytes",
    weight: 2,
    fits: (transport) => isBinary(transport),
    build: (context) => {
      const messages = [context.rng.bytes(context.rng.between(0, 300))];
      return { inputClass: "random-bytes", messages, reproducer: hexOf(messages[0]!) };
    },
  },
  {
    name: "truncated",
    weight: 2,
    fits: (transport) => isBinary(transport),
    build: (context) => bytesClass(context, "truncated", (bytes) => (bytes.length > 1 ? bytes.subarray(0, context.rng.between(1, bytes.length - 1)) : undefined)),
  },
  {
    name: "invalid-utf8",
    weight: 2,
    fits: (transport, rpc) => isBinary(transport) && hasField(rpc, isStringField),
    build: (context) => appendRecord(context, "invalid-utf8", isStringField, (field) => lengthDelimited(field.number, [0x61, ...context.rng.pick(INVALID_UTF8)])),
  },
  {
    name: "bad-enum-number",
    weight: 1,
    fits: (transport, rpc) => isBinary(transport) && hasField(rpc, isEnumField),
    build: (context) =>
      appendRecord(context, "bad-enum-number", isEnumField, (field) => [...tag(field.number, WireType.Varint), ...varint(context.rng.pick([99n, 2147483647n, -1n, 4294967296n]))]),
  },
  {
    name: "bad-wire-type",
    weight: 1,
    fits: (transport, rpc) => isBinary(transport) && rpc.input.fields.length > 0,
    build: (context) => appendRecord(context, "bad-wire-type", () => true, (field) => wrongWireTypeRecord(field, (items) => context.rng.pick(items))),
  },
  {
    name: "unknown-field-binary",
    weight: 1,
    fits: (transport) => isBinary(transport),
    build: (context) =>
      bytesClass(context, "unknown-field-binary", (bytes) =>
        concat(bytes, context.rng.pick([lengthDelimited(1000, [1, 2, 3]), [...tag(2047, WireType.Varint), 5], [...tag(536870911, WireType.Bit64), 1, 2, 3, 4, 5, 6, 7, 8]])),
      ),
  },
  {
    name: "deep-bytes",
    weight: 1,
    fits: (transport) => isBinary(transport),
    build: (context) => {
      const depth = context.rng.pick([99, 100, 101, 1000, 20_000]);
      const structs = fieldPaths(context.rpc.input, isStructField);
      if (structs.length > 0 && context.rng.chance(0.6)) {
        const path = context.rng.pick(structs);
        const struct = nestedStruct(Math.ceil(depth / 3));
        const record = [...tag(path[path.length - 1]!.number, WireType.LengthDelimited), ...varint(BigInt(struct.length))];
        return bytesClass(context, "deep-bytes:struct", (bytes) => concat(bytes, wrapInPath(path, [...record, ...struct])));
      }
      return bytesClass(context, "deep-bytes:groups", (bytes) => concat(bytes, nestedGroups(depth)));
    },
  },
];

/** gRPC / Connect framing: an envelope is a flags byte, a 4-byte big-endian length and the message. */
export function envelope(flags: number, payload: Uint8Array, declaredLength = payload.length): Uint8Array {
  const header = new Uint8Array(5);
  header[0] = flags;
  new DataView(header.buffer).setUint32(1, declaredLength >>> 0);
  return concat(header, payload);
}

/** Broken framing of the request body, where the protocol frames messages (gRPC, gRPC-Web, Connect streams). */
const framingClasses: InputClass[] = [
  {
    name: "bad-envelope",
    weight: 2,
    fits: (transport, rpc) => transport === "h2-raw" || transport === "grpc-web" || ((transport === "connect-json" || transport === "connect-proto") && isStreamingCall(rpc)),
    build: (context) => {
      const rng = context.rng;
      const base = generated(context, "bad-envelope", undefined, false);
      if (!base) return undefined;
      const message = base.messages[0]!;
      const variants: Array<[string, () => Uint8Array]> = [
        ["length-over", () => envelope(0, message, message.length + rng.between(1, 100))],
        ["trailing-partial", () => concat(envelope(0, message), [0, 0, 0])],
        ["compressed-no-encoding", () => envelope(1, message)],
        ["reserved-flags", () => envelope(rng.pick([0x7e, 0x04, 0x80]), message)],
        ["huge-length", () => envelope(0, message.subarray(0, 4), 0xffffffff)],
        ["empty-body", () => new Uint8Array()],
        ["two-messages", () => concat(envelope(0, message), envelope(0, message))],
        ["unframed", () => message],
      ];
      const [variant, make] = rng.pick(variants.filter(([name]) => name !== "two-messages" || !isStreamingRequest(context.rpc)));
      const body = make();
      return {
        inputClass: `bad-envelope:${variant}`,
        messages: base.messages,
        body,
        reproducer: hexOf(body),
        ...(variant === "compressed-no-encoding"
          ? { expectedInternal: "grpc/doc/compression.md: a compressed flag without grpc-encoding MUST fail with INTERNAL (connect-es does the same for Connect streams)" }
          : {}),
      };
    },
  },
  {
    name: "bad-headers",
    weight: 1,
    fits: (transport) => transport === "h2-raw" || transport === "connect-json" || transport === "connect-proto",
    build: (context) => {
      const rng = context.rng;
      const base = generated(context, "bad-headers", undefined, false);
      if (!base) return undefined;
      const path = `/${context.rpc.parent.typeName}/${context.rpc.name}`;
      const variants: Array<[string, Partial<FuzzRequest>]> =
        context.transport === "h2-raw"
          ? [
              ["content-type", { headers: { "content-type": rng.pick(["application/json", "text/plain", "application/grpc+json", "application/grpcx"]) } }],
              ["no-content-type", { headers: { "content-type": null } }],
              [
                "timeout",
                {
                  headers: { "grpc-timeout": rng.pick(["abc", "-1S", "999999999H", "1n", "100000000000S"]) },
                  expectedInternal:
                    "grpc/doc/PROTOCOL-HTTP2.md allows grpc-timeout as at most 8 digits and a unit; @grpc/grpc-js answers any other value with INTERNAL before any annals code runs",
                },
              ],
              ["no-te", { headers: { te: null } }],
              ["path", { path: rng.pick([`${path}/x`, `/${context.rpc.parent.typeName}/`, "/", `/..${path}`, `${path}%00`, path.toLowerCase()]) }],
              ["authorization", { headers: { authorization: rng.pick([`Bearer ${"a".repeat(16_000)}`, "Bearer", "Basic YTpi", "bearer  x.y.z", "Bearer a.b"]) } }],
              ["encoding", { headers: { "grpc-encoding": rng.pick(["br", "gzip", "identity, gzip", "x"]) } }],
            ]
          : [
              ["content-type", { headers: { "content-type": rng.pick(["text/plain", "application/json; charset=latin1", "application/x-www-form-urlencoded", "application/proto+json", "multipart/form-data"]) } }],
              ["timeout", { headers: { "connect-timeout-ms": rng.pick(["abc", "-5", "99999999999999", "1.5", ""]) } }],
              ["protocol-version", { headers: { "connect-protocol-version": rng.pick(["2", "0", "abc"]) } }],
              ["content-encoding", { headers: { "content-encoding": rng.pick(["gzip", "br", "x"]) } }],
              [
                "get",
                {
                  httpMethod: "GET",
                  path: `${path}?connect=v1&encoding=${rng.pick(["json", "proto", "xml"])}&message=${rng.pick(["%7B", "%00", "e30", "!!!", "%ED%A0%80", encodeURIComponent(new TextDecoder().decode(base.messages[0]))])}${rng.chance(0.3) ? "&base64=1" : ""}${rng.chance(0.2) ? "&compression=zz" : ""}`,
                },
              ],
              ["authorization", { headers: { authorization: rng.pick(["Bearer", "Basic YTpi", "bearer  x.y.z", "Bearer a.b"]) } }],
            ];
      const [variant, change] = rng.pick(variants);
      const reproducer = change.path
        ? `${change.httpMethod ?? "POST"} ${shorten(change.path.includes("?") ? `…?${change.path.split("?")[1]}` : change.path, 90)}`
        : JSON.stringify(change.headers);
      return { ...base, ...change, inputClass: `bad-headers:${variant}`, reproducer };
    },
  },
  {
    name: "h2-garbage",
    weight: 1,
    fits: (transport) => transport === "h2-socket",
    build: (context) => {
      const rng = context.rng;
      const preface = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
      const variants: Array<[string, () => Uint8Array]> = [
        ["preface+random", () => concat(preface, rng.bytes(rng.between(1, 400)))],
        ["random", () => rng.bytes(rng.between(1, 400))],
        ["http1", () => new TextEncoder().encode(`POST /${context.rpc.parent.typeName}/${context.rpc.name} HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc`)],
        // A HEADERS frame on stream 1 whose HPACK block is garbage.
        ["bad-hpack", () => concat(preface, [0, 0, 0, 4, 0, 0, 0, 0, 0], [0, 0, 8, 1, 5, 0, 0, 0, 1], rng.bytes(8))],
      ];
      const [variant, make] = rng.pick(variants);
      const socketBytes = make();
      return { inputClass: `h2-garbage:${variant}`, messages: [], socketBytes, reproducer: hexOf(socketBytes) };
    },
  },
];

const rpcClasses = [...messageClasses, ...jsonClasses, ...binaryClasses, ...framingClasses];

/** Builds the request of one planned RPC case. */
export function buildRpcCase(plan: CasePlan, context: BuildContext): FuzzRequest {
  const rpc = plan.rpc!;
  const rng = new Random(plan.seed);
  const name = plan.method;
  const classContext: ClassContext = {
    rng,
    rpc,
    transport: plan.transport,
    encoding: plan.transport === "connect-json" ? "json" : "binary",
    generator: { rng, logIds: context.logIds, pageTokens: context.pageTokens.get(name) ?? [], serviceNames: context.serviceNames },
    foreignTokens: [...context.pageTokens].filter(([method]) => method !== name).flatMap(([, tokens]) => tokens),
  };
  if (plan.sweep) {
    const swept = rpcClasses
      .find((candidate) => candidate.name === plan.sweep!.inputClass)
      ?.build({ ...classContext, depth: plan.sweep.depth, generator: { ...classContext.generator, complete: true } });
    if (swept) return { ...swept, inputClass: `${swept.inputClass}:${plan.sweep.depth}` };
  }
  const fitting = rpcClasses.filter((candidate) => candidate.fits(plan.transport, rpc));
  for (let attempt = 0; attempt < 8; attempt++) {
    const chosen = rng.weighted(fitting.map((candidate) => [candidate.weight, candidate] as const));
    const request = chosen.build(classContext);
    if (request) return request;
  }
  // Nothing fitted (a method without the fields those classes bend): a valid message.
  return generated(classContext, "valid", undefined, false) ?? { inputClass: "valid", messages: [new Uint8Array()], reproducer: "(empty)" };
}

/** Builds the request of one planned SSE case: odd paths, query parameters and Last-Event-ID values. */
export function buildSseCase(plan: CasePlan, context: BuildContext): FuzzRequest {
  const rng = new Random(plan.seed);
  const segment = rng.weighted<string>([
    [3, encodeURIComponent(rng.pick(context.logIds))],
    [1, rng.pick(["%2E%2E", "..", ".", "%2e", "a%2F..%2Fb", "%00", "%ZZ", "%", "%ED%A0%80", "%C0%AE", "mirror%2Fx", "a".repeat(300), "", "a/b/c", "%2F", "%E2%80%AE"])],
  ]);
  const query: string[] = [];
  if (rng.chance(0.85)) query.push(`kinds=${rng.pick([">", "fuzz.>", "", "a..b", "%00", Array(200).fill(">").join(","), "%ED%A0%80", "*", "%ZZ", "fuzz.*,order.>"])}`);
  if (rng.chance(0.3)) query.push(`snapshot=${rng.pick(["-1", "1e3", "abc", "99999999999999999999", "0", "5", "1001", ""])}`);
  if (rng.chance(0.1)) query.push(rng.pick(["kinds", "topics", "=", "&&", "token", "%ZZ=1"]));
  const headers: Record<string, string> = {};
  if (rng.chance(0.4)) {
    headers["last-event-id"] = rng.pick(["-1", "0", "3", "999999", "9223372036854775807", "9223372036854775808", "18446744073709551616", "1e3", " 5", "abc", "0x10", "", "\u00ff"]);
  }
  let path = `/v1/logs/${segment}/events${query.length > 0 ? `?${query.join("&")}` : ""}`;
  let inputClass = "sse";
  if (rng.chance(0.1)) {
    path = rng.pick(["/v1/logs//events", "/v1/logs/a/events/x", "/v1/logs/%/events", "/metrics", "/", "/v1/logs/a/events?%", "//v1/logs/a/events"]);
    inputClass = "sse:other-path";
  } else if (segment !== encodeURIComponent(context.logIds[0] ?? "") && !context.logIds.map(encodeURIComponent).includes(segment)) {
    inputClass = "sse:odd-log";
  } else if (headers["last-event-id"] !== undefined) {
    inputClass = "sse:last-event-id";
  } else {
    inputClass = "sse:query";
  }
  return { inputClass, messages: [], path, headers, reproducer: shorten(`${path}${headers["last-event-id"] !== undefined ? ` Last-Event-ID: ${JSON.stringify(headers["last-event-id"])}` : ""}`, 100) };
}
