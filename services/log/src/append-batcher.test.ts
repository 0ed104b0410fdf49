// The batcher's fast path (issue 20): a log's head kept in memory, each group
// written by one statement that checks under the head lock what the plan
// assumed. Two batchers on one database stand for two replicas, each with its
// own idea of the head.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { leafHash, rootOfLeaves, verifyInclusion } from "@annals/chain";
import type { Database, DatabaseError, Queryable } from "@annals/db";
import { logV1, rpcDetails } from "@annals/proto";
import { AppendBatcher } from "./append-batcher.js";
import { prepareCondition } from "./append-condition.js";
import type { AppendRequest } from "./append-plan.js";
import { DEFAULT_LOG_LIMITS, prepareEntry, type PreparedEntry } from "./entry-input.js";
import type { LogMetrics } from "./log-metrics.js";
import { entry, startLogHarness, type EntryInit, type LogHarness } from "./log-harness.js";

let harness: LogHarness;

before(async () => {
  harness = await startLogHarness("log_append_batcher");
});

after(async () => {
  await harness?.close();
});

const metrics = { groupCommitted: () => {}, appendFinished: () => {} } as unknown as LogMetrics;

/** What a database was asked. */
interface Counts {
  statements: number;
  transactions: number;
}

/** The database, counting what is sent through it. Round trips = statements + 2 × transactions (BEGIN, COMMIT). */
function counted(db: Database): { db: Database; counts: Counts; reset: () => void } {
  const counts: Counts = { statements: 0, transactions: 0 };
  const track = <T>(run: () => Promise<T>): Promise<T> => {
    counts.statements++;
    return run();
  };
  const wrapped: Database = {
    driver: db.driver,
    query: (sql, params) => track(() => db.query(sql, params)),
    transaction: (work) => {
      counts.transactions++;
      return db.transaction((tx: Queryable) => work({ query: (sql, params) => track(() => tx.query(sql, params)) }));
    },
    listen: (channel, onNotify, options) => db.listen(channel, onNotify, options),
    notify: (channel, payload) => db.notify(channel, payload),
    close: () => db.close(),
  };
  return { db: wrapped, counts, reset: () => Object.assign(counts, { statements: 0, transactions: 0 }) };
}

function prepared(kind: string, payload: Record<string, unknown> = {}, extra: EntryInit = {}): PreparedEntry {
  return prepareEntry(create(logV1.EntryInputSchema, entry(kind, payload, extra)), DEFAULT_LOG_LIMITS, "entry");
}

function request(entries: PreparedEntry[], condition?: { expectedLastSeq?: bigint; afterSeq?: bigint; kinds?: string[] }): AppendRequest {
  return { entries, condition: condition ? prepareCondition(create(logV1.AppendConditionSchema, condition), "condition") : null };
}

async function seqOf(pending: Promise<{ seq: bigint; duplicate: boolean }[]>): Promise<bigint> {
  return (await pending)[0]!.seq;
}

/** The reason and metadata of a refused append. */
async function refusal(pending: Promise<unknown>): Promise<{ code: string; reason: string | undefined; metadata: Record<string, string> }> {
  try {
    await pending;
  } catch (caught) {
    const error = ConnectError.from(caught);
    const info = error.findDetails(rpcDetails.ErrorInfoSchema)[0];
    return { code: Code[error.code], reason: info?.reason, metadata: { ...info?.metadata } };
  }
  assert.fail("the append was not refused");
}

/** Every stored entry of the log links to the one before it, seqs 1…n with no gap; and Verify agrees. */
async function assertChained(logId: string, count: number): Promise<void> {
  const { rows } = await harness.db.query<{ seq: bigint; prev_checksum: string; checksum: string }>(
    "select seq, prev_checksum, checksum from log.entries where log_id = $1 order by seq",
    [logId],
  );
  assert.deepEqual(
    rows.map((row) => BigInt(row.seq)),
    Array.from({ length: count }, (_, i) => BigInt(i + 1)),
  );
  rows.forEach((row, i) => i > 0 && assert.equal(row.prev_checksum, rows[i - 1]!.checksum, `seq ${row.seq} links to seq ${i}`));
  const verify = await harness.admin.verify({ logId });
  assert.equal(verify.valid, true);
  assert.equal(verify.checkedCount, BigInt(count));
}

