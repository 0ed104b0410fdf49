// Subscribe's catch-up sends every stored entry once per subscriber, and the
// reflective protobuf-es encoding of an Entry (its JSON payload converted to
// google.protobuf.Struct messages, then written field by field through
// chunk arrays) took most of the log service's CPU there. This writes the
// same bytes straight from a stored row: fields in number order, proto3
// defaults left out, exactly as toBinary(EntrySchema, entryMessage(row))
// does (entry-encoding.test.ts compares the two byte for byte). The row's
// JSON columns arrive as text and are transcoded to the wire without being
// parsed into objects (JSON.parse and the garbage of its objects were the
// next largest costs: bench log-catchup).
import { create } from "@bufbuild/protobuf";
import { WireType } from "@bufbuild/protobuf/wire";
import { logV1 } from "@annals/proto";
import { withEncoding } from "@annals/runtime";
import type { AppendedEntry } from "./append-plan.js";
import type { EntryLog } from "./entry-mapping.js";
import type { EntryWireRow } from "./store.js";

/** An entry's wire form and about how many bytes its payload takes in it. */
export interface EncodedEntry {
  bytes: Uint8Array;
  payloadBytes: number;
}

/**
 * A growable buffer for protobuf wire data. A length-delimited field reserves
 * one byte for its length and moves its contents when the length needs more
 * (≥ 128), so nothing is written twice in the usual case.
 */
class WireWriter {
  buf = Buffer.allocUnsafe(64 * 1024);
  pos = 0;

