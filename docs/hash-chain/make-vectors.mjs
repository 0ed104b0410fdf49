// Writes vectors.json from @annals/chain. Run from the repository root after a
// build: node docs/hash-chain/make-vectors.mjs. The vectors are then checked
// independently by check_vectors.py and by libs/chain's tests.
import { writeFileSync } from "node:fs";
import { GENESIS_CHECKSUM, binaryPayloadDigest, canonicalJson, chainEnvelope, entryChecksum, payloadDigest } from "@annals/chain";

const canonicalInputs = [
  ["key order by UTF-16 code units", '{"\\u20ac":"Euro","\\r":"CR","1":"One","a":"A","\\u00f6":"o-umlaut","\\ud83d\\ude00":"emoji","\\ufb33":"hebrew"}'],
  ["integers", "[0, -0, 1, -1, 100, 9007199254740991, 9007199254740993, 123456789012345678901]"],
  ["fractions and exponents", "[0.1, 1.5, -2.25, 1e21, 1e20, 1e-6, 1e-7, 1.2e-7, 5e-324, 1.7976931348623157e308, 0.30000000000000004, 333333333.3333333]"],
  ["string escapes", '["\\"quote\\" \\\\ slash /", "\\b\\f\\n\\r\\t", "\\u0001\\u001f\\u007f", "\\u2028\\u2029", "caf\\u00e9 \\ud83d\\ude00"]'],
  ["nesting and literals", '{"z":{"b":[true,false,null],"a":{}},"y":[],"x":""}'],
];

const canonical_json = canonicalInputs.map(([name, input]) => ({ name, input, canonical: canonicalJson(JSON.parse(input)) }));

const entries = [
  {
    seq: 1n, uuid: "01936b2e-7c00-7000-8000-000000000001", kind: "identity.formed", source_id: "svc-accounts",
    sim_time: null, wall_time: 1732233600000000n, req_id: "req-1", metadata: {},
    payload: { user: "ada", roles: ["admin", "ops"], age: 36 },
  },
  {
    seq: 2n, uuid: "01936b2e-7c00-7000-8000-000000000002", kind: "order.placed", source_id: "",
    sim_time: 12.5, wall_time: 1732233600000123n, req_id: "", metadata: { region: "eu-1", "trace-id": "abc" },
    payload: { amount: 0.1, total: 1e15, note: "caf\u00e9 \u{1F600}", nested: { z: 1, a: [null, true] } },
  },
  {
    seq: 3n, uuid: "01936b2e-7c00-7000-8000-000000000003", kind: "order.shipped", source_id: "svc-shipping",
    sim_time: -0.000001, wall_time: 1732233600001000n, req_id: "req-3", metadata: { "\u00f6": "umlaut key" },
    payload: {},
  },
  {
    seq: 4n, uuid: "01936b2e-7c00-7000-8000-000000000004", kind: "annals.redaction", source_id: "",
    sim_time: null, wall_time: 1732233600002000n, req_id: "", metadata: {},
    payload: { redacted_seq: "1", reason: "erasure request" },
  },
];

// A second log whose entries carry binary payloads.
const binaryEntries = [
  {
    // A binary payload: the digest is SHA-256 of the bytes, and the envelope has a content_type member.
    seq: 1n, uuid: "01936b2e-7c00-7000-8000-000000000005", kind: "order.paid", source_id: "svc-payments",
    sim_time: null, wall_time: 1732233600003000n, req_id: "req-5", metadata: {},
    binary: Uint8Array.from([0x0a, 0x05, 0x6f, 0x2d, 0x31, 0x32, 0x33, 0x10, 0xe8, 0x07, 0x00, 0xff]),
    content_type: "application/x-protobuf; messageType=acme.orders.v1.OrderPaid",
  },
  {
    // Bytes that happen to be a JSON text are still bytes: content_type sets them apart.
    seq: 2n, uuid: "01936b2e-7c00-7000-8000-000000000006", kind: "order.note", source_id: "",
    sim_time: null, wall_time: 1732233600004000n, req_id: "", metadata: {},
    binary: new TextEncoder().encode("{}"), content_type: "application/json",
  },
];

function chain(logId, list) {
let prevChecksum = GENESIS_CHECKSUM;
return list.map((entry) => {
  const binary = entry.binary !== undefined;
  const fields = {
    logId, seq: entry.seq, uuid: entry.uuid, kind: entry.kind, sourceId: entry.source_id,
    simTime: entry.sim_time, wallTimeUs: entry.wall_time, reqId: entry.req_id, metadata: entry.metadata,
    contentType: binary ? entry.content_type : null,
    payloadDigest: binary ? binaryPayloadDigest(entry.binary) : payloadDigest(entry.payload), prevChecksum,
  };
  const checksum = entryChecksum(fields);
  const vector = {
    seq: entry.seq.toString(), uuid: entry.uuid, kind: entry.kind, source_id: entry.source_id, sim_time: entry.sim_time,
    wall_time: entry.wall_time.toString(), req_id: entry.req_id, metadata: entry.metadata,
    content_type: fields.contentType,
    ...(binary
      ? { payload_base64: Buffer.from(entry.binary).toString("base64") }
      : { payload: entry.payload, payload_canonical: canonicalJson(entry.payload) }),
    payload_digest: fields.payloadDigest, prev_checksum: prevChecksum,
    envelope_canonical: canonicalJson(chainEnvelope(fields)), checksum,
  };
  prevChecksum = checksum;
  return vector;
});
}

const vectors = {
  description: "Test vectors for docs/hash-chain.md. Checked by libs/chain (vectors.test.ts) and docs/hash-chain/check_vectors.py.",
  canonical_json,
  chains: [
    { name: "orders from genesis", log_id: "orders", anchor_seq: "0", anchor_checksum: GENESIS_CHECKSUM, entries: chain("orders", entries) },
    { name: "binary payloads", log_id: "media", anchor_seq: "0", anchor_checksum: GENESIS_CHECKSUM, entries: chain("media", binaryEntries) },
  ],
};
writeFileSync(new URL("./vectors.json", import.meta.url), JSON.stringify(vectors, null, 2) + "\n");
