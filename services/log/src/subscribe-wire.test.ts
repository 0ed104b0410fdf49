// Subscribe sends binary clients pre-encoded entry frames (entry-encoding.ts)
// and JSON clients messages: every client must receive the entries Read
// returns, whatever its protocol and framing.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { create, equals, fromBinary, fromJson, toBinary, toJson, type JsonValue } from "@bufbuild/protobuf";
import { logV1 } from "@annals/proto";
import { signDevToken } from "@annals/runtime";
import { binaryEntry, entriesOf, entry, startLogHarness, TEST_SECRET, type LogHarness } from "./log-harness.js";

let harness: LogHarness;
const LOG = "wire";

before(async () => {
  harness = await startLogHarness("log_subscribe_wire");
  const long = "x".repeat(300);
  await harness.admin.appendBatch({
    logId: LOG,
    entries: [
      entry("order.placed", {
        order: { id: "ord-1", lines: [{ sku: "a", qty: 2 }, { sku: "b", qty: 1, gift: true }], empty: {}, none: [] },
        numbers: [0, -1, 1.5, -0.25, 1e15, -1e-7, 9007199254740991, -9007199254740991, 0.1 + 0.2, 5e-324, 123456789.12345679],
        unicode: "Grüße, 世界 — 🙂 \n\t\"quoted\"",
        ключ: "значение",
        "": "empty key",
        "10": "an integer-like key",
        flags: [true, false, null],
        nothing: null,
        nested: { deeper: { deepest: { list: [[1, [2, [3, {}]]], { a: [] }] } } },
        long,
      }),
      entry("order.empty", {}, { simTime: 0, metadata: { trace: "t-1", empty: "", ü: long }, sourceId: "sensor-7", requestId: "req-2" }),
      entry("order.timed", { x: 1 }, { simTime: -12.5 }),
      binaryEntry("blob.put", new Uint8Array([0, 1, 2, 255]), "application/octet-stream"),
      binaryEntry("blob.big", new Uint8Array(70_000).fill(7), "image/png", { metadata: { name: "big.png" } }),
      entry("order.secret", { card: "4111 1111 1111 1111" }),
      binaryEntry("blob.secret", new Uint8Array([9, 9, 9]), "application/octet-stream"),
      ...Array.from({ length: 40 }, (_, i) => entry("order.many", { i, half: i / 2, neg: -i, tags: [`t${i}`] }, { sourceId: `s${i % 3}` })),
    ],
  });
  await harness.admin.redact({ logId: LOG, seq: 6n, reason: "card number — erased" });
  await harness.admin.redact({ logId: LOG, seq: 7n, reason: "blob" });
});

after(async () => {
  await harness?.close();
});

/** Every entry of the log, as Read returns it (the reflective mapping). */
async function readAll(): Promise<logV1.Entry[]> {
  const { entries } = await harness.admin.read({ logId: LOG, pageSize: 1000 });
  return entries;
}

/** The entries a gRPC subscriber receives from seq 1 up to the CaughtUp frame. */
async function subscribeGrpc(maxEntriesPerFrame: number): Promise<logV1.Entry[]> {
  const controller = new AbortController();
  const entries: logV1.Entry[] = [];
  try {
    for await (const response of harness.admin.subscribe({ logId: LOG, afterSeq: 0n, maxEntriesPerFrame }, { signal: controller.signal })) {
      if (response.frame.case === "caughtUp") break;
      entries.push(...entriesOf(response));
    }
  } finally {
    controller.abort();
  }
  return entries;
}