  reserve(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + bytes));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }

  /** A varint of a non-negative safe integer. */
  varint(value: number): void {
    this.reserve(10);
    const buf = this.buf;
    let pos = this.pos;
    while (value > 0x7f) {
      buf[pos++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
    buf[pos++] = value;
    this.pos = pos;
  }

  /** An int64 as protobuf writes it: a varint of its two's complement. */
  int64(value: bigint): void {
    if (value >= 0n && value <= 9007199254740991n) return this.varint(Number(value));
    let rest = BigInt.asUintN(64, value);
    this.reserve(10);
    while (rest > 0x7fn) {
      this.buf[this.pos++] = Number(rest & 0x7fn) | 0x80;
      rest >>= 7n;
    }
    this.buf[this.pos++] = Number(rest);
  }

  /** Starts a length-delimited value; returns where its contents begin (pass it to endLength). */
  beginLength(): number {
    this.reserve(1);
    this.pos += 1;
    return this.pos;
  }

  endLength(start: number): void {
    const length = this.pos - start;
    if (length < 0x80) {
      this.buf[start - 1] = length;
      return;
    }
    const extra = varintSize(length) - 1;
    this.reserve(extra);
    const buf = this.buf;
    buf.copyWithin(start + extra, start, this.pos);
    let pos = start - 1;
    let rest = length;
    while (rest > 0x7f) {
      buf[pos++] = (rest % 0x80) | 0x80;
      rest = Math.floor(rest / 0x80);
    }
    buf[pos] = rest;
    this.pos = start + extra + length;
  }

  string(value: string): void {
    this.stringRange(value, 0, value.length);
  }

  /** The UTF-8 of `source` from `from` to `to` (UTF-16 indices), as a length-delimited value. */
  stringRange(source: string, from: number, to: number): void {
    const start = this.beginLength();
    const length = to - from;
    this.reserve(length * 3);
    const buf = this.buf;
    const pos = this.pos;
    // Short ASCII strings (most keys and ids) are copied here; a call into
    // Buffer#write costs more than the loop.
    if (length <= 64) {
      let i = 0;
      for (; i < length; i++) {
        const code = source.charCodeAt(from + i);
        if (code >= 0x80) break;
        buf[pos + i] = code;
      }
      if (i === length) {
        this.pos = pos + i;
        return this.endLength(start);
      }
    }
    this.pos = pos + buf.write(from === 0 && to === source.length ? source : source.slice(from, to), pos, "utf8");
    this.endLength(start);
  }

  bytes(value: Uint8Array): void {
    this.varint(value.byteLength);
    this.reserve(value.byteLength);
    this.buf.set(value, this.pos);
    this.pos += value.byteLength;
  }

  double(value: number): void {
    this.reserve(8);
    this.buf.writeDoubleLE(value, this.pos);
    this.pos += 8;
  }

  /** A copy of the bytes from `start` to the end. */
  copy(start: number): Buffer {
    const copy = Buffer.allocUnsafe(this.pos - start);
    this.buf.copy(copy, 0, start, this.pos);
    return copy;
  }
}

function varintSize(value: number): number {
  let size = 1;
  while (value > 0x7f) {
    value = Math.floor(value / 0x80);
    size++;
  }
  return size;
}

function tag(fieldNo: number, wireType: WireType): number {
  return ((fieldNo << 3) | wireType) >>> 0;
}

const LENGTH = WireType.LengthDelimited;
// Entry (proto/annals/log/v1/entry.proto).
const ENTRY_LOG_ID = tag(1, LENGTH);
const ENTRY_SEQ = tag(2, WireType.Varint);
const ENTRY_UUID = tag(3, LENGTH);
const ENTRY_KIND = tag(4, LENGTH);
const ENTRY_PAYLOAD = tag(5, LENGTH);
const ENTRY_SOURCE_ID = tag(6, LENGTH);
const ENTRY_SIM_TIME = tag(7, WireType.Bit64);
const ENTRY_WALL_TIME_US = tag(8, WireType.Varint);
const ENTRY_METADATA = tag(9, LENGTH);
const ENTRY_REQUEST_ID = tag(10, LENGTH);
const ENTRY_PAYLOAD_DIGEST = tag(11, LENGTH);
const ENTRY_PREV_CHECKSUM = tag(12, LENGTH);
const ENTRY_CHECKSUM = tag(13, LENGTH);
const ENTRY_REDACTION = tag(14, LENGTH);
const ENTRY_CHAIN_LOG_ID = tag(15, LENGTH);
const ENTRY_BINARY_PAYLOAD = tag(16, LENGTH);
const ENTRY_CONTENT_TYPE = tag(17, LENGTH);
// Map entries, Redaction, EntryBatch.
const KEY = tag(1, LENGTH);
const VALUE = tag(2, LENGTH);
const REDACTION_SEQ = tag(1, WireType.Varint);
const REDACTION_REASON = tag(2, LENGTH);
const BATCH_ENTRY = tag(1, LENGTH);
// google.protobuf.Struct, Value and ListValue (struct.proto).
const STRUCT_FIELD = tag(1, LENGTH);
const VALUE_NULL = tag(1, WireType.Varint);
const VALUE_NUMBER = tag(2, WireType.Bit64);
const VALUE_STRING = tag(3, LENGTH);
const VALUE_BOOL = tag(4, WireType.Varint);
const VALUE_STRUCT = tag(5, LENGTH);
const VALUE_LIST = tag(6, LENGTH);
const LIST_VALUE = tag(1, LENGTH);
// AppendResult, and the `result` field (1) of AppendStreamResponse and AppendResponse (log_service.proto).
const RESULT_SEQ = tag(1, WireType.Varint);
const RESULT_CHECKSUM = tag(2, LENGTH);
const RESULT_WALL_TIME_US = tag(3, WireType.Varint);
const RESULT_UUID = tag(4, LENGTH);
const RESULT_DUPLICATE = tag(5, WireType.Varint);
const RESULT_FIELD_TAG = tag(1, LENGTH);
// SubscribeResponse's frames.
const FRAME_ENTRY = 1;
const FRAME_ENTRIES = 4;
const FRAME_ENTRY_TAG = tag(FRAME_ENTRY, LENGTH);
const FRAME_ENTRIES_TAG = tag(FRAME_ENTRIES, LENGTH);

function stringField(w: WireWriter, fieldTag: number, value: string): void {
  if (value === "") return;
  w.varint(fieldTag);
  w.string(value);
}

function int64Field(w: WireWriter, fieldTag: number, value: bigint): void {
  if (value === 0n) return;
  w.varint(fieldTag);
  w.int64(value);
}

/** Writes an Entry's fields; returns how many bytes its payload took. */
function writeEntry(w: WireWriter, log: EntryLog, row: EntryWireRow): number {
  stringField(w, ENTRY_LOG_ID, log.log_id);
  int64Field(w, ENTRY_SEQ, row.seq);
  stringField(w, ENTRY_UUID, row.uuid);
  stringField(w, ENTRY_KIND, row.kind);
  let payloadBytes = 0;
  if (row.payload !== null) {
    w.varint(ENTRY_PAYLOAD);
    const start = w.beginLength();
    transcoder.writeObject(w, row.payload, STRUCT_FIELD, true);
    payloadBytes = w.pos - start;
    w.endLength(start);
  }
  stringField(w, ENTRY_SOURCE_ID, row.source_id);
  if (row.sim_time !== null) {
    w.varint(ENTRY_SIM_TIME);
    w.double(row.sim_time);
  }
  int64Field(w, ENTRY_WALL_TIME_US, row.wall_time_us);
  if (row.metadata !== "{}") transcoder.writeObject(w, row.metadata, ENTRY_METADATA, false);
  stringField(w, ENTRY_REQUEST_ID, row.req_id ?? "");
  stringField(w, ENTRY_PAYLOAD_DIGEST, row.payload_digest);
  stringField(w, ENTRY_PREV_CHECKSUM, row.prev_checksum);
  stringField(w, ENTRY_CHECKSUM, row.checksum);
  if (row.redacted_by_seq !== null) {
    w.varint(ENTRY_REDACTION);
    const start = w.beginLength();
    int64Field(w, REDACTION_SEQ, row.redacted_by_seq);
    stringField(w, REDACTION_REASON, row.redaction_reason ?? "");
    w.endLength(start);
  }
  stringField(w, ENTRY_CHAIN_LOG_ID, log.chain_log_id ?? log.log_id);
  if (row.payload === null && row.binary_payload !== null) {
    w.varint(ENTRY_BINARY_PAYLOAD);
    w.bytes(row.binary_payload);
    payloadBytes = row.binary_payload.byteLength;
  }
  stringField(w, ENTRY_CONTENT_TYPE, row.content_type ?? "");
  return payloadBytes;
}

/** One writer per process: encoding is synchronous, so no two callers share it at once. */
const writer = new WireWriter();

/**
 * Writes the fields of a JSON object read as text (PostgreSQL's jsonb
 * output) straight to the wire, as writing JSON.parse(text) would, without
 * building the object: a Struct's fields (`struct`) or a map<string,
 * string>'s entries (metadata). `text` is valid JSON, as jsonb prints it.
 */
class JsonTranscoder {
  private w = writer;
  private text = "";
  private at = 0;

  /** The object `text` as repeated `fieldTag` map entries: Struct fields when `struct`, else string values. */
  writeObject(w: WireWriter, text: string, fieldTag: number, struct: boolean): void {
    this.w = w;
    this.text = text;
    this.at = 0;
    this.object(fieldTag, struct);
  }

  private object(fieldTag: number, struct: boolean): void {
    const w = this.w;
    const text = this.text;
    const objectStart = w.pos;
    // Field regions of integer-like keys, which JavaScript objects iterate first (see reorder).
    let indexFields: { index: number; from: number; to: number }[] | undefined;
    this.at++; // {
    for (;;) {
      const next = this.skipSpace();
      if (next === 0x7d /* } */) break;
      if (next === 0x2c /* , */) {
        this.at++;
        this.skipSpace();
      }
      const fieldStart = w.pos;
      w.varint(fieldTag);
      const entry = w.beginLength();
      w.varint(KEY);
      const keyFrom = this.at + 1;
      this.string();
      const index = arrayIndex(text, keyFrom, this.at - 1);
      this.skipSpace();
      this.at++; // :
      this.skipSpace();
      w.varint(VALUE);
      if (struct) {
        const value = w.beginLength();
        this.value();
        w.endLength(value);
      } else {
        this.string();
      }
      w.endLength(entry);
      if (index >= 0) (indexFields ??= []).push({ index, from: fieldStart, to: w.pos });
    }
    this.at++; // }
    if (indexFields) reorder(w, objectStart, indexFields);
  }

  private value(): void {
    const w = this.w;
    const c = this.text.charCodeAt(this.at);
    if (c === 0x22 /* " */) {
      w.varint(VALUE_STRING);
      this.string();
    } else if (c === 0x7b /* { */) {
      w.varint(VALUE_STRUCT);
      const start = w.beginLength();
      this.object(STRUCT_FIELD, true);
      w.endLength(start);
    } else if (c === 0x5b /* [ */) {
      w.varint(VALUE_LIST);
      const start = w.beginLength();
      this.at++;
      for (;;) {
        const next = this.skipSpace();
        if (next === 0x5d /* ] */) break;
        if (next === 0x2c /* , */) {
          this.at++;
          this.skipSpace();
        }
        w.varint(LIST_VALUE);
        const item = w.beginLength();
        this.value();
        w.endLength(item);
      }
      this.at++;
      w.endLength(start);
    } else if (c === 0x74 /* t */ || c === 0x66 /* f */) {
      w.varint(VALUE_BOOL);
      w.varint(c === 0x74 ? 1 : 0);
      this.at += c === 0x74 ? 4 : 5;
    } else if (c === 0x6e /* n */) {
      w.varint(VALUE_NULL);
      w.varint(0);
      this.at += 4;
    } else {
      const from = this.at;
      while (isNumberChar(this.text.charCodeAt(this.at))) this.at++;
      w.varint(VALUE_NUMBER);
      // Number() reads a JSON number to the same double as JSON.parse.
      w.double(Number(this.text.slice(from, this.at)));
    }
  }

  /** A JSON string at `at` (its opening quote), written as a length-delimited UTF-8 value. */
  private string(): void {
    const text = this.text;
    const from = this.at + 1;
    let at = from;
    let escaped = false;
    for (;;) {
      const c = text.charCodeAt(at);
      if (c === 0x22 /* " */) break;
      if (c === 0x5c /* \ */) {
        escaped = true;
        at++;
      }
      at++;
    }
    this.at = at + 1;
    if (escaped) this.w.string(JSON.parse(text.slice(from - 1, at + 1)) as string);
    else this.w.stringRange(text, from, at);
  }

  /** Skips whitespace; returns the character code it stopped at. */
  private skipSpace(): number {
    let c = this.text.charCodeAt(this.at);
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = this.text.charCodeAt(++this.at);
    return c;
  }
}

function isNumberChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b || c === 0x2e || c === 0x65 || c === 0x45;
}

