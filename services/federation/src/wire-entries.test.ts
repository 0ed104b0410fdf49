// The puller's wire form of entries: what a Pull `entries` frame carries
// reaches AppendReplicated byte for byte, and decodes there to the entries
// the peer sent.
import assert from "node:assert/strict";
import { test } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { federationV1, logV1 } from "@annals/proto";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { createRouterTransport } from "@connectrpc/connect";
import { appendReplicatedRequest, readEntryBatch, wireEntryOf, wirePullClient, wirePullResponse, wireSubscribeClient } from "./wire-entries.js";

const entries = [
  create(logV1.EntrySchema, {
    logId: "orders",
    seq: 41n,
    uuid: "0190b3c4-0000-7000-8000-000000000001",
    kind: "order.placed",
    body: { case: "payload", value: { n: 1, note: "ä ✓", nested: { list: [1, "two", null, true] } } },
    sourceId: "shop",
    simTime: 12.5,
    wallTimeUs: 1_700_000_000_000_001n,
    metadata: { b: "2", a: "1" },
    requestId: "r-1",
    payloadDigest: "d".repeat(64),
    prevChecksum: "p".repeat(64),
    checksum: "c".repeat(64),
    chainLogId: "orders",
  }),
  create(logV1.EntrySchema, {
    logId: "orders",
    seq: 42n,
    uuid: "0190b3c4-0000-7000-8000-000000000002",
    kind: "file.stored",
    body: { case: "binaryPayload", value: new Uint8Array([0, 1, 2, 255]) },
    contentType: "application/octet-stream",
    wallTimeUs: 1_700_000_000_000_002n,
    payloadDigest: "e".repeat(64),
    prevChecksum: "c".repeat(64),
    checksum: "f".repeat(64),
    chainLogId: "orders",
  }),
  // Seq and wall time 0 are not on the wire at all (proto3 defaults).
  create(logV1.EntrySchema, { kind: "empty" }),
];

/** The `entries` field of a PullResponse as a protobuf reader leaves it when it does not know the field. */
function entriesField(response: federationV1.PullResponse): Uint8Array {
  const reader = new BinaryReader(toBinary(federationV1.PullResponseSchema, response));
  while (reader.pos < reader.len) {
    const [no, wireType] = reader.tag();
    const data = reader.skip(wireType, no);
    if (no === 5 && wireType === WireType.LengthDelimited) return data;
  }
  throw new Error("no entries field");
}

test("an entries frame's entries reach AppendReplicated byte for byte, with their seqs and wall times read", () => {
  const frame = create(federationV1.PullResponseSchema, { frame: { case: "entries", value: { entries } } });
  const wire = readEntryBatch(entriesField(frame));
  assert.deepEqual(
    wire.map(({ seq, wallTimeUs }) => [seq, wallTimeUs]),
    entries.map(({ seq, wallTimeUs }) => [seq, wallTimeUs]),
  );
  const request = appendReplicatedRequest({ logId: "mirror/x/orders", originNode: "spiffe://x", anchor: create(logV1.AnchorSchema, { seq: 40n, checksum: "a".repeat(64) }) }, wire);
  const decoded = fromBinary(logV1.AppendReplicatedRequestSchema, toBinary(logV1.AppendReplicatedRequestSchema, request));
  assert.deepEqual(decoded, create(logV1.AppendReplicatedRequestSchema, { logId: "mirror/x/orders", originNode: "spiffe://x", anchor: { seq: 40n, checksum: "a".repeat(64) }, entries }));
});

test("a decoded entry (an entry frame) takes the same wire form", () => {
  const wire = entries.map(wireEntryOf);
  const decoded = fromBinary(logV1.AppendReplicatedRequestSchema, toBinary(logV1.AppendReplicatedRequestSchema, appendReplicatedRequest({ logId: "m", originNode: "n" }, wire)));
  assert.deepEqual(decoded.entries, entries);
  assert.deepEqual(wire.map(({ seq }) => seq), [41n, 42n, 0n]);
});

test("the wire Pull client gives entries frames undecoded and every other frame as Pull's", async () => {
  const transport = createRouterTransport((router) =>
    router.service(federationV1.FederationService, {
      async *pull(request) {
        yield { frame: { case: "anchor", value: { seq: request.afterSeq, checksum: "a".repeat(64) } } };
        yield { frame: { case: "entries", value: { entries } }, checkpoint: { note: "note", position: 42n } };
        yield { frame: { case: "entry", value: entries[0]! } };
        yield { frame: { case: "caughtUp", value: { seq: 42n } } };
      },
    }),
  );
  const frames = [];
  for await (const frame of wirePullClient(transport)({ logId: "orders", afterSeq: 40n }, { signal: new AbortController().signal })) frames.push(frame);
  assert.deepEqual(
    frames.map(({ frame }) => frame.case),
    ["anchor", "wireEntries", "entry", "caughtUp"],
  );
  const [, batch] = frames;
  assert.equal(batch!.frame.case, "wireEntries");
  assert.deepEqual(batch!.frame.value.map(({ seq }) => seq), [41n, 42n, 0n]);
  assert.equal(batch!.checkpoint?.position, 42n);
  assert.deepEqual(frames[0]!.frame.value, create(logV1.AnchorSchema, { seq: 40n, checksum: "a".repeat(64) }));
});

test("Subscribe's entries frames pass into Pull frames undecoded, and decode there to the entries the log sent", async () => {
  const transport = createRouterTransport((router) =>
    router.service(logV1.LogService, {
      async *subscribe() {
        yield { frame: { case: "entries", value: { entries } } };
        yield { frame: { case: "entries", value: { entries: [] } } };
        yield { frame: { case: "caughtUp", value: { seq: 42n } } };
      },
    }),
  );
  const frames = [];
  for await (const frame of wireSubscribeClient(transport)({ logId: "orders" }, { signal: new AbortController().signal })) frames.push(frame);
  assert.deepEqual(
    frames.map((frame) => frame.case),
    ["wireEntries", "wireEntries", "caughtUp"],
  );
  // The last entry of the batch is the one without a seq on the wire; the batch before it ends at 0 too.
  assert.deepEqual(
    frames.map((frame) => (frame.case === "wireEntries" ? frame.value.lastSeq : undefined)),
    [0n, 0n, undefined],
  );
  const [first] = frames;
  assert.equal(first!.case, "wireEntries");
  const pulled = fromBinary(federationV1.PullResponseSchema, toBinary(federationV1.PullResponseSchema, wirePullResponse(first!.value.encoded, { note: "note", position: 42n })));
  assert.deepEqual(pulled, create(federationV1.PullResponseSchema, { frame: { case: "entries", value: { entries } }, checkpoint: { note: "note", position: 42n } }));
  // A batch whose last entry has a seq tells it.
  const withSeq = wireSubscribeClient(
    createRouterTransport((router) =>
      router.service(logV1.LogService, {
        async *subscribe() {
          yield { frame: { case: "entries", value: { entries: entries.slice(0, 2) } } };
        },
      }),
    ),
  );
  for await (const frame of withSeq({ logId: "orders" }, { signal: new AbortController().signal })) {
    assert.deepEqual([frame.case, frame.case === "wireEntries" ? frame.value.lastSeq : undefined], ["wireEntries", 42n]);
  }
});
