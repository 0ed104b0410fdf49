// Every log's Merkle tree, signed checkpoints, proofs and receipts, through
// the service (docs/merkle.md), checked against @annals/chain's brute-force
// reference tree and its offline verifiers.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  ExportVerifier,
  decodeEntryBundle,
  leafHash,
  tilePath,
  treeRoot,
  type TileReader,
  openCheckpoint,
  parseVerifierKey,
  rootOfLeaves,
  verifyConsistency,
  verifyInclusion,
  verifyTlogProof,
} from "@annals/chain";
import { Code } from "@connectrpc/connect";
import { logV1 } from "@annals/proto";
import { errorReason, signDevToken } from "@annals/runtime";
import { entry, rejects, startLogHarness, TEST_SECRET, type LogHarness } from "./log-harness.js";
import { until } from "@annals/runtime/testing";

const NODE = "spiffe://acme.example/annals/eu-1";
let harness: LogHarness;

before(async () => {
  harness = await startLogHarness("log_merkle", { nodeId: NODE, checkpointIntervalMs: 50, groupCommit: { maxEntries: 1000, maxWaitMs: 2 } });
});

after(async () => {
  await harness?.close();
});

/** The checksums of a log's entries 1..n, as leaves. */
async function leavesOf(logId: string, n: number): Promise<Uint8Array[]> {
  const leaves: Uint8Array[] = [];
  for (let from = 1n; leaves.length < n; from += 1000n) {
    const page = await harness.admin.read({ logId, fromSeq: from, pageSize: 1000 });
    leaves.push(...page.entries.map((e) => Buffer.from(e.checksum, "hex")));
  }
  return leaves.slice(0, n);
}

async function appendMany(logId: string, count: number): Promise<void> {
  // Singles and batches mixed, concurrently, so groups of every size cross the tile boundaries.
  const work: Promise<unknown>[] = [];
  for (let i = 0; i < count; ) {
    const size = Math.min(count - i, 1 + (i % 37));
    const entries = Array.from({ length: size }, (_, k) => entry("tree.leaf", { i: i + k }));
    work.push(size === 1 ? harness.admin.append({ logId, entry: entries[0]! }) : harness.admin.appendBatch({ logId, entries }));
    i += size;
    if (work.length === 16) await Promise.all(work.splice(0));
  }
  await Promise.all(work);
}

