// fromBinaryWithJson must decode exactly what fromBinary decodes, and refuse
// exactly what it refuses: the fast read of Struct fields is an optimisation
// of the gRPC listener (issue 20), never a second dialect.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { isDeepStrictEqual } from "node:util";
import { create, fromBinary, toBinary, type DescMessage, type JsonValue } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { logV1 } from "@annals/proto";
import { fromBinaryWithJson } from "./json-field-decoding.js";

/** Both decoders give equal messages, or both throw; for the bytes as a Uint8Array and as a Buffer (as grpc-js hands them). */
function assertSameDecoding(schema: DescMessage, bytes: Uint8Array): void {
  assertSameDecodingOf(schema, new Uint8Array(bytes));
  assertSameDecodingOf(schema, Buffer.from(bytes));
}

function assertSameDecodingOf(schema: DescMessage, bytes: Uint8Array): void {
  let expected: unknown;
  try {
    expected = fromBinary(schema, bytes);
  } catch {
    assert.throws(() => fromBinaryWithJson(schema, bytes));
    return;
  }
  const actual = fromBinaryWithJson(schema, bytes);
  assert.ok(isDeepStrictEqual(actual, expected), `decoded differently:\n${JSON.stringify(actual, replacer)}\n${JSON.stringify(expected, replacer)}`);
}

const replacer = (_: string, value: unknown) => (typeof value === "bigint" ? `${value}n` : value);

/** A pseudo-random JSON value (deterministic: a linear congruential generator). */
function randomJson(seed: number, depth: number): JsonValue {
  let state = seed;
  const next = (n: number) => ((state = (state * 1103515245 + 12345) % 2 ** 31), state % n);
  const value = (level: number): JsonValue => {
    switch (next(level >= depth ? 4 : 6)) {
      case 0:
        return null;
      case 1:
        return next(2) === 0;
      case 2:
        return [0, -1.5, 1e21, 2 ** 53 - 1, 5e-324, -0][next(6)]!;
      case 3:
        return ["", "é", "日本", "a\"b\\c", "\u{1f600}", "line\nbreak"][next(6)]!;
      case 4:
        return Array.from({ length: next(4) }, () => value(level + 1));
      default:
        return Object.fromEntries(Array.from({ length: next(4) }, (_, i) => [["k", "", "é", "10", "2"][next(5)]! + i, value(level + 1)]));
    }
  };
  return { root: value(1) };
}

function appendBatch(payloads: JsonValue[]): Uint8Array {
  const entries = payloads.map((payload, i) => ({
    kind: "test.kind",
    body: { case: "payload" as const, value: payload as { [key: string]: JsonValue } },
    sourceId: `s${i}`,
    metadata: { a: "b" },
    simTime: i,
  }));
  return toBinary(logV1.AppendBatchRequestSchema, create(logV1.AppendBatchRequestSchema, { logId: "l", entries }));
}

/** An EntryInput's bytes, field by field as given (to make inputs toBinary never writes). */
function entryBytes(write: (writer: BinaryWriter) => void): Uint8Array {
  const writer = new BinaryWriter();
  write(writer);
  return writer.finish();
}

/** A Struct { key: text } as bytes, or { key: value } with the Value's bytes. */
function structBytes(key: string, text: string, value = new BinaryWriter().tag(3, WireType.LengthDelimited).string(text).finish()): Uint8Array {
  const entry = new BinaryWriter().tag(1, WireType.LengthDelimited).string(key).tag(2, WireType.LengthDelimited).bytes(value).finish();
  return new BinaryWriter().tag(1, WireType.LengthDelimited).bytes(entry).finish();
}

describe("fromBinaryWithJson", () => {
  test("decodes random payloads as fromBinary does", () => {
    for (let seed = 1; seed <= 200; seed++) assertSameDecoding(logV1.AppendBatchRequestSchema, appendBatch([randomJson(seed, 6), randomJson(seed + 1000, 3)]));
  });

  test("decodes every AppendStream frame as fromBinary does", () => {
    const entry = { kind: "k", body: { case: "payload" as const, value: { a: [1, { b: null }] } }, requestId: "r" };
    const frames: logV1.AppendStreamRequest["frame"][] = [
      { case: "options", value: create(logV1.AppendStreamOptionsSchema, { logId: "l", continueOnFailure: true }) },
      { case: "entry", value: create(logV1.AppendStreamEntrySchema, { logId: "l", entry }) },
      { case: "batch", value: create(logV1.AppendStreamBatchSchema, { logId: "l", entries: [entry, entry] }) },
    ];
    for (const frame of frames) {
      assertSameDecoding(logV1.AppendStreamRequestSchema, toBinary(logV1.AppendStreamRequestSchema, create(logV1.AppendStreamRequestSchema, { frame })));
    }
  });

  test("keeps fromBinary's answer for inputs that depend on merging or on the order of a oneof", () => {
    const payload = structBytes("a", "x");
    const cases = [
      // payload twice: the Structs merge
      entryBytes((w) => w.tag(3, WireType.LengthDelimited).bytes(payload).tag(3, WireType.LengthDelimited).bytes(structBytes("b", "y"))),
      // payload, then binary_payload (the oneof ends binary), and the other way round
      entryBytes((w) => w.tag(3, WireType.LengthDelimited).bytes(payload).tag(8, WireType.LengthDelimited).bytes(new Uint8Array([1]))),
      entryBytes((w) => w.tag(8, WireType.LengthDelimited).bytes(new Uint8Array([1])).tag(3, WireType.LengthDelimited).bytes(payload)),
      // a key given twice, an unknown field inside the Struct, an empty Value (null)
      entryBytes((w) => w.tag(3, WireType.LengthDelimited).bytes(new Uint8Array([...structBytes("a", "x"), ...structBytes("a", "y"), 0x10, 0x01]))),
      entryBytes((w) => w.tag(3, WireType.LengthDelimited).bytes(new BinaryWriter().tag(1, WireType.LengthDelimited).bytes(new BinaryWriter().tag(1, WireType.LengthDelimited).string("n").finish()).finish())),
      // "__proto__" as a key, of a string and of an object
      entryBytes((w) => w.tag(3, WireType.LengthDelimited).bytes(structBytes("__proto__", "x"))),
      entryBytes((w) => w.tag(3, WireType.LengthDelimited).bytes(structBytes("__proto__", "", new BinaryWriter().tag(5, WireType.LengthDelimited).bytes(payload).finish()))),
      // an unknown field of EntryInput
      entryBytes((w) => w.tag(99, WireType.Varint).uint32(7).tag(3, WireType.LengthDelimited).bytes(payload)),
    ];
    for (const bytes of cases) assertSameDecoding(logV1.EntryInputSchema, bytes);
  });

  test("refuses what fromBinary refuses", () => {
    const invalidUtf8 = entryBytes((w) => w.tag(3, WireType.LengthDelimited).bytes(structBytes("a", "x").map((byte) => (byte === 0x78 ? 0xff : byte))));
    const truncated = appendBatch([{ a: "x" }]).subarray(0, 20);
    for (const bytes of [invalidUtf8, truncated]) assertSameDecoding(logV1.EntryInputSchema, bytes);
    assert.throws(() => fromBinaryWithJson(logV1.EntryInputSchema, invalidUtf8));
  });

  test("stops at fromBinary's recursion limit", () => {
    for (const levels of [40, 47, 48, 49, 50, 60]) {
      let value: JsonValue = 1;
      for (let i = 0; i < levels; i++) value = { a: value };
      assertSameDecoding(logV1.AppendBatchRequestSchema, appendBatch([value]));
    }
  });
});
