import { create, fromBinary, type DescField, type DescMessage, type DescOneof, type JsonObject, type JsonValue, type Message } from "@bufbuild/protobuf";
import { StructSchema, ValueSchema } from "@bufbuild/protobuf/wkt";
import { BinaryReader } from "@bufbuild/protobuf/wire";

// fromBinary for requests that carry JSON payloads (google.protobuf.Struct
// fields, e.g. an appended entry's payload): protobuf-es builds a Struct
// message, a map entry and a Value message per member and then converts them
// into the plain JSON object the field holds; that was most of the log
// service's CPU per appended entry (issue 20). This reads those fields
// straight into JSON and leaves every other field to fromBinary, with
// fromBinary's results: the same reads in the same order (a known field is
// read by its type whatever its wire type says, strings are checked as UTF-8
// as the descriptors say, the same recursion limit). Inputs whose meaning
// depends on merging (a message field or one oneof given twice) are decoded
// by fromBinary itself (json-field-decoding.test.ts pins the equivalence).

/** protobuf-es's default recursion limit (nested messages). */
const RECURSION_LIMIT = 100;

/** Thrown inside the reader when fromBinary must decide: nothing of the fast read is kept. */
const IRREGULAR = Symbol("irregular");

const STRUCT = StructSchema.typeName;
const strictKeys = StructSchema.fields[0]!.utf8Validation;
const strictStrings = ValueSchema.field.stringValue.utf8Validation;

/**
 * The fields of a message that this reader decodes itself: Struct fields
 * (not inside google.protobuf types), and singular or repeated message
 * fields whose message holds such a field; empty when fromBinary can do all.
 */
const jsonPaths = new WeakMap<DescMessage, Map<number, DescField>>();

function pathsOf(desc: DescMessage, visiting = new Set<DescMessage>()): Map<number, DescField> {
  let paths = jsonPaths.get(desc);
  if (paths) return paths;
  paths = new Map();
  if (!desc.typeName.startsWith("google.protobuf.") && !visiting.has(desc)) {
    visiting.add(desc);
    for (const field of desc.fields) {
      const isMessage = field.fieldKind === "message" || (field.fieldKind === "list" && field.listKind === "message");
      if (!isMessage || field.delimitedEncoding) continue;
      const message = field.message;
      if ((field.fieldKind === "message" && message.typeName === STRUCT) || (message.typeName !== STRUCT && pathsOf(message, visiting).size > 0)) {
        paths.set(field.number, field);
      }
    }
    visiting.delete(desc);
  }
  // A message still being visited (a cycle) is not memoised: its answer may be partial.
  if (visiting.size === 0 || paths.size > 0) jsonPaths.set(desc, paths);
  return paths;
}

/** fromBinary(schema, bytes), with Struct fields read straight into JSON. */
export function fromBinaryWithJson<Desc extends DescMessage>(schema: Desc, bytes: Uint8Array): Message {
  if (pathsOf(schema).size === 0) return fromBinary(schema, bytes);
  try {
    return readMessage(schema, new BinaryReader(bytes), bytes, bytes.byteLength, 1);
  } catch {
    // Irregular or malformed input: fromBinary decides, and says why it does not decode.
    return fromBinary(schema, bytes);
  }
}

