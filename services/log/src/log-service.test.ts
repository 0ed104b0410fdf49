import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { ExportVerifier } from "@annals/chain";
import { Code } from "@connectrpc/connect";
import { logV1 } from "@annals/proto";
import { errorReason } from "@annals/runtime";
import { until } from "@annals/runtime/testing";
import { binaryEntry, entry, payloadOf, rejects, startLogHarness, type EntryInit, type LogHarness } from "./log-harness.js";

/** The AppendResult of an AppendStream answer to an entry frame. */
function resultOf(response: logV1.AppendStreamResponse): logV1.AppendResult {
  assert.equal(response.frame.case, "result");
  return response.frame.value;
}

let harness: LogHarness;

before(async () => {
  harness = await startLogHarness("log_service", { limits: { maxPayloadBytes: 4096, maxMetadataBytes: 256, maxBatchEntries: 50 } });
});

after(async () => {
  await harness?.close();
});

describe("append and sequencing", () => {
  test("appends get gap-free seqs, checksums that chain, and a UUIDv7", async () => {
    const first = await harness.admin.append({ logId: "seq", entry: entry("order.placed", { n: 1 }) });
    const second = await harness.admin.append({ logId: "seq", entry: entry("order.placed", { n: 2 }) });
    assert.equal(first.result!.seq, 1n);
    assert.equal(second.result!.seq, 2n);
    assert.match(first.result!.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.ok(second.result!.wallTimeUs >= first.result!.wallTimeUs);
    const stored = await harness.admin.getEntry({ logId: "seq", selector: { case: "seq", value: 2n } });
    assert.equal(stored.entry!.prevChecksum, first.result!.checksum);
    assert.equal(stored.entry!.checksum, second.result!.checksum);
    assert.deepEqual(payloadOf(stored.entry), { n: 2 });
  });

  test("AppendBatch is atomic: one bad entry and nothing is written", async () => {
    await harness.admin.append({ logId: "batch", entry: entry("a.b", {}, { requestId: "taken" }) });
    const error = await rejects(
      harness.admin.appendBatch({
        logId: "batch",
        entries: [entry("a.b", { i: 1 }), entry("a.b", { i: 2 }, { requestId: "taken" }), entry("a.b", { i: 3 })],
      }),
      Code.AlreadyExists,
      /request_id "taken"/,
    );
    assert.equal(errorReason(error), "REQUEST_ID_CONFLICT");
    const head = await harness.admin.getLog({ logId: "batch" });
    assert.equal(head.head!.lastSeq, 1n);
    const ok = await harness.admin.appendBatch({ logId: "batch", entries: [entry("a.b", { i: 1 }), entry("a.b", { i: 2 })] });
    assert.deepEqual(ok.results.map((r) => r.seq), [2n, 3n]);
  });

  test("concurrent appends to one log are group-committed without gaps or duplicates", async () => {
    // This server's metrics (its own registry): the group commit histogram (transactions, and the
    // entries they wrote) and the Append calls in progress.
    const scrape = async () => (await fetch(`http://127.0.0.1:${harness.server.httpPort}/metrics`)).text();
    const total = (text: string, series: string) =>
      [...text.matchAll(new RegExp(`^${series}(?:\\{[^}]*\\})? (\\d+)$`, "gm"))].reduce((sum, match) => sum + Number(match[1]), 0);
    const groups = async () => {
      const text = await scrape();
      return { transactions: total(text, "annals_log_group_commit_entries_count"), entries: total(text, "annals_log_group_commit_entries_sum") };
    };
    const before = await groups();
    // A transaction holds the table of heads while the 200 appends arrive, so that they queue
    // whatever the machine's speed; once all 200 are waiting, it lets them through.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const holding = harness.db.transaction(async (tx) => {
      await tx.query("lock table log.logs in exclusive mode");
      locked();
      await held;
    });
    await isLocked;
    const appending = Promise.all(Array.from({ length: 200 }, (_, i) => harness.admin.append({ logId: "group", entry: entry("load.tick", { i }) })));
    await until("the 200 appends to wait", async () => /^annals_rpc_server_active\{[^}]*rpc_method="Append"[^}]*\} 200$/m.test(await scrape()));
    release();
    await holding;
    const results = await appending;
    const seqs = results.map((r) => Number(r.result!.seq)).sort((a, b) => a - b);
    assert.deepEqual(seqs, Array.from({ length: 200 }, (_, i) => i + 1));
    const after = await groups();
    assert.equal(after.entries - before.entries, 200);
    const transactions = after.transactions - before.transactions;
    assert.ok(transactions < 200, `the 200 appends were grouped: ${transactions} transactions wrote them`);
    const verify = await harness.admin.verify({ logId: "group" });
    assert.equal(verify.valid, true);
    assert.equal(verify.checkedCount, 200n);
  });

  test("AppendStream acknowledges every entry in order and ends with the first failure", async () => {
    async function* messages() {
      for (let i = 0; i < 300; i++) yield { frame: { case: "entry" as const, value: { logId: "stream", entry: entry("s.e", { i }) } } };
    }
    const acks: bigint[] = [];
    for await (const ack of harness.admin.appendStream(messages())) acks.push(resultOf(ack).seq);
    assert.deepEqual(acks, Array.from({ length: 300 }, (_, i) => BigInt(i + 1)));

    // The client keeps sending until it sees the error: the status must not
    // wait for the request stream to end.
    let sawError!: () => void;
    const errorSeen = new Promise<void>((resolve) => (sawError = resolve));
    async function* withBadOne() {
      yield { frame: { case: "entry" as const, value: { logId: "stream", entry: entry("s.e", { ok: 1 }) } } };
      yield { frame: { case: "entry" as const, value: { logId: "stream", entry: entry("", { bad: 1 }) } } };
      await errorSeen;
    }
    const seen: bigint[] = [];
    const error = await rejects(
      (async () => {
        try {
          for await (const ack of harness.admin.appendStream(withBadOne())) seen.push(resultOf(ack).seq);
        } finally {
          sawError();
        }
      })(),
      Code.InvalidArgument,
      /frame\[1\]\.entry\.entry\.kind: is required/,
    );
    assert.ok(error);
    assert.deepEqual(seen, [301n]);
  });
});

