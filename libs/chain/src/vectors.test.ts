import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { canonicalEnvelope } from "./hash-chain.js";
import { GENESIS_CHECKSUM, binaryPayloadDigest, canonicalJson, chainEnvelope, entryChecksum, payloadDigest, type JsonValue } from "./index.js";

// docs/hash-chain/vectors.json is also checked by docs/hash-chain/check_vectors.py,
// an independent implementation in Python; both must agree with the file.
const vectors = JSON.parse(readFileSync(new URL("../../../docs/hash-chain/vectors.json", import.meta.url), "utf8"));

test("canonical JSON matches every vector", () => {
  assert.ok(vectors.canonical_json.length >= 5);
  for (const vector of vectors.canonical_json) {
    assert.equal(canonicalJson(JSON.parse(vector.input)), vector.canonical, vector.name);
  }
});

test("payload digests, envelopes and checksums match every chain vector", () => {
  for (const chain of vectors.chains) {
    let prevChecksum: string = chain.anchor_checksum;
    assert.equal(prevChecksum, GENESIS_CHECKSUM);
    for (const entry of chain.entries) {
      const binary = entry.content_type !== null;
      const payload = entry.payload as { [key: string]: JsonValue };
      if (!binary) assert.equal(canonicalJson(payload), entry.payload_canonical);
      const fields = {
        logId: chain.log_id,
        seq: BigInt(entry.seq),
        uuid: entry.uuid,
        kind: entry.kind,
        sourceId: entry.source_id,
        simTime: entry.sim_time,
        wallTimeUs: BigInt(entry.wall_time),
        reqId: entry.req_id,
        metadata: entry.metadata,
        contentType: entry.content_type as string | null,
        payloadDigest: binary ? binaryPayloadDigest(Buffer.from(entry.payload_base64, "base64")) : payloadDigest(payload),
        prevChecksum,
      };
      assert.equal(fields.payloadDigest, entry.payload_digest, `seq ${entry.seq} digest`);
      assert.equal(entry.prev_checksum, prevChecksum, `seq ${entry.seq} link`);
      assert.equal(canonicalJson(chainEnvelope(fields)), entry.envelope_canonical, `seq ${entry.seq} envelope`);
      assert.equal(canonicalEnvelope(fields), entry.envelope_canonical, `seq ${entry.seq} envelope written directly`);
      assert.equal(entryChecksum(fields), entry.checksum, `seq ${entry.seq} checksum`);
      prevChecksum = entry.checksum;
    }
  }
});

test("the envelope written directly is the canonical JSON of the envelope, for awkward values too", () => {
  const texts = ["", "a", "B", "10", "2", "é", "\u{1f600}", "\uffff", 'q"b\\s', "tab\tnl\n\u0001", "\u2028"];
  const numbers = [null, 0, -0, 1.5, -2, 1e21, 1e-7, 5e-324, 2 ** 53 - 1, 123456789.123];
  for (let i = 0; i < 200; i++) {
    const text = (n: number) => texts[(i * 7 + n) % texts.length]!;
    const metadata = Object.fromEntries(Array.from({ length: i % 5 }, (_, k) => [text(k * 3) + text(k), text(k + 1)]));
    const fields = {
      logId: `log${text(1)}`, seq: BigInt(i) * 4_000_000_000n, uuid: text(2), kind: text(3), sourceId: text(4),
      simTime: numbers[i % numbers.length]!, wallTimeUs: BigInt(i) ** 5n, reqId: text(5), metadata,
      contentType: i % 3 === 0 ? text(6) : null, payloadDigest: text(7), prevChecksum: text(8),
    };
    assert.equal(canonicalEnvelope(fields), canonicalJson(chainEnvelope(fields)), JSON.stringify(metadata));
  }
});

test("every envelope field changes the checksum", () => {
  const base = {
    logId: "orders", seq: 7n, uuid: "01936b2e-7c00-7000-8000-000000000007", kind: "a.b", sourceId: "s",
    simTime: 1.5 as number | null, wallTimeUs: 1_000_000n, reqId: "r", metadata: { k: "v" },
    contentType: null as string | null, payloadDigest: payloadDigest({ x: 1 }), prevChecksum: GENESIS_CHECKSUM,
  };
  const changes: Partial<typeof base>[] = [
    { logId: "orders2" }, { seq: 8n }, { uuid: "01936b2e-7c00-7000-8000-000000000008" }, { kind: "a.c" },
    { sourceId: "t" }, { simTime: null }, { wallTimeUs: 1_000_001n }, { reqId: "" }, { metadata: { k: "w" } },
    { payloadDigest: payloadDigest({ x: 2 }) }, { prevChecksum: "1".repeat(64) }, { contentType: "application/octet-stream" },
  ];
  const original = entryChecksum(base);
  for (const change of changes) {
    assert.notEqual(entryChecksum({ ...base, ...change }), original, `changing ${Object.keys(change)[0]}`);
  }
});

test("a binary entry differs from a JSON entry with the same digest: the envelope says which it is", () => {
  const bytes = new TextEncoder().encode('{"x":1}');
  const common = {
    logId: "orders", seq: 1n, uuid: "01936b2e-7c00-7000-8000-000000000001", kind: "a.b", sourceId: "", simTime: null,
    wallTimeUs: 1n, reqId: "", metadata: {}, prevChecksum: GENESIS_CHECKSUM,
  };
  assert.equal(binaryPayloadDigest(bytes), payloadDigest({ x: 1 }), "the same digest");
  const asJson = entryChecksum({ ...common, contentType: null, payloadDigest: payloadDigest({ x: 1 }) });
  const asBytes = entryChecksum({ ...common, contentType: "application/json", payloadDigest: binaryPayloadDigest(bytes) });
  assert.notEqual(asJson, asBytes);
});

test("numbers JSON cannot carry are refused", () => {
  assert.throws(() => canonicalJson({ x: Number.NaN }), { name: "ChainError" });
  assert.throws(() => canonicalJson({ x: Number.POSITIVE_INFINITY }), { name: "ChainError" });
});
