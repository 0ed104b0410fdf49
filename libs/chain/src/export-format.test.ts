import assert from "node:assert/strict";
import { test } from "node:test";
import {
  ChainVerifier,
  ExportVerifier,
  GENESIS_CHECKSUM,
  entryChecksum,
  exportEndLine,
  exportEntryLine,
  exportHeaderLine,
  payloadDigest,
  createNoteSigner,
  ed25519PrivateKeyFromSeed,
  logOrigin,
  rootOfLeaves,
  signCheckpoint,
  type ExportedEntry,
} from "./index.js";

function makeChain(count: number): ExportedEntry[] {
  const entries: ExportedEntry[] = [];
  let prevChecksum = GENESIS_CHECKSUM;
  for (let i = 1; i <= count; i++) {
    const payload = { n: i, text: `entry ${i}` };
    const fields = {
      logId: "orders", seq: BigInt(i), uuid: `01936b2e-7c00-7000-8000-${String(i).padStart(12, "0")}`, kind: "order.placed",
      sourceId: "", simTime: i % 2 ? i / 3 : null, wallTimeUs: 1_700_000_000_000_000n + BigInt(i), reqId: "", metadata: {},
      contentType: null, payloadDigest: payloadDigest(payload), prevChecksum,
    };
    const checksum = entryChecksum(fields);
    entries.push({ ...fields, checksum, payload, redaction: null });
    prevChecksum = checksum;
  }
  return entries;
}

function exportText(entries: ExportedEntry[]): string {
  const last = entries.at(-1)!;
  return (
    exportHeaderLine({ logId: "orders", chainLogId: "orders", anchorSeq: 0n, anchorChecksum: GENESIS_CHECKSUM, treeEdge: null }) +
    entries.map(exportEntryLine).join("") +
    exportEndLine(BigInt(entries.length), { seq: last.seq, checksum: last.checksum })
  );
}

function verify(text: string) {
  const verifier = new ExportVerifier();
  for (const line of text.split("\n")) verifier.line(line);
  return verifier.finish();
}

test("an intact export verifies", () => {
  const report = verify(exportText(makeChain(20)));
  assert.deepEqual(report.problems, []);
  assert.equal(report.valid, true);
  assert.equal(report.checkedCount, 20);
  assert.equal(report.lastSeq, 20n);
});

test("a redacted payload (null, digest kept) still verifies", () => {
  const entries = makeChain(5);
  entries[2] = { ...entries[2]!, payload: null, redaction: { redactionSeq: 6n, reason: "gdpr" } };
  assert.equal(verify(exportText(entries)).valid, true);
});

test("changing any single byte of an entry line is reported at that entry's seq", () => {
  const text = exportText(makeChain(12));
  const lines = text.split("\n");
  const target = lines[7]!; // seq 7
  for (let offset = 0; offset < target.length; offset++) {
    const original = target.charCodeAt(offset);
    const changed = String.fromCharCode(original === 0x35 ? 0x36 : original ^ 0x01);
    const tampered = [...lines];
    tampered[7] = target.slice(0, offset) + changed + target.slice(offset + 1);
    const report = verify(tampered.join("\n"));
    assert.equal(report.valid, false, `byte ${offset} (${target[offset]}) changed but the export still verifies`);
    assert.ok(
      report.problems.some((p) => p.seq === 7n || p.line === 8),
      `byte ${offset}: problems ${JSON.stringify(report.problems, (_k, v) => (typeof v === "bigint" ? String(v) : v))}`,
    );
  }
});

test("a removed entry, a truncated file and a missing header are reported", () => {
  const lines = exportText(makeChain(6)).split("\n");
  const withoutFour = verify([...lines.slice(0, 4), ...lines.slice(5)].join("\n"));
  assert.equal(withoutFour.valid, false);
  assert.ok(withoutFour.problems.some((p) => p.problem === "missing" && p.seq === 4n));
  const truncated = verify(lines.slice(0, 5).join("\n"));
  assert.ok(truncated.problems.some((p) => p.problem === "truncated" && p.seq === 5n));
  const headless = verify(lines.slice(1).join("\n"));
  assert.equal(headless.valid, false);
});

test("the verifier reports a tampered checksum as a checksum problem here and a broken link at the next entry", () => {
  const entries = makeChain(4);
  const verifier = new ChainVerifier({ seq: 0n, checksum: GENESIS_CHECKSUM });
  entries[1] = { ...entries[1]!, checksum: "f".repeat(64) };
  const problems = entries.map((entry) => verifier.check(entry).problems);
  assert.deepEqual(problems, [[], ["checksum"], ["link"], []]);
});

// The tree and the signed checkpoint: what makes a dropped tail detectable offline (docs/merkle.md, "Exports").
const NODE = "spiffe://acme.example/annals/eu-1";
const signer = createNoteSigner(logOrigin(NODE, "orders"), ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(7)));
const logKey = signer.key;