/** The entries a Connect client over HTTP/1.1 receives up to CaughtUp, with JSON or protobuf messages. */
async function subscribeConnect(format: "json" | "proto", maxEntriesPerFrame: number): Promise<logV1.Entry[]> {
  const token = await signDevToken({ secret: TEST_SECRET, subject: "wire-reader", roles: ["admin"] });
  const request = create(logV1.SubscribeRequestSchema, { logId: LOG, afterSeq: 0n, maxEntriesPerFrame });
  const message =
    format === "json" ? new TextEncoder().encode(JSON.stringify(toJson(logV1.SubscribeRequestSchema, request))) : toBinary(logV1.SubscribeRequestSchema, request);
  const controller = new AbortController();
  const response = await fetch(`http://127.0.0.1:${harness.server.httpPort}/annals.log.v1.LogService/Subscribe`, {
    method: "POST",
    headers: { "content-type": `application/connect+${format}`, authorization: `Bearer ${token}` },
    body: envelope(0, message),
    signal: controller.signal,
  });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), `application/connect+${format}`);
  const entries: logV1.Entry[] = [];
  let buffered = Buffer.alloc(0);
  try {
    for await (const chunk of response.body!) {
      buffered = Buffer.concat([buffered, chunk as Uint8Array]);
      while (buffered.length >= 5 && buffered.length >= 5 + buffered.readUInt32BE(1)) {
        const flags = buffered[0]!;
        const data = buffered.subarray(5, 5 + buffered.readUInt32BE(1));
        buffered = buffered.subarray(5 + data.length);
        assert.equal(flags & 0x02, 0, `the stream ended before CaughtUp: ${data.toString()}`);
        const frame =
          format === "json"
            ? fromJson(logV1.SubscribeResponseSchema, JSON.parse(data.toString()) as JsonValue)
            : fromBinary(logV1.SubscribeResponseSchema, data);
        if (frame.frame.case === "caughtUp") return entries;
        entries.push(...entriesOf(frame));
      }
    }
  } finally {
    controller.abort();
  }
  throw new Error("the stream ended before CaughtUp");
}

function envelope(flags: number, data: Uint8Array): Uint8Array {
  const framed = Buffer.alloc(5 + data.length);
  framed[0] = flags;
  framed.writeUInt32BE(data.length, 1);
  framed.set(data, 5);
  return framed;
}

function assertSameEntries(actual: logV1.Entry[], expected: logV1.Entry[], how: string): void {
  assert.equal(actual.length, expected.length, `${how}: ${actual.length} entries`);
  expected.forEach((want, i) => {
    assert.ok(equals(logV1.EntrySchema, actual[i]!, want), `${how}: entry ${want.seq} differs:\n${JSON.stringify(toJson(logV1.EntrySchema, actual[i]!))}\n${JSON.stringify(toJson(logV1.EntrySchema, want))}`);
  });
}

describe("Subscribe on every wire", () => {
  test("the log holds what the cases need: JSON, binary and redacted entries (both kinds), metadata, sim_time", async () => {
    const entries = await readAll();
    assert.equal(entries.length, 49);
    assert.equal(entries[5]!.body.case, undefined);
    assert.equal(entries[5]!.redaction?.redactionSeq, 48n);
    assert.equal(entries[6]!.contentType, "application/octet-stream");
    assert.equal(entries[6]!.redaction?.reason, "blob");
    assert.equal(entries[1]!.simTime, 0);
    assert.equal(entries[4]!.body.case, "binaryPayload");
  });

  test("gRPC, one entry per frame and in batches: the entries Read returns", async () => {
    const expected = await readAll();
    assertSameEntries(await subscribeGrpc(0), expected, "gRPC, entry frames");
    assertSameEntries(await subscribeGrpc(4), expected, "gRPC, entries frames of 4");
    assertSameEntries(await subscribeGrpc(1000), expected, "gRPC, entries frames of 1000");
  });

  test("Connect with protobuf and with JSON, one entry per frame and in batches: the entries Read returns", async () => {
    const expected = await readAll();
    for (const format of ["proto", "json"] as const) {
      assertSameEntries(await subscribeConnect(format, 0), expected, `Connect ${format}, entry frames`);
      assertSameEntries(await subscribeConnect(format, 7), expected, `Connect ${format}, entries frames of 7`);
    }
  });
});