describe("contract v1: binary payloads and stream frames", () => {
  test("a binary payload is stored as bytes with its content type, its digest is SHA-256 of the bytes, and it exports and verifies", async () => {
    const bytes = Uint8Array.from([0x0a, 0x03, 0x61, 0x62, 0x63, 0x00, 0xff]);
    const { result } = await harness.admin.append({ logId: "binary", entry: binaryEntry("blob.put", bytes, "application/x-protobuf; messageType=t.v1.Blob", { requestId: "b-1" }) });
    const stored = (await harness.admin.getEntry({ logId: "binary", selector: { case: "seq", value: result!.seq } })).entry!;
    assert.equal(stored.body.case, "binaryPayload");
    assert.deepEqual(Buffer.from(stored.body.value), Buffer.from(bytes));
    assert.equal(stored.contentType, "application/x-protobuf; messageType=t.v1.Blob");
    assert.equal(stored.payloadDigest, createHash("sha256").update(bytes).digest("hex"));
    const retry = await harness.admin.append({ logId: "binary", entry: binaryEntry("blob.put", bytes, "application/x-protobuf; messageType=t.v1.Blob", { requestId: "b-1" }) });
    assert.equal(retry.result!.duplicate, true);
    await rejects(
      harness.admin.append({ logId: "binary", entry: binaryEntry("blob.put", bytes, "application/octet-stream", { requestId: "b-1" }) }),
      Code.AlreadyExists,
      /request_id "b-1"/,
    );
    await harness.admin.append({ logId: "binary", entry: entry("blob.note", { about: "json next to bytes" }) });
    assert.equal((await harness.admin.verify({ logId: "binary" })).valid, true);
    let text = "";
    for await (const chunk of harness.admin.export({ logId: "binary" })) text += Buffer.from(chunk.chunk).toString("utf8");
    const verifier = new ExportVerifier();
    for (const line of text.split("\n")) verifier.line(line);
    const report = verifier.finish();
    assert.deepEqual(report.problems, []);
    const line = JSON.parse(text.split("\n")[1]!);
    assert.deepEqual([line.content_type, line.payload], ["application/x-protobuf; messageType=t.v1.Blob", Buffer.from(bytes).toString("base64")]);
    await harness.admin.redact({ logId: "binary", seq: result!.seq, reason: "erase the blob" });
    const erased = (await harness.admin.getEntry({ logId: "binary", selector: { case: "seq", value: result!.seq } })).entry!;
    assert.deepEqual([erased.body.case, erased.contentType], [undefined, "application/x-protobuf; messageType=t.v1.Blob"]);
    assert.equal((await harness.admin.verify({ logId: "binary" })).valid, true, "the content type stays, so the checksum still recomputes");
  });

  test("AppendStream: options, entry and batch frames, and continue_on_failure answers a refused frame with a failure frame", async () => {
    async function* frames() {
      yield { frame: { case: "options" as const, value: { logId: "frames", continueOnFailure: true } } };
      yield { frame: { case: "entry" as const, value: { entry: entry("f.a", { n: 1 }) } } };
      yield { frame: { case: "batch" as const, value: { entries: [entry("f.b", { n: 2 }), entry("f.b", { n: 3 })] } } };
      yield { frame: { case: "entry" as const, value: { entry: entry("f.bad..kind", { n: 4 }) } } };
      yield { frame: { case: "entry" as const, value: { logId: "frames-other", entry: entry("f.c", { n: 5 }) } } };
    }
    const answers = [];
    for await (const answer of harness.admin.appendStream(frames())) answers.push(answer.frame);
    assert.deepEqual(answers.map((answer) => answer.case), ["result", "batchResult", "failure", "result"]);
    assert.equal((answers[0]!.value as logV1.AppendResult).seq, 1n);
    assert.deepEqual((answers[1]!.value as logV1.AppendBatchResponse).results.map((r) => r.seq), [2n, 3n]);
    const failure = answers[2]!.value as logV1.AppendStreamFailure;
    assert.deepEqual([failure.frameIndex, failure.code, failure.reason], [3n, Code.InvalidArgument, "INVALID_ARGUMENT"]);
    assert.match(failure.message, /^frame\[3\]\.entry\.entry\.kind: /);
    assert.equal((answers[3]!.value as logV1.AppendResult).seq, 1n, "the frame's own log_id wins over the options'");
    assert.equal((await harness.admin.getLog({ logId: "frames" })).head!.lastSeq, 3n);
  });
});

