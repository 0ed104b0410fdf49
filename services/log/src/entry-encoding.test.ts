import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { create, equals, fromBinary, toBinary } from "@bufbuild/protobuf";
import { logV1 } from "@annals/proto";
import { grpcServiceDefinition } from "@annals/runtime";
import { encodedEntriesFrames, encodedEntryFrame, encodedResultMessage, encodeEntry } from "./entry-encoding.js";
import { entryMessage, type EntryLog } from "./entry-mapping.js";
import type { EntryRow, EntryWireRow } from "./store.js";

const LOG: EntryLog = { log_id: "orders", chain_log_id: null };
const MIRROR: EntryLog = { log_id: "mirror-of-orders", chain_log_id: "orders" };

/** A stored row as the driver returns it, with what a test sets. */
function row(seq: number, extra: Partial<EntryRow> = {}): EntryRow {
  return {
    seq: BigInt(seq),
    uuid: "0192f4c4-7a1e-7c3e-9f5e-1c2d3e4f5a6b",
    kind: "order.placed",
    source_id: "",
    sim_time: null,
    wall_time_us: 1_732_950_000_000_000n + BigInt(seq),
    req_id: null,
    metadata: {},
    payload: {},
    content_type: null,
    binary_payload: null,
    payload_digest: "a".repeat(64),
    prev_checksum: "b".repeat(64),
    checksum: "c".repeat(64),
    redacted_by_seq: null,
    redaction_reason: null,
    ...extra,
  };
}

const long = "long ".repeat(100);
/** Rows covering every field and every kind of JSON value (and lengths past one varint byte). */
const ROWS: EntryRow[] = [
  row(1, {
    payload: {
      order: { id: "ord-1", lines: [{ sku: "a", qty: 2 }, { sku: "b", qty: 1, gift: true }], empty: {}, none: [] },
      numbers: [0, -1, 1.5, -0.25, 1e21, -1e-7, 9007199254740992, 2 ** 64, -(2 ** 53), 123456789.12345679],
      unicode: "Grüße, 世界 — 🙂 \u0000 \n\t\"quoted\"",
      "ключ": "значение",
      "": "empty key",
      "10": "an integer-like key",
      "2": "sorted before other keys by JavaScript",
      flags: [true, false, null],
      nothing: null,
      nested: { deeper: { deepest: { list: [[1, [2, [3, {}]]], { a: [] }] } } },
      long,
    },
  }),
  row(2, { payload: {}, metadata: { trace: "t-1", "": "", "ü": long }, sim_time: 0, source_id: "sensor-7", req_id: "req-2" }),
  row(3, { payload: { x: 1 }, sim_time: -12.5, metadata: { a: "1", b: "2" } }),
  row(4, { payload: null, binary_payload: new Uint8Array([0, 1, 2, 255]), content_type: "application/octet-stream" }),
  row(5, { payload: null, binary_payload: new Uint8Array(0), content_type: "application/x-empty" }),
  row(6, { payload: null, binary_payload: new Uint8Array(70_000).fill(7), content_type: "image/png" }),
  // Redacted: the payload is gone, the redaction columns are set (content_type stays for a binary one).
  row(7, { payload: null, redacted_by_seq: 9n, redaction_reason: "GDPR erasure — ärger" }),
  row(8, { payload: null, content_type: "image/png", redacted_by_seq: 10n, redaction_reason: "" }),
  row(9, { payload: { big: long.repeat(50) }, wall_time_us: 0n }),
  row(10, { payload: { t: 1 }, wall_time_us: -5n, sim_time: Number.MAX_VALUE }),
  row(11, { uuid: "", kind: "", payload_digest: "", prev_checksum: "", checksum: "", payload: { s: "" } }),
  { ...row(12), seq: 9223372036854775807n, payload: { n: -0 } },
];

/**
 * A row as the wire encoder reads it, its JSON as text: compact, or laid out
 * with whitespace (jsonb prints `{"a": 1, "b": [2, 3]}`).
 */
function stored(entryRow: EntryRow, space?: string): EntryWireRow {
  return {
    ...entryRow,
    payload: entryRow.payload === null ? null : JSON.stringify(entryRow.payload, null, space),
    metadata: JSON.stringify(entryRow.metadata, null, space),
  };
}

/** The row the reflective path reads from the same text (JSON.parse turns -0 into 0, as the database does). */
function parsed(wireRow: EntryWireRow): EntryRow {
  return { ...wireRow, payload: wireRow.payload === null ? null : (JSON.parse(wireRow.payload) as EntryRow["payload"]), metadata: JSON.parse(wireRow.metadata) as Record<string, string> };
}

/** How the gRPC listener encodes a Subscribe response. */
const serializeOnGrpc = grpcServiceDefinition(logV1.LogService)["subscribe"]!.responseSerialize as (response: logV1.SubscribeResponse) => Buffer;

function reflective(log: EntryLog, entryRow: EntryRow): Uint8Array {
  return toBinary(logV1.EntrySchema, entryMessage(log, entryRow));
}

