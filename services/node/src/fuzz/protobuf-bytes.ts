// Hand-made protobuf records for the byte-level input classes: values no
// protobuf library would encode (invalid UTF-8, wrong wire types, nesting far
// past any recursion limit), appended to a valid message.
import { ScalarType, type DescField } from "@bufbuild/protobuf";
import { WireType } from "@bufbuild/protobuf/wire";

export function varint(value: bigint): number[] {
  let rest = BigInt.asUintN(64, value);
  const out: number[] = [];
  while (rest > 0x7fn) {
    out.push(Number(rest & 0x7fn) | 0x80);
    rest >>= 7n;
  }
  out.push(Number(rest));
  return out;
}

export function tag(fieldNo: number, wireType: WireType): number[] {
  // Field numbers go up to 2^29 - 1: shifting in 32-bit JS integers would overflow.
  return varint(BigInt(fieldNo) * 8n + BigInt(wireType));
}

export function lengthDelimited(fieldNo: number, payload: ArrayLike<number>): number[] {
  return [...tag(fieldNo, WireType.LengthDelimited), ...varint(BigInt(payload.length)), ...Array.from(payload)];
}

/**
 * Wraps `record` (bytes of fields of the last message on the path) into the
 * message fields of `path` (all but its last field), innermost first, so the
 * result is a record of the top-level message.
 */
export function wrapInPath(path: readonly DescField[], record: number[]): number[] {
  let bytes = record;
  for (let i = path.length - 2; i >= 0; i--) bytes = lengthDelimited(path[i]!.number, bytes);
  return bytes;
}

export function concat(...parts: ArrayLike<number>[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(Array.from(part), offset);
    offset += part.length;
  }
  return out;
}

/** An unknown field (number 9999) holding `depth` groups nested in one another. */
export function nestedGroups(depth: number): Uint8Array {
  const start = tag(9999, WireType.StartGroup);
  const end = tag(9999, WireType.EndGroup);
  const out = new Uint8Array(depth * (start.length + end.length));
  for (let i = 0; i < depth; i++) out.set(start, i * start.length);
  for (let i = 0; i < depth; i++) out.set(end, depth * start.length + i * end.length);
  return out;
}

/**
 * The bytes of a google.protobuf.Struct nested `levels` times through
 * `fields["d"].struct_value`: each level is three protobuf messages (Struct,
 * map entry, Value). Built back to front in one pass, so 10,000 levels cost
 * no more than their bytes.
 */
export function nestedStruct(levels: number): Uint8Array {
  // Per level, outermost first: Struct.fields (1) entry { key (1) = "d", value (2) Value { struct_value (5) Struct } }.
  const headers: number[][] = [];
  let length = 0; // bytes of the innermost (empty) Struct
  for (let level = 0; level < levels; level++) {
    const value = [...tag(5, WireType.LengthDelimited), ...varint(BigInt(length))];
    const valueLength = value.length + length;
    const entryBody = [...lengthDelimited(1, [0x64]), ...tag(2, WireType.LengthDelimited), ...varint(BigInt(valueLength))];
    const entryLength = entryBody.length + valueLength;
    const entry = [...tag(1, WireType.LengthDelimited), ...varint(BigInt(entryLength))];
    const levelHeader = [...entry, ...entryBody, ...value];
    headers.push(levelHeader);
    length += levelHeader.length;
  }
  const out = new Uint8Array(length);
  let offset = 0;
  for (let i = headers.length - 1; i >= 0; i--) {
    out.set(headers[i]!, offset);
    offset += headers[i]!.length;
  }
  return out;
}

/** A wire type that does not fit the field (varint for a length-delimited field and vice versa), or one that does not exist. */
export function wrongWireTypeRecord(field: DescField, pick: (items: number[]) => number): number[] {
  const expectsLength = field.fieldKind !== "scalar" && field.fieldKind !== "enum" ? true : field.scalar === ScalarType.STRING || field.scalar === ScalarType.BYTES;
  const wireType: WireType = pick(expectsLength ? [WireType.Varint, WireType.Bit32, 6, 7] : [WireType.LengthDelimited, WireType.EndGroup, 6, 7]);
  if (wireType === WireType.Varint) return [...tag(field.number, wireType), 0x01];
  if (wireType === WireType.Bit32) return [...tag(field.number, wireType), 1, 2, 3, 4];
  if (wireType === WireType.LengthDelimited) return lengthDelimited(field.number, [1, 2, 3]);
  return [...tag(field.number, wireType), 0x01];
}