/** The array index a key of text[from, to) names (a canonical integer below 2^32 − 1), else -1. */
function arrayIndex(text: string, from: number, to: number): number {
  const first = text.charCodeAt(from);
  if (first < 0x30 || first > 0x39 || to - from > 10 || (first === 0x30 && to - from > 1)) return -1;
  let value = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    value = value * 10 + (c - 0x30);
  }
  return value < 4294967295 ? value : -1;
}

/**
 * Moves the fields of integer-like keys to the front of an object written
 * from `objectStart`, in ascending order: a JavaScript object (JSON.parse's,
 * which protobuf-es iterates) puts them before all other keys, whatever the
 * text order.
 */
function reorder(w: WireWriter, objectStart: number, indexFields: { index: number; from: number; to: number }[]): void {
  const written = w.copy(objectStart);
  const at = (position: number) => position - objectStart;
  w.pos = objectStart;
  const put = (from: number, to: number) => {
    written.copy(w.buf, w.pos, at(from), at(to));
    w.pos += to - from;
  };
  for (const field of [...indexFields].sort((a, b) => a.index - b.index)) put(field.from, field.to);
  let from = objectStart;
  for (const field of indexFields) {
    put(from, field.from);
    from = field.to;
  }
  put(from, objectStart + written.length);
}