/** The export of entries [0, count) with the tree edge, ending with a checkpoint of `signedSize` leaves (default: count). */
function signedExport(entries: ExportedEntry[], count = entries.length, signedSize = count): string {
  const kept = entries.slice(0, count);
  const last = kept.at(-1)!;
  const root = rootOfLeaves(entries.slice(0, signedSize).map((entry) => Buffer.from(entry.checksum, "hex")));
  const checkpoint = signCheckpoint({ origin: logOrigin(NODE, "orders"), size: BigInt(signedSize), rootHash: root, extensions: [] }, [signer]);
  return (
    exportHeaderLine({ logId: "orders", chainLogId: "orders", anchorSeq: 0n, anchorChecksum: GENESIS_CHECKSUM, treeEdge: [] }) +
    kept.map(exportEntryLine).join("") +
    exportEndLine(BigInt(kept.length), { seq: last.seq, checksum: last.checksum }, checkpoint)
  );
}

function verifyWith(text: string, key = logKey) {
  const verifier = new ExportVerifier();
  for (const line of text.split("\n")) verifier.line(line);
  return verifier.finish({ logKey: key });
}

test("with the log's key, a complete export is checked against its signed checkpoint", () => {
  const report = verifyWith(signedExport(makeChain(300)));
  assert.deepEqual(report.problems, []);
  assert.equal(report.completenessChecked, true);
  assert.equal(verify(signedExport(makeChain(300))).completenessChecked, false, "without a key it says completeness was not checked");
});

test("a dropped tail with a rewritten end line verifies as a chain, and the key catches it", () => {
  const entries = makeChain(300);
  // The log signed 300; the file keeps 290 and an end line rewritten to match them.
  const truncated = signedExport(entries, 290, 300);
  assert.equal(verify(truncated).valid, true, "the chain alone cannot tell");
  const report = verifyWith(truncated);
  assert.equal(report.valid, false);
  assert.match(report.problems[0]!.detail, /covers 300 entries, the file ends at seq 290/);
});

test("a checkpoint re-signed by another key, or for another log, does not vouch for the file", () => {
  const text = signedExport(makeChain(10));
  const stranger = createNoteSigner(logOrigin(NODE, "orders"), ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(9)));
  assert.equal(verifyWith(text, stranger.key).valid, false);
  const otherLog = createNoteSigner(logOrigin(NODE, "payments"), ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(7)));
  const relabelled = text.replace(/"checkpoint":"[^"]*"/, `"checkpoint":${JSON.stringify(signCheckpoint({ origin: logOrigin(NODE, "payments"), size: 10n, rootHash: rootOfLeaves(makeChain(10).map((e) => Buffer.from(e.checksum, "hex"))), extensions: [] }, [otherLog]))}`);
  assert.match(verifyWith(relabelled, otherLog.key).problems[0]!.detail, /for log "payments", not "orders"/);
});

test("without a tree edge or a checkpoint, the key cannot check completeness and says so", () => {
  const report = verifyWith(exportText(makeChain(5)));
  assert.equal(report.completenessChecked, false);
  assert.match(report.problems[0]!.detail, /completeness cannot be checked/);
});

// Files written before binary payloads and the Merkle tree (annals.export.v1).
test("an annals.export.v1 file still verifies as a chain, an edit in it is caught, and completeness is not claimed", () => {
  const v2 = exportText(makeChain(5));
  // The v1 rendering of the same entries: no tree_edge, no content_type, no checkpoint.
  const v1 = v2
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const record = JSON.parse(line);
      if (record.type === "header") {
        delete record.tree_edge;
        record.format = "annals.export.v1";
      }
      if (record.type === "entry") delete record.content_type;
      if (record.type === "end") delete record.checkpoint;
      return JSON.stringify(record);
    })
    .join("\n");
  const check = (text: string, logKey?: Parameters<ExportVerifier["finish"]>[0]) => {
    const verifier = new ExportVerifier();
    for (const line of text.split("\n")) verifier.line(line);
    return verifier.finish(logKey);
  };
  const report = check(v1);
  assert.deepEqual(report.problems, []);
  assert.equal(report.checkedCount, 5);
  assert.equal(report.completenessChecked, false);
  const edited = check(v1.replace('"n":3', '"n":4'));
  assert.equal(edited.valid, false);
  assert.deepEqual(edited.problems.map((p) => [p.seq, p.problem]), [[3n, "payload_digest"]]);
  const mixed = check(v1.replace('"metadata":{},"payload"', '"metadata":{},"content_type":null,"payload"'));
  assert.equal(mixed.valid, false, "a v1 file with v2 members is not a v1 file");
});