describe("idempotency by request_id", () => {
  test("10 concurrent retries of one request_id write one entry; other content is ALREADY_EXISTS", async () => {
    const results = await Promise.all(
      Array.from({ length: 10 }, () =>
        harness.admin.append({ logId: "idem", entry: entry("pay.made", { amount: 5 }, { requestId: "r-1", metadata: { a: "b" } }) }),
      ),
    );
    const seqs = new Set(results.map((r) => r.result!.seq));
    assert.deepEqual([...seqs], [1n]);
    assert.equal(results.filter((r) => !r.result!.duplicate).length, 1);
    assert.equal(new Set(results.map((r) => r.result!.checksum)).size, 1);
    await rejects(
      harness.admin.append({ logId: "idem", entry: entry("pay.made", { amount: 6 }, { requestId: "r-1", metadata: { a: "b" } }) }),
      Code.AlreadyExists,
    );
    await rejects(harness.admin.append({ logId: "idem", entry: entry("pay.made", { amount: 5 }, { requestId: "r-1" }) }), Code.AlreadyExists);
    const head = await harness.admin.getLog({ logId: "idem" });
    assert.equal(head.head!.lastSeq, 1n);
    const found = await harness.admin.findByRequestId({ logId: "idem", requestId: "r-1" });
    assert.equal(found.entry!.seq, 1n);
  });

  test("a client uuid is unique in the log", async () => {
    const uuid = "01936b2e-7c00-7000-8000-00000000abcd";
    await harness.admin.append({ logId: "uuids", entry: entry("u.x", {}, { uuid }) });
    const error = await rejects(harness.admin.append({ logId: "uuids", entry: entry("u.x", {}, { uuid }) }), Code.AlreadyExists);
    assert.equal(errorReason(error), "UUID_TAKEN");
    const byUuid = await harness.admin.getEntry({ logId: "uuids", selector: { case: "uuid", value: uuid } });
    assert.equal(byUuid.entry!.seq, 1n);
  });
});