describe("the tree, checkpoints and proofs", () => {
  const LOG = "trees/orders";
  let vkey: ReturnType<typeof parseVerifierKey>;
  before(async () => {
    await appendMany(LOG, 700);
    vkey = parseVerifierKey((await harness.admin.getVerifierKey({ logId: LOG })).verifierKey);
  });

  test("the signed checkpoint's root is RFC 6962's root of the entries' checksums; its origin names the node and the log", async () => {
    // GetCheckpoint serves what the checkpointer signed (within its interval), never signing on a read.
    await until("the checkpointer to cover all 700 entries", async () => (await harness.admin.getCheckpoint({ logId: LOG })).treeSize === 700n);
    const checkpoint = await harness.admin.getCheckpoint({ logId: LOG });
    assert.equal(checkpoint.treeSize, 700n);
    const opened = openCheckpoint(checkpoint.note, [vkey], { origin: "acme.example/annals/eu-1:trees/orders" });
    assert.equal(opened.checkpoint.size, 700n);
    const reference = rootOfLeaves(await leavesOf(LOG, 700));
    assert.deepEqual(Buffer.from(opened.checkpoint.rootHash), Buffer.from(reference));
    assert.deepEqual(Buffer.from(checkpoint.rootHash), Buffer.from(reference));
    assert.equal(checkpoint.verifierKey, (await harness.admin.getVerifierKey({ logId: LOG })).verifierKey);
    // Older sizes: the root of exactly that prefix.
    for (const size of [1n, 255n, 256n, 257n, 511n, 512n, 699n]) {
      const older = await harness.admin.getCheckpoint({ logId: LOG, treeSize: size });
      assert.deepEqual(Buffer.from(older.rootHash), Buffer.from(rootOfLeaves((await leavesOf(LOG, Number(size))))), `root of ${size}`);
    }
  });

  test("inclusion proofs of every kind of position verify against the checkpoint; consistency proofs between sizes too", async () => {
    const leaves = await leavesOf(LOG, 700);
    const roots = new Map<bigint, Uint8Array>();
    const rootAt = async (size: bigint) => {
      if (!roots.has(size)) roots.set(size, (await harness.admin.getCheckpoint({ logId: LOG, treeSize: size })).rootHash);
      return roots.get(size)!;
    };
    for (const [seq, size] of [[1n, 700n], [256n, 700n], [257n, 700n], [700n, 700n], [3n, 5n], [512n, 512n], [300n, undefined]] as const) {
      const proof = await harness.admin.getInclusionProof({ logId: LOG, seq, ...(size === undefined ? {} : { treeSize: size }) });
      assert.equal(proof.leafIndex, seq - 1n);
      verifyInclusion(leafHash(leaves[Number(seq) - 1]!), proof.leafIndex, proof.treeSize, proof.hashes, await rootAt(proof.treeSize));
    }
    for (const [from, to] of [[0n, 700n], [1n, 700n], [255n, 256n], [256n, 700n], [300n, 301n], [700n, 700n]] as const) {
      const proof = await harness.admin.getConsistencyProof({ logId: LOG, fromSize: from, toSize: to });
      verifyConsistency(from, to, from === 0n ? rootOfLeaves([]) : await rootAt(from), await rootAt(to), proof.hashes);
    }
  });

  test("bad positions are refused with the right code, naming the field", async () => {
    await rejects(harness.admin.getInclusionProof({ logId: LOG, seq: 0n }), Code.InvalidArgument, /^seq: is required|^seq: must be 1/);
    await rejects(harness.admin.getInclusionProof({ logId: LOG, seq: 701n }), Code.OutOfRange, /seq 701 is past/);
    await rejects(harness.admin.getInclusionProof({ logId: LOG, seq: 10n, treeSize: 5n }), Code.InvalidArgument, /^seq: \(10\) is past tree_size \(5\)/);
    await rejects(harness.admin.getInclusionProof({ logId: LOG, seq: 1n, treeSize: 800n }), Code.OutOfRange, /tree_size 800 is past/);
    await rejects(harness.admin.getConsistencyProof({ logId: LOG, fromSize: 9n, toSize: 5n }), Code.InvalidArgument, /^from_size/);
    await rejects(harness.admin.getConsistencyProof({ logId: LOG, fromSize: 1n, toSize: 701n }), Code.OutOfRange);
    await rejects(harness.admin.getCheckpoint({ logId: LOG, treeSize: 0n }), Code.InvalidArgument, /^tree_size/);
    await rejects(harness.admin.getCheckpoint({ logId: "trees/empty-one" }), Code.NotFound);
    await harness.admin.createLog({ logId: "trees/empty" });
    const error = await rejects(harness.admin.getCheckpoint({ logId: "trees/empty" }), Code.FailedPrecondition);
    assert.equal(errorReason(error), "NO_CHECKPOINT");
  });

  test("a receipt (C2SP tlog-proof) proves the entry offline, with only the log's verifier key", async () => {
    const { result, receipt } = await harness.admin.append({ logId: LOG, entry: entry("tree.leaf", { receipt: true }), wantReceipt: true });
    const verified = verifyTlogProof(receipt, Buffer.from(result!.checksum, "hex"), { logKey: vkey });
    assert.equal(verified.checkpoint.size >= result!.seq, true);
    assert.throws(() => verifyTlogProof(receipt, Buffer.from(result!.checksum.replace(/^./, (c) => (c === "0" ? "1" : "0")), "hex"), { logKey: vkey }));
    const batch = await harness.admin.appendBatch({ logId: LOG, entries: [entry("tree.leaf", { b: 1 }), entry("tree.leaf", { b: 2 })], wantReceipt: true });
    assert.equal(batch.receipts.length, 2);
    batch.receipts.forEach((text, i) => verifyTlogProof(text, Buffer.from(batch.results[i]!.checksum, "hex"), { logKey: vkey }));
  });

  test("redaction and compaction keep every leaf, root and proof valid", async () => {
    const before = await harness.admin.getCheckpoint({ logId: LOG });
    await harness.admin.redact({ logId: LOG, seq: 10n, reason: "erasure" });
    await harness.admin.compact({ logId: LOG, retain: { case: "beforeSeq", value: 600n } });
    const after = await harness.admin.getCheckpoint({ logId: LOG });
    const proof = await harness.admin.getConsistencyProof({ logId: LOG, fromSize: before.treeSize, toSize: after.treeSize });
    verifyConsistency(before.treeSize, after.treeSize, before.rootHash, after.rootHash, proof.hashes);
    // seq 10 was redacted and then compacted away: its leaf is still in the tree.
    const leaf = (await leavesOf(LOG, 10).catch(() => []))[9];
    assert.equal(leaf, undefined, "the entry itself is gone");
    const inclusion = await harness.admin.getInclusionProof({ logId: LOG, seq: 10n, treeSize: before.treeSize });
    assert.equal(inclusion.hashes.length > 0, true);
    assert.equal((await harness.admin.verify({ logId: LOG })).valid, true);
  });
});