describe("entry encoding", () => {
  test("an entry's bytes are those of the reflective encoding of entryMessage, for every kind of row and JSON layout", () => {
    for (const log of [LOG, MIRROR]) {
      for (const space of [undefined, " ", "\t"]) {
        for (const wireRow of ROWS.map((entryRow) => stored(entryRow, space))) {
          const entryRow = parsed(wireRow);
          const expected = reflective(log, entryRow);
          const { bytes } = encodeEntry(log, wireRow);
          assert.deepEqual(Buffer.from(bytes).toString("hex"), Buffer.from(expected).toString("hex"), `seq ${entryRow.seq} of ${log.log_id}`);
          assert.ok(equals(logV1.EntrySchema, fromBinary(logV1.EntrySchema, bytes), entryMessage(log, entryRow)), `seq ${entryRow.seq} decodes to the same message`);
        }
      }
    }
  });

  test("integer-like keys come first in ascending order, at every depth, as JavaScript iterates JSON.parse's objects", () => {
    const payload = '{"b": 1, "10": {"z": 0, "3": [{"y": 1, "0": 2}], "1": "x"}, "a": "\\u00e9\\"", "2": null, "4294967295": 3, "01": 4, "4294967294": 5}';
    const metadata = '{"k": "v", "7": "seven", "": "empty"}';
    const wireRow: EntryWireRow = { ...stored(row(1)), payload, metadata };
    const entryRow = parsed(wireRow);
    assert.deepEqual(Object.keys(entryRow.payload!), ["2", "10", "4294967294", "b", "a", "4294967295", "01"]);
    assert.deepEqual(Buffer.from(encodeEntry(LOG, wireRow).bytes).toString("hex"), Buffer.from(reflective(LOG, entryRow)).toString("hex"));
  });

  test("an entry frame encodes (and decodes) as the reflective entry frame does, with toBinary and on the gRPC listener", () => {
    for (const wireRow of ROWS.map((entryRow) => stored(entryRow))) {
      const entryRow = parsed(wireRow);
      const frame = encodedEntryFrame(LOG, wireRow);
      const expected = create(logV1.SubscribeResponseSchema, { frame: { case: "entry", value: entryMessage(LOG, entryRow) } });
      const expectedBytes = Buffer.from(toBinary(logV1.SubscribeResponseSchema, expected));
      const spliced = toBinary(logV1.SubscribeResponseSchema, frame);
      assert.deepEqual(Buffer.from(spliced), expectedBytes);
      assert.ok(equals(logV1.SubscribeResponseSchema, fromBinary(logV1.SubscribeResponseSchema, spliced), expected));
      assert.deepEqual(Buffer.from(serializeOnGrpc(frame)), expectedBytes);
    }
  });

  test("entries frames hold at most perFrame entries, cut early by payload bytes, and decode to the reflective batches", () => {
    const rows = [...ROWS, ...ROWS.map((r) => ({ ...r, seq: r.seq + 100n }))].filter((r) => r.seq < 1000n).map((r) => parsed(stored(r)));
    const decoded = (perFrame: number, maxPayloadBytes: number) =>
      [...encodedEntriesFrames(LOG, rows.map((r) => stored(r)), perFrame, maxPayloadBytes)].map((frame) => {
        const bytes = toBinary(logV1.SubscribeResponseSchema, frame);
        assert.deepEqual(Buffer.from(serializeOnGrpc(frame)), Buffer.from(bytes));
        return fromBinary(logV1.SubscribeResponseSchema, bytes);
      });
    const batches = (frames: logV1.SubscribeResponse[]) =>
      frames.map((frame) => {
        assert.equal(frame.frame.case, "entries");
        return frame.frame.value.entries;
      });

    const byCount = batches(decoded(5, 1024 * 1024));
    assert.deepEqual(byCount.map((batch) => batch.length), [5, 5, 5, 5, 2]);
    const all = byCount.flat();
    assert.equal(all.length, rows.length);
    rows.forEach((r, i) => assert.ok(equals(logV1.EntrySchema, all[i]!, entryMessage(LOG, r)), `entry ${i}`));

    // Each 70,000-byte binary payload starts a frame and, past 60,000 bytes, ends it;
    // the 25,000-byte JSON payload (seq 9) fits with its neighbours.
    const bySize = batches(decoded(1000, 60_000));
    assert.deepEqual(bySize.map((batch) => batch.map((e) => Number(e.seq))), [
      [1, 2, 3, 4, 5],
      [6],
      [7, 8, 9, 10, 11, 101, 102, 103, 104, 105],
      [106],
      [107, 108, 109, 110, 111],
    ]);
  });

  test("an AppendStream ack's and an Append answer's bytes are those of their reflective encodings", () => {
    const results = [
      { seq: 1n, checksum: "c".repeat(64), wallTimeUs: 1_732_950_000_000_001n, uuid: "0192f4c4-7a1e-7c3e-9f5e-1c2d3e4f5a6b", duplicate: false },
      { seq: 9_007_199_254_740_993n, checksum: "d".repeat(64), wallTimeUs: 1n, uuid: "0192f4c4-7a1e-7c3e-9f5e-1c2d3e4f5a6c", duplicate: true },
      // Proto3 defaults are left out, as toBinary leaves them out.
      { seq: 0n, checksum: "", wallTimeUs: 0n, uuid: "", duplicate: false },
    ];
    for (const result of results) {
      const ack = toBinary(logV1.AppendStreamResponseSchema, create(logV1.AppendStreamResponseSchema, { frame: { case: "result", value: result } }));
      const answer = toBinary(logV1.AppendResponseSchema, create(logV1.AppendResponseSchema, { result, receipt: "" }));
      assert.deepEqual(new Uint8Array(encodedResultMessage(result)), ack, `ack of seq ${result.seq}`);
      assert.deepEqual(new Uint8Array(encodedResultMessage(result)), answer, `answer of seq ${result.seq}`);
    }
  });
});