function readMessage(desc: DescMessage, reader: BinaryReader, bytes: Uint8Array, end: number, depth: number): Message {
  if (depth > RECURSION_LIMIT) throw IRREGULAR;
  const paths = pathsOf(desc);
  const rest: Uint8Array[] = [];
  const read: [DescField, unknown][] = [];
  /** The field each oneof was last given by. */
  const oneofs = new Map<DescOneof, DescField>();
  while (reader.pos < end) {
    const start = reader.pos;
    const [number, wireType] = reader.tag();
    const path = paths.get(number);
    const field = path ?? desc.fields.find((candidate) => candidate.number === number);
    if (field?.oneof) {
      // Which member a oneof ends with depends on the order of all its members: fromBinary's to say.
      const earlier = oneofs.get(field.oneof);
      if (earlier && earlier !== field && (path || paths.has(earlier.number))) throw IRREGULAR;
      oneofs.set(field.oneof, field);
    }
    if (!path) {
      reader.skip(wireType, number, RECURSION_LIMIT - depth);
      rest.push(bytes.subarray(start, reader.pos));
      continue;
    }
    if (path.fieldKind === "message" && read.some(([done]) => done === path)) throw IRREGULAR;
    const fieldEnd = reader.uint32() + reader.pos;
    const value = path.message!.typeName === STRUCT ? readStruct(reader, fieldEnd, depth + 1) : readMessage(path.message!, reader, bytes, fieldEnd, depth + 1);
    if (reader.pos !== fieldEnd) throw IRREGULAR;
    read.push([path, value]);
  }
  const message: Record<string, unknown> =
    rest.length === 0 ? create(desc) : fromBinary(desc, concatLike(bytes, rest), { recursionLimit: RECURSION_LIMIT - depth + 1 });
  for (const [field, value] of read) {
    if (field.oneof) message[field.oneof.localName] = { case: field.localName, value };
    else if (field.fieldKind === "list") (message[field.localName] as unknown[]).push(value);
    else message[field.localName] = value;
  }
  return message as Message;
}

/** The parts as one array of the input's class (unknown fields keep it: a Buffer's are Buffers). */
function concatLike(input: Uint8Array, parts: Uint8Array[]): Uint8Array {
  const joined = Buffer.concat(parts);
  return Buffer.isBuffer(input) ? joined : new Uint8Array(joined.buffer, joined.byteOffset, joined.byteLength);
}

/** A Struct as protobuf-es reads it and then holds it as JSON (a member without a value is null). */
function readStruct(reader: BinaryReader, end: number, depth: number): JsonObject {
  if (depth > RECURSION_LIMIT) throw IRREGULAR;
  const json: JsonObject = {};
  while (reader.pos < end) {
    const [number, wireType] = reader.tag();
    if (number !== 1) {
      reader.skip(wireType, number, RECURSION_LIMIT - depth);
      continue;
    }
    // A map entry: key 1, value 2, whatever their wire types say (as readMapEntry reads it).
    const entryEnd = reader.uint32() + reader.pos;
    let key = "";
    let value: JsonValue = null;
    while (reader.pos < entryEnd) {
      const [entryField] = reader.tag();
      if (entryField === 1) key = reader.string(strictKeys);
      else if (entryField === 2) value = readValue(reader, reader.uint32() + reader.pos, depth + 1);
      else throw IRREGULAR;
    }
    // protobuf-es's JSON object never holds "__proto__" (its assignment sets the prototype instead).
    if (key !== "__proto__") json[key] = value;
  }
  return json;
}

/** A Value as JSON: the kind read last; none is null. */
function readValue(reader: BinaryReader, end: number, depth: number): JsonValue {
  if (depth > RECURSION_LIMIT) throw IRREGULAR;
  let value: JsonValue = null;
  let messageKind = 0;
  while (reader.pos < end) {
    const [number, wireType] = reader.tag();
    switch (number) {
      case 1:
        reader.int32();
        value = null;
        break;
      case 2:
        value = reader.double();
        break;
      case 3:
        value = reader.string(strictStrings);
        break;
      case 4:
        value = reader.bool();
        break;
      case 5:
      case 6: {
        // A second struct or list value would merge into the first.
        if (messageKind !== 0) throw IRREGULAR;
        messageKind = number;
        const valueEnd = reader.uint32() + reader.pos;
        value = number === 5 ? readStruct(reader, valueEnd, depth + 1) : readList(reader, valueEnd, depth + 1);
        break;
      }
      default:
        reader.skip(wireType, number, RECURSION_LIMIT - depth);
    }
  }
  return value;
}

function readList(reader: BinaryReader, end: number, depth: number): JsonValue[] {
  if (depth > RECURSION_LIMIT) throw IRREGULAR;
  const values: JsonValue[] = [];
  while (reader.pos < end) {
    const [number, wireType] = reader.tag();
    if (number === 1) values.push(readValue(reader, reader.uint32() + reader.pos, depth + 1));
    else reader.skip(wireType, number, RECURSION_LIMIT - depth);
  }
  return values;
}