/** One transcoder per process, for the same reason. */
const transcoder = new JsonTranscoder();

/** The wire form of entryMessage(log, row). */
export function encodeEntry(log: EntryLog, row: EntryWireRow): EncodedEntry {
  writer.pos = 0;
  const payloadBytes = writeEntry(writer, log, row);
  return { bytes: writer.copy(0), payloadBytes };
}

/**
 * A SubscribeResponse whose frame travels as already-encoded bytes: its
 * fields are unset and the frame is an unknown field, which toBinary writes
 * verbatim, so a binary encoding (gRPC, gRPC-web, Connect with protobuf, the
 * in-process transport) is the same as the frame's normal encoding and
 * decodes to the same message; the gRPC listener takes the bytes as they are
 * (withEncoding). A JSON encoding would drop the frame: only for binary
 * clients. `frame` is the whole encoding: the frame's tag (one byte), its
 * length and its contents.
 */
function splicedFrame(fieldNo: number, frame: Buffer): logV1.SubscribeResponse {
  const response = create(logV1.SubscribeResponseSchema);
  response.$unknown = [{ no: fieldNo, wireType: LENGTH, data: frame.subarray(1) }];
  return withEncoding(response, frame);
}

/** An `entry` frame of entryMessage(log, row), pre-encoded for a binary client. */
export function encodedEntryFrame(log: EntryLog, row: EntryWireRow): logV1.SubscribeResponse {
  writer.pos = 0;
  writer.varint(FRAME_ENTRY_TAG);
  const start = writer.beginLength();
  writeEntry(writer, log, row);
  writer.endLength(start);
  return splicedFrame(FRAME_ENTRY, writer.copy(0));
}