describe("the fast path", () => {
  test("after a log's first append, an append is one statement and no transaction: one round trip, BEGIN…COMMIT included", async () => {
    const { db, counts, reset } = counted(harness.db);
    const batcher = new AppendBatcher(db, { maxEntries: 1000, maxWaitMs: 0 }, metrics, () => {});
    assert.equal(await seqOf(batcher.append("one-trip", request([prepared("trip.first")]))), 1n);
    reset();
    assert.equal(await seqOf(batcher.append("one-trip", request([prepared("trip.plain")]))), 2n);
    assert.equal(await seqOf(batcher.append("one-trip", request([prepared("trip.keyed", {}, { requestId: "trip-1", uuid: "0190f0c0-0000-7000-8000-000000000001" })]))), 3n);
    assert.equal(await seqOf(batcher.append("one-trip", request([prepared("trip.expected")], { expectedLastSeq: 3n }))), 4n);
    assert.equal(await seqOf(batcher.append("one-trip", request([prepared("trip.query")], { afterSeq: 1n, kinds: ["other.*"] }))), 5n);
    assert.deepEqual([counts.statements, counts.transactions], [4, 0], "one statement per append, no BEGIN/COMMIT");
    // A retried req_id is found by the statement; the locked path answers it with the original.
    const retried = await batcher.append("one-trip", request([prepared("trip.keyed", {}, { requestId: "trip-1" })]));
    assert.deepEqual(
      retried.map((r) => [r.seq, r.duplicate]),
      [[3n, true]],
    );
    await batcher.settled();
    await assertChained("one-trip", 5);
  });

  test("two replicas appending to one log, each with its own known head: gap-free, chained, one tree", async () => {
    const a = new AppendBatcher(harness.db, { maxEntries: 1000, maxWaitMs: 0 }, metrics, () => {});
    const b = new AppendBatcher(harness.db, { maxEntries: 1000, maxWaitMs: 0 }, metrics, () => {});
    let n = 0;
    const burst = (batcher: AppendBatcher, size: number) =>
      Array.from({ length: size }, () => batcher.append("two-replicas", request([prepared("replica.e", { n: n++ })])));
    for (let round = 0; round < 6; round++) {
      // In turns (each finds the head moved by the other), then both at once.
      await Promise.all(burst(a, 3));
      await Promise.all(burst(b, 2));
      await Promise.all([...burst(a, 5), ...burst(b, 5)]);
    }
    await Promise.all([a.settled(), b.settled()]);
    await assertChained("two-replicas", n);
    // One tree over every entry: the checkpoint's root is the root of the stored checksums, and each entry's inclusion proof verifies.
    const { rows } = await harness.db.query<{ checksum: string }>("select checksum from log.entries where log_id = $1 order by seq", ["two-replicas"]);
    const leaves = rows.map((row) => Buffer.from(row.checksum, "hex"));
    const checkpoint = await harness.admin.getCheckpoint({ logId: "two-replicas", treeSize: BigInt(n) });
    assert.deepEqual(Buffer.from(checkpoint.rootHash), Buffer.from(rootOfLeaves(leaves)));
    for (const [index, leaf] of leaves.entries()) {
      const proof = await harness.admin.getInclusionProof({ logId: "two-replicas", seq: BigInt(index + 1), treeSize: BigInt(n) });
      verifyInclusion(leafHash(leaf), proof.leafIndex, proof.treeSize, proof.hashes, checkpoint.rootHash);
    }
  });

  test("a head moved by another writer never decides an outcome: conditions and req_ids are checked against the real one", async () => {
    const a = new AppendBatcher(harness.db, { maxEntries: 1000, maxWaitMs: 0 }, metrics, () => {});
    const b = new AppendBatcher(harness.db, { maxEntries: 1000, maxWaitMs: 0 }, metrics, () => {});
    const logId = "moved-head";
    assert.equal(await seqOf(a.append(logId, request([prepared("moved.a")]))), 1n);
    assert.equal(await seqOf(b.append(logId, request([prepared("moved.b")]))), 2n);
    // A knows head 1; the log is at 2.
    assert.deepEqual(await refusal(a.append(logId, request([prepared("moved.a")], { expectedLastSeq: 1n }))), {
      code: "FailedPrecondition",
      reason: "APPEND_CONDITION_FAILED",
      metadata: { log: logId, head: "2" },
    });
    assert.equal(await seqOf(a.append(logId, request([prepared("moved.a")], { expectedLastSeq: 2n }))), 3n);
    // B stores a kind and a req_id that A's next appends did not see.
    assert.equal(await seqOf(b.append(logId, request([prepared("moved.k", {}, { requestId: "moved-1" })]))), 4n);
    assert.deepEqual(await refusal(a.append(logId, request([prepared("moved.a")], { afterSeq: 3n, kinds: ["moved.k"] }))), {
      code: "FailedPrecondition",
      reason: "APPEND_CONDITION_FAILED",
      metadata: { log: logId, head: "4", conflicting_seq: "4" },
    });
    const replay = await a.append(logId, request([prepared("moved.k", {}, { requestId: "moved-1" })]));
    assert.deepEqual(
      replay.map((r) => [r.seq, r.duplicate]),
      [[4n, true]],
    );
    assert.deepEqual(await refusal(a.append(logId, request([prepared("moved.other", {}, { requestId: "moved-1" })]))), {
      code: "AlreadyExists",
      reason: "REQUEST_ID_CONFLICT",
      metadata: { request_id: "moved-1", index: "0" },
    });
    await Promise.all([a.settled(), b.settled()]);
    await assertChained(logId, 4);
  });

  test("a compaction under a known head: a condition reaching below it is refused, plain appends go on", async () => {
    const a = new AppendBatcher(harness.db, { maxEntries: 1000, maxWaitMs: 0 }, metrics, () => {});
    const logId = "compacted-under";
    for (let i = 0; i < 6; i++) await a.append(logId, request([prepared(i < 4 ? "compact.gone" : "compact.kept", { i })]));
    await harness.admin.compact({ logId, retain: { case: "keepLast", value: 2n } });
    // Nothing stored matches now; what was compacted away did: whether the condition holds cannot be known.
    assert.deepEqual(await refusal(a.append(logId, request([prepared("compact.e")], { afterSeq: 1n, kinds: ["compact.gone"] }))), {
      code: "OutOfRange",
      reason: "SEQ_COMPACTED",
      metadata: { log: logId, first_available_seq: "5" },
    });
    assert.equal(await seqOf(a.append(logId, request([prepared("compact.e")]))), 7n);
    await a.settled();
    const verify = await harness.admin.verify({ logId });
    assert.equal(verify.valid, true);
  });

  test("tiles narrower than the tree edge says: the statement rolls back and the append is refused with DATA_LOSS", async () => {
    const a = new AppendBatcher(harness.db, { maxEntries: 1000, maxWaitMs: 0 }, metrics, () => {});
    const logId = "narrow-tiles";
    for (let i = 0; i < 3; i++) await a.append(logId, request([prepared("tiles.e", { i })]));
    await harness.db.query("update log.tiles set hashes = substring(hashes from 1 for 32) where log_id = $1 and level = 0 and idx = 0", [logId]);
    const refused = await refusal(a.append(logId, request([prepared("tiles.e")])));
    assert.deepEqual([refused.code, refused.reason], ["DataLoss", "TREE_MISMATCH"]);
    await a.settled();
    const { rows } = await harness.db.query<{ last_seq: bigint; entries: bigint }>(
      "select last_seq, (select count(*) from log.entries where log_id = $1) as entries from log.logs where log_id = $1",
      [logId],
    );
    assert.deepEqual([BigInt(rows[0]!.last_seq), BigInt(rows[0]!.entries)], [3n, 3n], "nothing was written");
  });

  test("a group the database refuses on the fast path: only the guilty request fails, the others keep their order", async () => {
    const groupStatements: string[] = [];
    const db = harness.db;
    const watched: Database = {
      driver: db.driver,
      query: (sql, params) => {
        if (sql.includes("log.append_group")) groupStatements.push(sql);
        return db.query(sql, params);
      },
      transaction: (work) => db.transaction(work),
      listen: (channel, onNotify, options) => db.listen(channel, onNotify, options),
      notify: (channel, payload) => db.notify(channel, payload),
      close: () => db.close(),
    };
    // A long first wait, so that the requests below form one group.
    const batcher = new AppendBatcher(watched, { maxEntries: 1000, maxWaitMs: 50 }, metrics, () => {});
    const logId = "fast-poison";
    await batcher.append(logId, request([prepared("poison.first")]));
    await batcher.settled();
    assert.equal(groupStatements.length, 0, "a log's first group takes the locked path");
    // jsonb refuses a lone surrogate escape (validation keeps it out of the service; built by hand here).
    const poison: PreparedEntry = { ...prepared("poison.bad"), payloadJson: '{"s":"\\ud800"}' };
    const good = (i: number) => batcher.append(logId, request([prepared("poison.good", { i })]));
    const pending = [good(0), good(1), batcher.append(logId, request([poison])), good(2), good(3)];
    const outcomes = await Promise.allSettled(pending);
    assert.equal(groupStatements.length, 1, "the group was sent once on the fast path");
    assert.deepEqual(
      outcomes.map((outcome) => (outcome.status === "fulfilled" ? outcome.value[0]!.seq : (outcome.reason as DatabaseError).code?.slice(0, 2))),
      [2n, 3n, "22", 4n, 5n],
    );
    await batcher.settled();
    await assertChained(logId, 5);
  });
});