describe("reads", () => {
  before(async () => {
    const entries = Array.from({ length: 25 }, (_, i) =>
      entry(i % 2 ? "r.odd" : "r.even", { i }, { sourceId: `src-${i % 3}`, ...(i % 5 ? { simTime: i * 1.5 } : {}) }),
    );
    await harness.admin.appendBatch({ logId: "reads", entries });
  });

  test("Read pages forward and backward with cursors; forward, the token at the head picks up later appends", async () => {
    const seqs: bigint[] = [];
    let pageToken = "";
    let page;
    do {
      page = await harness.admin.read({ logId: "reads", pageSize: 10, pageToken });
      seqs.push(...page.entries.map((e) => e.seq));
      pageToken = page.nextPageToken;
      assert.notEqual(pageToken, "", "a forward listing has no end");
    } while (seqs.at(-1) !== page.head!.lastSeq);
    assert.deepEqual(seqs, Array.from({ length: 25 }, (_, i) => BigInt(i + 1)));
    const atHead = await harness.admin.read({ logId: "reads", pageSize: 10, pageToken });
    assert.deepEqual([atHead.entries.length, atHead.nextPageToken], [0, pageToken], "nothing new yet: an empty page, the same token");
    await harness.admin.append({ logId: "later-reads", entry: entry("r.x", {}) });
    const later = await harness.admin.read({ logId: "later-reads" });
    await harness.admin.append({ logId: "later-reads", entry: entry("r.x", { n: 2 }) });
    assert.deepEqual((await harness.admin.read({ logId: "later-reads", pageToken: later.nextPageToken })).entries.map((e) => e.seq), [2n]);
    const back = await harness.admin.read({ logId: "reads", direction: logV1.ReadDirection.BACKWARD, pageSize: 10 });
    assert.deepEqual(back.entries.map((e) => e.seq), Array.from({ length: 10 }, (_, i) => BigInt(25 - i)));
    const more = await harness.admin.read({ logId: "reads", direction: logV1.ReadDirection.BACKWARD, pageSize: 10, pageToken: back.nextPageToken });
    assert.equal(more.entries[0]!.seq, 15n);
    const fromSeven = await harness.admin.read({ logId: "reads", fromSeq: 7n, pageSize: 2 });
    assert.deepEqual(fromSeven.entries.map((e) => e.seq), [7n, 8n]);
  });

  test("ListBySource, ListByTimeRange and Stats", async () => {
    const bySource = await harness.admin.listBySource({ logId: "reads", sourceId: "src-1", pageSize: 3 });
    assert.deepEqual(bySource.entries.map((e) => e.seq), [2n, 5n, 8n]);
    const next = await harness.admin.listBySource({ logId: "reads", sourceId: "src-1", pageSize: 100, pageToken: bySource.nextPageToken });
    assert.deepEqual(next.entries.map((e) => e.seq), [11n, 14n, 17n, 20n, 23n]);

    const bySim = await harness.admin.listByTimeRange({ logId: "reads", range: { case: "simTime", value: { start: 3, end: 9 } } });
    assert.deepEqual(bySim.entries.map((e) => e.simTime), [3, 4.5, 6, 9]);

    const all = await harness.admin.read({ logId: "reads", pageSize: 100 });
    const wall = all.entries[0]!.wallTimeUs;
    const byWall = await harness.admin.listByTimeRange({
      logId: "reads",
      range: { case: "wallTime", value: { startUs: wall, endUs: wall } },
      pageSize: 10,
    });
    assert.equal(byWall.entries.length, 10, "a batch shares one wall time, so the range holds all 25 (first page 10)");
    assert.ok(byWall.nextPageToken);

    const stats = await harness.admin.stats({ logId: "reads" });
    assert.equal(stats.head!.entryCount, 25n);
    assert.equal(stats.sourceCount, 3n);
    assert.equal(stats.minSimTime, 1.5);
    assert.equal(stats.maxSimTime, 36);
    assert.equal(stats.minWallTimeUs, wall);
  });

  test("ListLogs lists heads by name and hides logs a token does not grant", async () => {
    const all = await harness.admin.listLogs({ prefix: "re" });
    assert.deepEqual(all.logs.map((l) => l.logId), ["reads"]);
    assert.equal(all.logs[0]!.lastSeq, 25n);
    const narrow = await harness.clientWith(["log.read"], ["seq"]);
    const visible = await narrow.listLogs({});
    assert.deepEqual(visible.logs.map((l) => l.logId), ["seq"]);
    await rejects(narrow.read({ logId: "reads" }), Code.PermissionDenied);
  });
});