describe("exports carry the evidence of their completeness", () => {
  test("an export ends with a signed checkpoint of its last seq; with the log's key a dropped tail is caught offline", async () => {
    const LOG = "trees/exported";
    await harness.admin.appendBatch({ logId: LOG, entries: Array.from({ length: 300 }, (_, i) => entry("e.x", { i })) });
    await harness.admin.compact({ logId: LOG, retain: { case: "beforeSeq", value: 11n } });
    const logKey = parseVerifierKey((await harness.admin.getVerifierKey({ logId: LOG })).verifierKey);
    let text = "";
    for await (const chunk of harness.admin.export({ logId: LOG, fromSeq: 20n })) text += Buffer.from(chunk.chunk).toString("utf8");
    const check = (content: string) => {
      const verifier = new ExportVerifier();
      for (const line of content.split("\n")) verifier.line(line);
      return verifier.finish({ logKey });
    };
    const intact = check(text);
    assert.deepEqual(intact.problems, []);
    assert.equal(intact.completenessChecked, true, "a partial export of a compacted log still carries the tree before its first entry");
    // Drop the last 5 entries and rewrite the end line to match what is left: the chain alone accepts it.
    const lines = text.trimEnd().split("\n");
    const end = JSON.parse(lines.at(-1)!);
    const kept = lines.slice(0, -6);
    const lastKept = JSON.parse(kept.at(-1)!);
    const forged = [...kept, JSON.stringify({ ...end, count: String(kept.length - 1), last_seq: lastKept.seq, last_checksum: lastKept.checksum })].join("\n") + "\n";
    const report = check(forged);
    assert.equal(report.valid, false);
    assert.equal(report.problems[0]!.problem, "checkpoint");
  });

  test("deleting the last row in the database: Export answers DATA_LOSS instead of writing a file", async () => {
    const LOG = "trees/deleted-tail";
    await harness.admin.appendBatch({ logId: LOG, entries: Array.from({ length: 10 }, (_, i) => entry("e.x", { i })) });
    await harness.db.query(`delete from log.entries where log_id = $1 and seq = 10`, [LOG]);
    await rejects(
      (async () => {
        for await (const _ of harness.admin.export({ logId: LOG })) continue;
      })(),
      Code.DataLoss,
    );
  });
});

describe("the tlog-tiles read API on the HTTP port", () => {
  const LOG = "trees/tiled.log";
  const base = () => `http://127.0.0.1:${harness.server.httpPort}/v1/logs/${encodeURIComponent(LOG)}`;
  let token: string;
  before(async () => {
    await appendMany(LOG, 600);
    token = await signDevToken({ secret: TEST_SECRET, subject: "tile-reader", roles: ["log.read"] });
  });
  const get = (path: string, auth: string | null = token) => fetch(`${base()}/${path}`, { headers: auth ? { authorization: `Bearer ${auth}` } : {} });

  test("a client with only the tile API and the log's key recomputes the signed root and checks a leaf", async () => {
    const vkey = parseVerifierKey((await harness.admin.getVerifierKey({ logId: LOG })).verifierKey);
    const response = await get("checkpoint");
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type")!, /^text\/plain/);
    const { checkpoint } = openCheckpoint(await response.text(), [vkey]);
    const reader: TileReader = (tiles) =>
      Promise.all(
        tiles.map(async (tile) => {
          const answer = await get(tilePath(tile));
          assert.equal(answer.status, 200, tilePath(tile));
          assert.equal(answer.headers.get("cache-control"), tile.width === 256 ? "private, max-age=31536000, immutable" : "private, max-age=1");
          return new Uint8Array(await answer.arrayBuffer());
        }),
      );
    assert.deepEqual(Buffer.from(await treeRoot(checkpoint.size, reader)), Buffer.from(checkpoint.rootHash));
    // An entry bundle holds the leaves' data: the checksums.
    const bundle = decodeEntryBundle(new Uint8Array(await (await get("tile/entries/001.p/10")).arrayBuffer()));
    const stored = await harness.admin.read({ logId: LOG, fromSeq: 257n, pageSize: 10 });
    assert.deepEqual(bundle.map((leaf) => Buffer.from(leaf).toString("hex")), stored.entries.map((e) => e.checksum));
  });

  test("refusals: no token 401, no grant 403, a malformed path 400, a tile not there 404", async () => {
    assert.equal((await get("checkpoint", null)).status, 401);
    const other = await signDevToken({ secret: TEST_SECRET, subject: "other", roles: ["log.read"], claims: { logs: ["elsewhere"] } });
    assert.equal((await get("checkpoint", other)).status, 403);
    const writer = await signDevToken({ secret: TEST_SECRET, subject: "writer", roles: ["log.write"] });
    assert.equal((await get("checkpoint", writer)).status, 403);
    const bad = await get("tile/0/x001/002.p/0");
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { code: string }).code, "invalid_argument");
    assert.equal((await get("tile/0/005")).status, 404, "a full tile the tree does not have yet");
    assert.equal((await get("tile/0/002")).status, 404, "tile 2 holds leaves 513–600: only partial");
    assert.equal((await get("tile/0/002.p/88")).status, 200);
    assert.equal((await get("tile/0/002.p/89")).status, 404);
    const missing = await fetch(`http://127.0.0.1:${harness.server.httpPort}/v1/logs/no-such/checkpoint`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(missing.status, 404);
  });
});