/**
 * `entries` frames of the rows' entries for a binary client: at most
 * `perFrame` entries and about `maxPayloadBytes` of payload each (an entry
 * larger than that goes alone), as subscription.ts cuts reflective frames.
 * Each entry is written into its frame in place.
 */
export function* encodedEntriesFrames(log: EntryLog, rows: readonly EntryWireRow[], perFrame: number, maxPayloadBytes: number): Generator<logV1.SubscribeResponse> {
  const frame = new WireWriter();
  let start = 0;
  let count = 0;
  let bytes = 0;
  const begin = () => {
    frame.pos = 0;
    frame.varint(FRAME_ENTRIES_TAG);
    start = frame.beginLength();
    count = 0;
    bytes = 0;
  };
  begin();
  for (const row of rows) {
    const entryAt = frame.pos;
    frame.varint(BATCH_ENTRY);
    const entryStart = frame.beginLength();
    const payloadBytes = writeEntry(frame, log, row);
    frame.endLength(entryStart);
    if (count > 0 && (count === perFrame || bytes + payloadBytes > maxPayloadBytes)) {
      // The frame ends before this entry, which starts the next one.
      const entry = frame.copy(entryAt);
      frame.pos = entryAt;
      frame.endLength(start);
      yield splicedFrame(FRAME_ENTRIES, frame.copy(0));
      begin();
      frame.reserve(entry.length);
      frame.buf.set(entry, frame.pos);
      frame.pos += entry.length;
    }
    count++;
    bytes += payloadBytes;
  }
  if (count > 0) {
    frame.endLength(start);
    yield splicedFrame(FRAME_ENTRIES, frame.copy(0));
  }
}

/**
 * The encoding of a message whose field 1 is `result` and nothing else:
 * AppendStreamResponse{result} (an AppendStream ack, written once per entry)
 * and AppendResponse{result} with no receipt. The generic encoder (create,
 * then toBinary through chunk arrays) took about 8% of the log service's CPU
 * on AppendStream (bench log-append, --cpu-prof); this writes the same bytes
 * directly.
 */
export function encodedResultMessage(result: AppendedEntry): Buffer {
  writer.pos = 0;
  writer.varint(RESULT_FIELD_TAG);
  const start = writer.beginLength();
  int64Field(writer, RESULT_SEQ, result.seq);
  stringField(writer, RESULT_CHECKSUM, result.checksum);
  int64Field(writer, RESULT_WALL_TIME_US, result.wallTimeUs);
  stringField(writer, RESULT_UUID, result.uuid);
  if (result.duplicate) {
    writer.varint(RESULT_DUPLICATE);
    writer.varint(1);
  }
  writer.endLength(start);
  return writer.copy(0);
}