describe("bad input", () => {
  test("each bad append names the field and uses INVALID_ARGUMENT", async () => {
    const json = (payload: Record<string, unknown>) => ({ case: "payload" as const, value: payload as never });
    const bytes = (length: number) => ({ case: "binaryPayload" as const, value: new Uint8Array(length) });
    const cases: [string, (EntryInit & { kind?: string; body?: ReturnType<typeof json> | ReturnType<typeof bytes>; contentType?: string }) | undefined, RegExp][] = [
      ["missing kind", { body: json({}) }, /^entry\.kind: is required/],
      ["invalid kind", { kind: "order..placed", body: json({}) }, /^entry\.kind: .*empty token/],
      ["kind with a space", { kind: "order placed", body: json({}) }, /^entry\.kind: tokens may hold only/],
      ["reserved kind", { kind: "annals.redaction", body: json({}) }, /^entry\.kind: .*reserved/],
      ["missing payload", { kind: "a.b" }, /^entry\.payload: is required/],
      ["oversize payload", { kind: "a.b", body: json({ big: "x".repeat(5000) }) }, /^entry\.payload: is 50\d\d bytes .*limit is 4096/],
      ["NUL in payload", { kind: "a.b", body: json({ s: "a\u0000b" }) }, /^entry\.payload\b.*NUL/],
      ["integer beyond 2^53 in payload", { kind: "a.b", body: json({ id: 2 ** 53 + 2 }) }, /^entry\.payload: at id: .*beyond ±\(2\^53 − 1\).*as a string/],
      ["binary payload without content type", { kind: "a.b", body: bytes(3) }, /^entry\.content_type: is required with a binary payload/],
      ["content type on a JSON payload", { kind: "a.b", body: json({}), contentType: "text/plain" }, /^entry\.content_type: must be empty for a JSON payload/],
      ["oversize binary payload", { kind: "a.b", body: bytes(4097), contentType: "application/octet-stream" }, /^entry\.binary_payload: is 4097 bytes; the limit is 4096/],
      ["bad uuid", { kind: "a.b", body: json({}), uuid: "not-a-uuid" }, /^entry\.uuid:/],
      ["oversize metadata", { kind: "a.b", body: json({}), metadata: { k: "v".repeat(300) } }, /^entry\.metadata: .*limit is 256/],
      ["missing entry", undefined, /^entry: is required/],
    ];
    for (const [name, input, message] of cases) {
      const error = await rejects(harness.admin.append({ logId: "bad", ...(input ? { entry: input } : {}) }), Code.InvalidArgument, message);
      assert.ok(error, name);
    }
    await rejects(harness.admin.append({ logId: "bad//log", entry: entry("a.b", {}) }), Code.InvalidArgument, /^log_id:/);
    await rejects(harness.admin.append({ logId: "", entry: entry("a.b", {}) }), Code.InvalidArgument, /^log_id: is required/);
    await rejects(harness.admin.appendBatch({ logId: "bad", entries: [] }), Code.InvalidArgument, /^entries:/);
    await rejects(
      harness.admin.appendBatch({ logId: "bad", entries: Array.from({ length: 51 }, () => entry("a.b", {})) }),
      Code.InvalidArgument,
      /limit is 50/,
    );
    await rejects(harness.admin.getLog({ logId: "bad" }), Code.NotFound, /log "bad" not found/);
  });

  test("reads refuse unknown logs, bad seqs, page sizes and tokens", async () => {
    await harness.admin.appendBatch({ logId: "bounds", entries: [entry("a.b", {}), entry("a.b", {})] });
    await rejects(harness.admin.read({ logId: "nope" }), Code.NotFound);
    await rejects(harness.admin.getEntry({ logId: "nope", selector: { case: "seq", value: 1n } }), Code.NotFound);
    await rejects(harness.admin.read({ logId: "bounds", fromSeq: -1n }), Code.InvalidArgument, /^from_seq:/);
    await rejects(harness.admin.read({ logId: "bounds", fromSeq: 9223372036854775807n }), Code.OutOfRange, /past the head/);
    await rejects(harness.admin.read({ logId: "bounds", pageSize: 1001 }), Code.InvalidArgument, /^page_size:/);
    await rejects(harness.admin.read({ logId: "bounds", pageToken: "garbage" }), Code.InvalidArgument, /^page_token:/);
    const sourceToken = (await harness.admin.listBySource({ logId: "bounds", sourceId: "", pageSize: 1 })).nextPageToken;
    await rejects(harness.admin.read({ logId: "bounds", pageToken: sourceToken }), Code.InvalidArgument, /^page_token:/);
    await rejects(harness.admin.getEntry({ logId: "bounds", selector: { case: "seq", value: 0n } }), Code.InvalidArgument);
    await rejects(harness.admin.getEntry({ logId: "bounds", selector: { case: "seq", value: 3n } }), Code.NotFound);
    await rejects(harness.admin.getEntry({ logId: "bounds" }), Code.InvalidArgument, /^selector:/);
    await rejects(harness.admin.getEntry({ logId: "bounds", selector: { case: "uuid", value: "zz" } }), Code.InvalidArgument);
    await rejects(harness.admin.findByRequestId({ logId: "bounds", requestId: "" }), Code.InvalidArgument, /^request_id: is required/);
    await rejects(harness.admin.verify({ logId: "bounds", toSeq: 3n }), Code.OutOfRange);
    await rejects(
      harness.admin.listByTimeRange({ logId: "bounds", range: { case: "simTime", value: { start: 2, end: 1 } } }),
      Code.InvalidArgument,
    );
    await rejects(harness.admin.listByTimeRange({ logId: "bounds" }), Code.InvalidArgument, /^range:/);
  });

  test("roles: a reader cannot append, a writer cannot compact", async () => {
    const reader = await harness.clientWith(["log.read"]);
    await rejects(reader.append({ logId: "roles", entry: entry("a.b", {}) }), Code.PermissionDenied);
    const writer = await harness.clientWith(["log.write"]);
    await writer.append({ logId: "roles", entry: entry("a.b", {}) });
    await rejects(writer.compact({ logId: "roles", retain: { case: "keepLast", value: 1n } }), Code.PermissionDenied);
    await rejects(writer.appendReplicated({ logId: "roles" }), Code.PermissionDenied);
  });
});