describe("a tree that rows were changed under", () => {
  test("a deleted tail and a rewound head: the log refuses appends and checkpoints with DATA_LOSS (TREE_MISMATCH)", async () => {
    const LOG = "trees/tampered";
    await harness.admin.appendBatch({ logId: LOG, entries: Array.from({ length: 20 }, (_, i) => entry("t.x", { i })) });
    await harness.admin.getCheckpoint({ logId: LOG });
    await harness.db.query(`delete from log.entries where log_id = $1 and seq > 17`, [LOG]);
    const last = (await harness.admin.getEntry({ logId: LOG, selector: { case: "seq", value: 17n } })).entry!;
    await harness.db.query(`update log.logs set last_seq = 17, last_checksum = $2, entry_count = 17 where log_id = $1`, [LOG, last.checksum]);
    const refused = await rejects(harness.admin.append({ logId: LOG, entry: entry("t.x", { forged: true }) }), Code.DataLoss, /Merkle tree .* has 20 leaves but the log's head is at seq 17/);
    assert.equal(errorReason(refused), "TREE_MISMATCH");
    await rejects(harness.admin.getCheckpoint({ logId: LOG }), Code.DataLoss);
    assert.equal((await harness.admin.getLog({ logId: LOG })).head!.lastSeq, 17n, "nothing was appended");
    const report = await harness.admin.verify({ logId: LOG });
    assert.equal(report.valid, false, "the chain of 17 verifies on its own; the tree says what is wrong");
    assert.deepEqual(report.findings.map((finding) => [logV1.VerifyFindingKind[finding.kind], finding.expected, finding.actual]), [["TREE", "17 leaves", "20 leaves"]]);
  });

  test("Verify checks every entry against its leaf in the stored tiles, and the tiles against the signed checkpoint", async () => {
    const LOG = "trees/tiles";
    await harness.admin.appendBatch({ logId: LOG, entries: Array.from({ length: 300 }, (_, i) => entry("t.x", { i })) });
    await harness.admin.getCheckpoint({ logId: LOG });
    assert.deepEqual((await harness.admin.verify({ logId: LOG })).findings, []);
    // Overwrite the leaf hash of seq 7 in its tile (level 0, tile 0, offset 6·32).
    await harness.db.query(`update log.tiles set hashes = overlay(hashes placing '\\x${"ab".repeat(32)}'::bytea from ${6 * 32 + 1} for 32) where log_id = $1 and level = 0 and idx = 0`, [LOG]);
    const kinds = (await harness.admin.verify({ logId: LOG })).findings.map((finding) => [finding.seq, logV1.VerifyFindingKind[finding.kind]]);
    // The subtree of leaves 1–256 keeps its stored root one level up, so the root is unchanged; the leaf check finds it.
    assert.deepEqual(kinds, [[7n, "TREE"]]);
    // A changed complete-subtree hash (level 1) changes the tree's root: it no longer has its checkpoint's.
    await harness.db.query(`update log.tiles set hashes = '\\x${"cd".repeat(32)}'::bytea where log_id = $1 and level = 1 and idx = 0`, [LOG]);
    const after = (await harness.admin.verify({ logId: LOG })).findings.map((finding) => [finding.seq, logV1.VerifyFindingKind[finding.kind]]);
    assert.deepEqual(after, [[7n, "TREE"], [300n, "TREE"], [300n, "CHECKPOINT"]]);
  });
});