describe("verify, tamper, compact, redact, export", () => {
  test("an UPDATE of one payload in SQL is reported at exactly that seq", async () => {
    await harness.admin.appendBatch({ logId: "tamper", entries: Array.from({ length: 10 }, (_, i) => entry("t.x", { i })) });
    assert.equal((await harness.admin.verify({ logId: "tamper" })).valid, true);
    await harness.db.query(`update log.entries set payload = '{"i": 999}' where log_id = 'tamper' and seq = 6`);
    const report = await harness.admin.verify({ logId: "tamper" });
    assert.equal(report.valid, false);
    assert.deepEqual(
      report.findings.map((finding) => [finding.seq, logV1.VerifyFindingKind[finding.kind]]),
      [[6n, "DIGEST"]],
      "the payload no longer hashes to its digest at seq 6 (the checksum covers the stored digest, so it still recomputes)",
    );
    const digest = report.findings[0]!;
    assert.equal(digest.actual, (await harness.admin.getEntry({ logId: "tamper", selector: { case: "seq", value: 6n } })).entry!.payloadDigest);
    assert.match(digest.expected, /^[0-9a-f]{64}$/);
    assert.notEqual(digest.expected, digest.actual);
    assert.equal(report.checkedCount, 10n);
    await harness.db.query(`delete from log.entries where log_id = 'tamper' and seq = 8`);
    const after = await harness.admin.verify({ logId: "tamper" });
    const missing = after.findings.filter((finding) => finding.kind === logV1.VerifyFindingKind.MISSING);
    assert.deepEqual(missing.map((finding) => [finding.seq, finding.endSeq]), [[8n, 8n]]);
    assert.equal(after.findingsTruncated, false);
  });

  test("compaction keeps an anchor: Verify passes, old seqs are OUT_OF_RANGE naming the first", async () => {
    await harness.admin.appendBatch({ logId: "compact", entries: Array.from({ length: 20 }, (_, i) => entry("c.x", { i })) });
    const compacted = await harness.admin.compact({ logId: "compact", retain: { case: "keepLast", value: 5n } });
    assert.equal(compacted.removedCount, 15n);
    assert.equal(compacted.head!.anchor!.seq, 15n);
    assert.equal(compacted.head!.firstSeq, 16n);
    assert.equal(compacted.head!.entryCount, 5n);
    const report = await harness.admin.verify({ logId: "compact" });
    assert.equal(report.valid, true);
    assert.equal(report.anchorSeq, 15n);
    assert.equal(report.checkedCount, 5n);
    const error = await rejects(harness.admin.read({ logId: "compact", fromSeq: 3n }), Code.OutOfRange, /first available seq is 16/);
    assert.equal(errorReason(error), "SEQ_COMPACTED");
    await rejects(harness.admin.getEntry({ logId: "compact", selector: { case: "seq", value: 15n } }), Code.OutOfRange);
    const again = await harness.admin.compact({ logId: "compact", retain: { case: "beforeSeq", value: 10n } });
    assert.equal(again.removedCount, 0n);
    await rejects(harness.admin.compact({ logId: "compact", retain: { case: "beforeSeq", value: 22n } }), Code.OutOfRange);
    await rejects(harness.admin.compact({ logId: "compact", retain: { case: "keepLast", value: 0n } }), Code.InvalidArgument);
    await harness.admin.append({ logId: "compact", entry: entry("c.x", { after: true }) });
    assert.equal((await harness.admin.verify({ logId: "compact" })).valid, true);
  });

  test("redaction erases the payload, is its own entry, and Verify still passes", async () => {
    await harness.admin.appendBatch({ logId: "redact", entries: [entry("p.x", { name: "ada" }), entry("p.x", { name: "bob" })] });
    const redaction = await harness.admin.redact({ logId: "redact", seq: 1n, reason: "erasure request", requestId: "red-1" });
    assert.equal(redaction.redaction!.seq, 3n);
    const erased = await harness.admin.getEntry({ logId: "redact", selector: { case: "seq", value: 1n } });
    assert.equal(erased.entry!.body.case, undefined);
    assert.equal(erased.entry!.redaction!.redactionSeq, 3n);
    assert.equal(erased.entry!.redaction!.reason, "erasure request");
    const record = await harness.admin.getEntry({ logId: "redact", selector: { case: "seq", value: 3n } });
    assert.equal(record.entry!.kind, "annals.redaction");
    assert.deepEqual(payloadOf(record.entry), { redacted_seq: "1", reason: "erasure request" });
    assert.equal((await harness.admin.verify({ logId: "redact" })).valid, true);
    const retry = await harness.admin.redact({ logId: "redact", seq: 1n, reason: "erasure request", requestId: "red-1" });
    assert.equal(retry.redaction!.duplicate, true);
    await rejects(harness.admin.redact({ logId: "redact", seq: 1n, reason: "again" }), Code.FailedPrecondition, /already redacted/);
    await rejects(harness.admin.redact({ logId: "redact", seq: 3n, reason: "x" }), Code.FailedPrecondition);
    await rejects(harness.admin.redact({ logId: "redact", seq: 9n, reason: "x" }), Code.NotFound);
    await rejects(harness.admin.redact({ logId: "redact", seq: 2n, reason: " " }), Code.InvalidArgument, /^reason:/);
    const stats = await harness.admin.stats({ logId: "redact" });
    assert.equal(stats.redactedCount, 1n);
  });

  test("an export verifies offline, and a one-byte change names the seq", async () => {
    await harness.admin.appendBatch({
      logId: "export",
      entries: Array.from({ length: 30 }, (_, i) => entry("e.x", { i, text: `é ${i}`, nested: { a: [i, null] } }, { simTime: i / 7 })),
    });
    await harness.admin.redact({ logId: "export", seq: 4n, reason: "gdpr" });
    await harness.admin.compact({ logId: "export", retain: { case: "beforeSeq", value: 3n } });
    let text = "";
    for await (const chunk of harness.admin.export({ logId: "export" })) text += Buffer.from(chunk.chunk).toString("utf8");
    const lines = text.split("\n");
    assert.equal(lines.length, 1 + 29 + 1 + 1); // header, entries 3..31, end, trailing ""
    const verify = (content: string) => {
      const verifier = new ExportVerifier();
      for (const line of content.split("\n")) verifier.line(line);
      return verifier.finish();
    };
    const intact = verify(text);
    assert.deepEqual(intact.problems, []);
    assert.equal(intact.checkedCount, 29);
    const target = lines[10]!; // seq 12
    const at = target.indexOf('"i":') + 4;
    const tampered = [...lines];
    tampered[10] = target.slice(0, at) + (target[at] === "1" ? "2" : "1") + target.slice(at + 1);
    const report = verify(tampered.join("\n"));
    assert.equal(report.valid, false);
    assert.ok(report.problems.some((p) => p.seq === 12n && p.problem === "payload_digest"), JSON.stringify(report.problems.map((p) => p.detail)));
  });

  test("the service stores and verifies exactly the chains of docs/hash-chain/vectors.json, binary payloads included", async () => {
    const vectors = JSON.parse(readFileSync(new URL("../../../docs/hash-chain/vectors.json", import.meta.url), "utf8"));
    let checked = 0;
    for (const chain of vectors.chains) {
      // annals.* kinds are the service's own (the redaction vector, the last of its chain); append the others as a producer would.
      const producerVectors = chain.entries.filter((v: { kind: string }) => !v.kind.startsWith("annals."));
      for (const vector of producerVectors) {
        const binary = vector.content_type !== null;
        const appended = await harness.admin.append({
          logId: chain.log_id,
          entry: {
            uuid: vector.uuid,
            kind: vector.kind,
            body: binary ? { case: "binaryPayload", value: Buffer.from(vector.payload_base64, "base64") } : { case: "payload", value: vector.payload },
            contentType: vector.content_type ?? "",
            sourceId: vector.source_id,
            ...(vector.sim_time === null ? {} : { simTime: vector.sim_time }),
            metadata: vector.metadata,
            requestId: vector.req_id,
          },
        });
        assert.equal(appended.result!.seq, BigInt(vector.seq));
        const stored = await harness.admin.getEntry({ logId: chain.log_id, selector: { case: "seq", value: BigInt(vector.seq) } });
        assert.equal(stored.entry!.payloadDigest, vector.payload_digest, `payload digest of ${chain.log_id} seq ${vector.seq}`);
        assert.equal(stored.entry!.contentType, vector.content_type ?? "");
      }
      // The service chose its own wall times. Give the rows the vectors' wall times and
      // checksums: Verify recomputes every envelope from what the service stored, so it
      // passes only if the service's envelope is exactly the one the vectors hash.
      for (const vector of producerVectors) {
        await harness.db.query(
          `update log.entries set wall_time_us = $3, prev_checksum = $4, checksum = $5 where log_id = $1 and seq = $2`,
          [chain.log_id, BigInt(vector.seq), BigInt(vector.wall_time), vector.prev_checksum, vector.checksum],
        );
      }
      await harness.db.query(`update log.logs set last_checksum = $2 where log_id = $1`, [chain.log_id, producerVectors.at(-1).checksum]);
      const report = await harness.admin.verify({ logId: chain.log_id });
      // The rewritten checksums are not the leaves the tree grew from: Verify says so (TREE), and the chain itself must verify.
      const chainFindings = report.findings.filter((finding) => finding.kind !== logV1.VerifyFindingKind.TREE && finding.kind !== logV1.VerifyFindingKind.CHECKPOINT);
      assert.deepEqual(chainFindings, []);
      assert.ok(report.findings.every((finding) => finding.kind === logV1.VerifyFindingKind.TREE || finding.kind === logV1.VerifyFindingKind.CHECKPOINT));
      assert.equal(report.checkedCount, BigInt(producerVectors.length));
      assert.equal(report.findings.filter((finding) => finding.kind === logV1.VerifyFindingKind.TREE).length, producerVectors.length);
      checked += producerVectors.length;
    }
    assert.equal(checked, 5, "3 JSON and 2 binary vectors");
  });
});
