// Conditional appends (issue 18): expected_last_seq, the query form (a
// dynamic consistency boundary), idempotent replays and bad input, over real
// gRPC calls; the query's index paths against a brute-force answer.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { AppendConflictError, appendWithCondition, foldLog, isAppendConflict } from "@annals/client";
import { Code, ConnectError } from "@connectrpc/connect";
import { rpcDetails, type logV1 } from "@annals/proto";
import { errorReason } from "@annals/runtime";
import { KindFilter } from "@annals/topics";
import { CONDITION_SCAN_LIMIT, MAX_CONDITION_KINDS, MAX_CONDITION_SOURCE_IDS, conditionQuerySql } from "./append-condition.js";
import { entry, payloadOf, rejects, startLogHarness, type LogHarness } from "./log-harness.js";
import { firstConditionConflicts } from "./store.js";

let harness: LogHarness;

before(async () => {
  harness = await startLogHarness("log_conditions", { limits: { maxBatchEntries: 1000 } });
});

after(async () => {
  await harness?.close();
});

/** The ErrorInfo metadata of an error. */
function metadataOf(error: ConnectError): Record<string, string> {
  return error.findDetails(rpcDetails.ErrorInfoSchema)[0]?.metadata ?? {};
}

/** Asserts an APPEND_CONDITION_FAILED refusal and returns its metadata. */
async function conflict(call: Promise<unknown>): Promise<Record<string, string>> {
  const error = await rejects(call, Code.FailedPrecondition, /^append condition failed on log /);
  assert.equal(errorReason(error), "APPEND_CONDITION_FAILED");
  return metadataOf(error);
}

async function headOf(logId: string): Promise<bigint> {
  return (await harness.admin.getLog({ logId })).head!.lastSeq;
}

describe("expected_last_seq", () => {
  test("50 concurrent writers: exactly one wins per head value, the others learn the head; retrying, the counter adds up to 50", async () => {
    const logId = "counter";
    const writers = 50;
    const count = (state: number, e: logV1.Entry) => (payloadOf(e) as { count: number }).count ?? state;
    const increment = (lastSeq: bigint, state: number) => ({
      entries: [entry("counter.incremented", { count: state + 1 })],
      condition: { expectedLastSeq: lastSeq },
    });

    // Round one: every writer has read the empty log before any appends.
    const reads = await Promise.all(Array.from({ length: writers }, () => foldLog(harness.admin, logId, 0, count)));
    assert.ok(reads.every((read) => read.lastSeq === 0n && read.state === 0));
    const first = await Promise.allSettled(reads.map((read) => harness.admin.append({ logId, ...firstOf(increment(read.lastSeq, read.state)) })));
    const won = first.filter((outcome) => outcome.status === "fulfilled");
    assert.equal(won.length, 1, "exactly one writer wins head 0");
    assert.equal((won[0] as PromiseFulfilledResult<logV1.AppendResponse>).value.result!.seq, 1n);
    for (const outcome of first) {
      if (outcome.status === "fulfilled") continue;
      const error = ConnectError.from(outcome.reason);
      assert.ok(isAppendConflict(error), error.message);
      assert.equal(metadataOf(error).head, "1", "the loser learns the head the winner left");
      assert.equal(metadataOf(error).conflicting_seq, undefined, "no query, no conflicting seq");
    }

    // The losers go round the read–decide–append loop until they are through.
    const decidedOn: bigint[] = [];
    const retried = await Promise.all(
      first
        .filter((outcome) => outcome.status === "rejected")
        .map(() =>
          appendWithCondition(
            harness.admin,
            logId,
            async () => {
              const read = await foldLog(harness.admin, logId, 0, count);
              decidedOn.push(read.lastSeq);
              return increment(read.lastSeq, read.state);
            },
            { maxAttempts: 500, baseDelayMs: 2, maxDelayMs: 50 },
          ),
        ),
    );
    const seqs = retried.map((outcome) => outcome.results[0]!.seq).sort((a, b) => Number(a - b));
    assert.deepEqual(seqs, Array.from({ length: writers - 1 }, (_, i) => BigInt(i + 2)), "each head value from 1 to 49 was won exactly once");
    const attempts = retried.reduce((sum, outcome) => sum + outcome.attempts, 0);
    assert.equal(decidedOn.length, attempts);
    assert.ok(attempts > writers - 1, "some attempts conflicted (the writers raced)");
    const folded = await foldLog(harness.admin, logId, 0, count);
    assert.deepEqual(folded, { state: writers, lastSeq: BigInt(writers) }, "no lost update: the counter adds up");
    const read = await harness.admin.read({ logId, pageSize: 100 });
    assert.deepEqual(
      read.entries.map((e) => (payloadOf(e) as { count: number }).count),
      Array.from({ length: writers }, (_, i) => i + 1),
    );
  });

  test("0 means empty or absent; a failed condition on an absent log creates nothing", async () => {
    await conflict(harness.admin.append({ logId: "cond-absent", entry: entry("a.b", {}), condition: { expectedLastSeq: 3n } }));
    await rejects(harness.admin.getLog({ logId: "cond-absent" }), Code.NotFound);
    const created = await harness.admin.append({ logId: "cond-absent", entry: entry("a.b", {}), condition: { expectedLastSeq: 0n } });
    assert.equal(created.result!.seq, 1n);
    await harness.admin.createLog({ logId: "cond-empty" });
    assert.equal((await harness.admin.append({ logId: "cond-empty", entry: entry("a.b", {}), condition: { expectedLastSeq: 0n } })).result!.seq, 1n);
    const metadata = await conflict(harness.admin.append({ logId: "cond-empty", entry: entry("a.b", {}), condition: { expectedLastSeq: 0n } }));
    assert.deepEqual(metadata, { log: "cond-empty", head: "1" });
  });

  test("AppendBatch: the condition guards the whole batch", async () => {
    const logId = "cond-batch";
    const ok = await harness.admin.appendBatch({ logId, entries: [entry("b.x", {}), entry("b.x", {})], condition: { expectedLastSeq: 0n } });
    assert.deepEqual(ok.results.map((r) => r.seq), [1n, 2n]);
    assert.equal((await conflict(harness.admin.appendBatch({ logId, entries: [entry("b.x", {}), entry("b.x", {})], condition: { expectedLastSeq: 1n } }))).head, "2");
    assert.equal(await headOf(logId), 2n, "nothing of the refused batch was written");
  });

  test("AppendStream: a failed condition refuses its frame only (continue_on_failure), with the reason and metadata in the failure frame", async () => {
    const logId = "cond-stream";
    const frames = [
      { case: "options" as const, value: { logId, continueOnFailure: true } },
      { case: "entry" as const, value: { entry: entry("s.x", {}), condition: { expectedLastSeq: 0n } } },
      { case: "entry" as const, value: { entry: entry("s.x", {}), condition: { expectedLastSeq: 0n } } },
      { case: "batch" as const, value: { entries: [entry("s.y", {}), entry("s.y", {})], condition: { afterSeq: 0n, kinds: ["s.y"] } } },
      { case: "batch" as const, value: { entries: [entry("s.y", {})], condition: { afterSeq: 0n, kinds: ["s.y"] } } },
      { case: "entry" as const, value: { entry: entry("s.z", {}) } },
    ];
    async function* requests() {
      for (const frame of frames) yield { frame };
    }
    const answers: logV1.AppendStreamResponse["frame"][] = [];
    for await (const response of harness.admin.appendStream(requests())) answers.push(response.frame);
    assert.deepEqual(answers.map((answer) => answer.case), ["result", "failure", "batchResult", "failure", "result"]);
    const refusedEntry = answers[1]!.value as logV1.AppendStreamFailure;
    assert.deepEqual([refusedEntry.frameIndex, refusedEntry.code, refusedEntry.reason], [2n, Code.FailedPrecondition, "APPEND_CONDITION_FAILED"]);
    assert.deepEqual(refusedEntry.metadata, { log: logId, head: "1" });
    const refusedBatch = answers[3]!.value as logV1.AppendStreamFailure;
    assert.deepEqual(refusedBatch.metadata, { log: logId, head: "3", conflicting_seq: "2" });
    assert.equal(await headOf(logId), 4n);
  });
});

describe("@annals/client's loop", () => {
  test("the README's account: 10 concurrent withdrawals of 15 from 100, exactly 6 go through and the balance never goes below 0", async () => {
    const log = harness.admin;
    type Account = { balance: number };
    // As in README.md, "Conditional appends".
    const apply = (account: Account, entry: { kind: string; body: { case?: string; value?: unknown } }): Account => {
      const amount = (entry.body.value as { amount: number }).amount;
      return { balance: account.balance + (entry.kind === "account.deposited" ? amount : -amount) };
    };
    async function withdraw(accountId: string, amount: number, requestId: string) {
      const logId = `accounts/${accountId}`;
      return appendWithCondition(
        log,
        logId,
        async () => {
          const { state, lastSeq } = await foldLog(log, logId, { balance: 0 }, apply);
          if (state.balance < amount) throw new Error(`insufficient funds: ${state.balance}`);
          return {
            entries: [{ kind: "account.withdrawn", body: { case: "payload", value: { amount } }, requestId }],
            condition: { expectedLastSeq: lastSeq },
          };
        },
        { maxAttempts: 50 },
      );
    }
    await log.append({ logId: "accounts/a-1", entry: entry("account.deposited", { amount: 100 }) });
    const outcomes = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => withdraw("a-1", 15, `w-${i}`)));
    assert.equal(outcomes.filter((o) => o.status === "fulfilled").length, 6);
    for (const outcome of outcomes) if (outcome.status === "rejected") assert.match(String(outcome.reason), /insufficient funds: 10/);
    assert.deepEqual(await foldLog(log, "accounts/a-1", { balance: 0 }, apply), { state: { balance: 10 }, lastSeq: 7n });
  });

  test("gives up after maxAttempts with AppendConflictError; nothing to decide appends nothing; several entries go as one batch", async () => {
    const logId = "loop";
    await harness.admin.append({ logId, entry: entry("l.x", {}) });
    let decided = 0;
    const stale = () => {
      decided++;
      return Promise.resolve({ entries: [entry("l.x", {})], condition: { expectedLastSeq: 0n } });
    };
    const error = await appendWithCondition(harness.admin, logId, stale, { maxAttempts: 3, baseDelayMs: 1 }).then(
      () => assert.fail("a stale condition went through"),
      (caught: unknown) => caught,
    );
    assert.ok(error instanceof AppendConflictError);
    assert.equal(error.attempts, 3);
    assert.equal(decided, 3);
    assert.equal(metadataOf(error.cause).head, "1");
    assert.deepEqual(await appendWithCondition(harness.admin, logId, () => Promise.resolve(null)), { results: [], attempts: 1 });
    const batch = await appendWithCondition(harness.admin, logId, () =>
      Promise.resolve({ entries: [entry("l.y", {}), entry("l.y", {})], condition: { afterSeq: 1n, kinds: ["l.y"] } }),
    );
    assert.deepEqual(batch.results.map((r) => r.seq), [2n, 3n]);
    // Other errors end the loop at once.
    await rejects(appendWithCondition(harness.admin, logId, () => Promise.resolve({ entries: [entry("l..x", {})], condition: {} })), Code.InvalidArgument);
  });
});

describe("the query form (dynamic consistency boundary)", () => {
  test("disjoint patterns never conflict, overlapping ones do; an entry of another kind after P does not fail", async () => {
    const logId = "dcb";
    await harness.admin.appendBatch({ logId, entries: [entry("course.c1.opened", {}), entry("course.c2.opened", {})] });
    const position = await headOf(logId);
    // Two writers decided from the same read, each on its own course.
    const c1 = await harness.admin.append({ logId, entry: entry("course.c1.subscribed", {}), condition: { afterSeq: position, kinds: ["course.c1.>"] } });
    const c2 = await harness.admin.append({ logId, entry: entry("course.c2.subscribed", {}), condition: { afterSeq: position, kinds: ["course.c2.>"] } });
    assert.deepEqual([c1.result!.seq, c2.result!.seq], [3n, 4n]);
    // A third decided from the same read over every course's subscriptions: c1's came first.
    const metadata = await conflict(
      harness.admin.append({ logId, entry: entry("course.c3.subscribed", {}), condition: { afterSeq: position, kinds: ["course.*.subscribed"] } }),
    );
    assert.deepEqual(metadata, { log: logId, head: "4", conflicting_seq: "3" });
    // An entry of another kind after P does not count.
    const moved = await headOf(logId);
    await harness.admin.append({ logId, entry: entry("student.registered", {}) });
    await harness.admin.append({ logId, entry: entry("course.c3.subscribed", {}), condition: { afterSeq: moved, kinds: ["course.>"] } });
    // Nor does one of a kind that only starts like a pattern's literal tokens.
    const moved2 = await headOf(logId);
    await harness.admin.append({ logId, entry: entry("courses.c1.subscribed", {}) });
    await harness.admin.append({ logId, entry: entry("course.c9.opened", {}), condition: { afterSeq: moved2, kinds: ["course.>", "course"] } });
  });

  test("concurrent writers from one read: disjoint boundaries all succeed, overlapping ones let exactly one through", async () => {
    const logId = "dcb-concurrent";
    await harness.admin.append({ logId, entry: entry("shop.opened", {}) });
    const position = await headOf(logId);
    const disjoint = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        harness.admin.append({ logId, entry: entry(`shop.s${i}.sold`, {}), condition: { afterSeq: position, kinds: [`shop.s${i}.>`] } }),
      ),
    );
    assert.equal(new Set(disjoint.map((r) => r.result!.seq)).size, 16);
    const position2 = await headOf(logId);
    const overlapping = await Promise.allSettled(
      Array.from({ length: 16 }, () => harness.admin.append({ logId, entry: entry("shop.s0.sold", {}), condition: { afterSeq: position2, kinds: ["shop.s0.*"] } })),
    );
    const winners = overlapping.flatMap((o) => (o.status === "fulfilled" ? [o.value.result!.seq] : []));
    assert.deepEqual(winners, [position2 + 1n], "exactly one of the overlapping writers wins");
    for (const outcome of overlapping) {
      if (outcome.status === "fulfilled") continue;
      const error = ConnectError.from(outcome.reason);
      assert.equal(errorReason(error), "APPEND_CONDITION_FAILED");
      assert.equal(metadataOf(error).conflicting_seq, String(position2 + 1n));
    }
  });

  test("source_ids narrow the query; without after_seq it covers the whole log (a uniqueness rule)", async () => {
    const logId = "dcb-sources";
    const register = (email: string) =>
      harness.admin.append({ logId, entry: entry("user.registered", { email }, { sourceId: email }), condition: { kinds: ["user.registered"], sourceIds: [email] } });
    assert.equal((await register("alice@example.com")).result!.seq, 1n);
    assert.equal((await register("bob@example.com")).result!.seq, 2n);
    assert.deepEqual(await conflict(register("alice@example.com")), { log: logId, head: "2", conflicting_seq: "1" });
    // Any kind of one source, after a position.
    const position = await headOf(logId);
    await harness.admin.append({ logId, entry: entry("user.renamed", {}, { sourceId: "bob@example.com" }) });
    await harness.admin.append({ logId, entry: entry("user.renamed", {}, { sourceId: "alice@example.com" }), condition: { afterSeq: position, sourceIds: ["alice@example.com"] } });
    assert.equal((await conflict(harness.admin.append({ logId, entry: entry("x.y", {}), condition: { afterSeq: position, sourceIds: ["bob@example.com", ""] } }))).conflicting_seq, "3");
    // after_seq alone: no entry at all after it.
    assert.equal((await conflict(harness.admin.append({ logId, entry: entry("x.y", {}), condition: { afterSeq: position } }))).conflicting_seq, String(position + 1n));
    // Both forms at once: both must hold.
    const head = await headOf(logId);
    assert.deepEqual(
      await conflict(harness.admin.append({ logId, entry: entry("x.y", {}), condition: { expectedLastSeq: head, afterSeq: 0n, kinds: ["user.renamed"] } })),
      { log: logId, head: String(head), conflicting_seq: "3" },
    );
    await harness.admin.append({ logId, entry: entry("x.y", {}), condition: { expectedLastSeq: head, afterSeq: head - 1n, kinds: ["user.registered"] } });
  });

  test("far behind the head (every index path), conflicts are found without reading the log", async () => {
    const logId = "dcb-far";
    const kinds = ["order.placed", "order.paid", "order.shipped", "stock.moved", "stock.counted", "audit.login"];
    const entries = Array.from({ length: 900 }, (_, i) => entry(kinds[i % kinds.length]!, { i }, { sourceId: `src-${i % 7}` }));
    await harness.admin.appendBatch({ logId, entries });
    // Entry seq s has kind kinds[(s - 1) % 6] and source src-((s - 1) % 7); 800 entries after P: the index paths.
    assert.deepEqual(
      await conflict(harness.admin.append({ logId, entry: entry("x.y", {}), condition: { afterSeq: 100n, kinds: ["order.shipped"] } })),
      { log: logId, head: "900", conflicting_seq: "105" },
    );
    assert.equal((await conflict(harness.admin.append({ logId, entry: entry("x.y", {}), condition: { afterSeq: 100n, kinds: ["*.counted"] } }))).conflicting_seq, "101");
    assert.equal((await conflict(harness.admin.append({ logId, entry: entry("x.y", {}), condition: { afterSeq: 500n, kinds: ["stock.>"], sourceIds: ["src-3"] } }))).conflicting_seq, "508");
    await harness.admin.append({ logId, entry: entry("x.y", {}), condition: { afterSeq: 10n, kinds: ["order.refunded", "billing.>"] } });
  });
});

describe("replays, compaction, mirrors and the chain", () => {
  test("an idempotent replay after the head moved still answers duplicate, whatever the condition says now", async () => {
    const logId = "cond-replay";
    const request = { logId, entry: entry("pay.made", { amount: 5 }, { requestId: "pay-1" }), condition: { expectedLastSeq: 0n, afterSeq: 0n, kinds: ["pay.>"] } };
    const original = await harness.admin.append(request);
    await harness.admin.append({ logId, entry: entry("pay.made", { amount: 7 }) });
    const replay = await harness.admin.append(request);
    assert.deepEqual({ ...replay.result!, duplicate: false }, { ...original.result!, duplicate: false });
    assert.equal(replay.result!.duplicate, true);
    // The same request_id with other content is still a conflict of ids, not of conditions.
    await rejects(harness.admin.append({ ...request, entry: entry("pay.made", { amount: 6 }, { requestId: "pay-1" }) }), Code.AlreadyExists, /request_id "pay-1"/);
    // A batch replay too; a batch that adds a new entry to replayed ones is checked.
    const batch = { logId, entries: [entry("pay.made", {}, { requestId: "b-1" }), entry("pay.made", {}, { requestId: "b-2" })], condition: { expectedLastSeq: 2n } };
    assert.deepEqual((await harness.admin.appendBatch(batch)).results.map((r) => r.seq), [3n, 4n]);
    assert.deepEqual((await harness.admin.appendBatch(batch)).results.map((r) => [r.seq, r.duplicate]), [[3n, true], [4n, true]]);
    await conflict(harness.admin.appendBatch({ ...batch, entries: [...batch.entries, entry("pay.made", {}, { requestId: "b-3" })] }));
    assert.equal(await headOf(logId), 4n);
  });

  test("a query that reaches into compacted entries is refused with OUT_OF_RANGE (SEQ_COMPACTED)", async () => {
    const logId = "cond-compacted";
    await harness.admin.appendBatch({ logId, entries: Array.from({ length: 10 }, (_, i) => entry("c.x", { i })) });
    await harness.admin.compact({ logId, retain: { case: "keepLast", value: 4n } });
    const error = await rejects(harness.admin.append({ logId, entry: entry("c.x", {}), condition: { afterSeq: 2n, kinds: ["c.x"] } }), Code.OutOfRange);
    assert.equal(errorReason(error), "SEQ_COMPACTED");
    assert.equal(metadataOf(error).first_available_seq, "7");
    assert.equal((await conflict(harness.admin.append({ logId, entry: entry("c.x", {}), condition: { afterSeq: 6n, kinds: ["c.x"] } }))).conflicting_seq, "7");
    assert.equal((await harness.admin.append({ logId, entry: entry("c.x", {}), condition: { afterSeq: 10n, kinds: ["c.x"] } })).result!.seq, 11n);
  });

  test("a mirror refuses a conditional append like any append", async () => {
    const error = await rejects(
      harness.admin.append({ logId: "mirror/peer.example/orders", entry: entry("a.b", {}), condition: { expectedLastSeq: 0n } }),
      Code.FailedPrecondition,
    );
    assert.equal(errorReason(error), "LOG_IS_MIRROR");
  });

  test("the condition is not part of the entry: the chain verifies and the entry reads back without it", async () => {
    const logId = "cond-chain";
    await harness.admin.append({ logId, entry: entry("k.a", { x: 1 }), condition: { expectedLastSeq: 0n } });
    await harness.admin.append({ logId, entry: entry("k.a", { x: 1 }), condition: { afterSeq: 1n, kinds: ["k.>"], sourceIds: ["s"] } });
    const verify = await harness.admin.verify({ logId });
    assert.deepEqual([verify.valid, verify.checkedCount], [true, 2n]);
    const read = await harness.admin.read({ logId });
    assert.deepEqual(read.entries.map((e) => [e.kind, e.metadata]), [["k.a", {}], ["k.a", {}]]);
  });
});

describe("bad conditions", () => {
  const bad: [string, Record<string, unknown>, RegExp][] = [
    ["negative expected_last_seq", { expectedLastSeq: -1n }, /^condition\.expected_last_seq: must not be negative/],
    ["negative after_seq", { afterSeq: -5n }, /^condition\.after_seq: must not be negative/],
    ["an empty pattern", { kinds: ["a.b", ""] }, /^condition\.kinds\[1\]: "" is empty/],
    ["> before the last token", { kinds: ["a.>.b"] }, /^condition\.kinds\[0\]: "a\.>\.b" may use > only as the last token/],
    ["a partial wildcard", { kinds: ["a.b*"] }, /^condition\.kinds\[0\]: "a\.b\*" token "b\*"/],
    [`${MAX_CONDITION_KINDS + 1} patterns`, { kinds: Array.from({ length: MAX_CONDITION_KINDS + 1 }, (_, i) => `k.k${i}`) }, /^condition\.kinds: holds 33 patterns; the limit is 32/],
    [`${MAX_CONDITION_SOURCE_IDS + 1} source ids`, { sourceIds: Array.from({ length: MAX_CONDITION_SOURCE_IDS + 1 }, (_, i) => `s${i}`) }, /^condition\.source_ids: holds 101 source ids; the limit is 100/],
    ["a too long source id", { sourceIds: ["x".repeat(256)] }, /^condition\.source_ids\[0\]: is longer than 255/],
    ["a NUL in a source id", { sourceIds: ["a\u0000b"] }, /^condition\.source_ids\[0\]: .*NUL/],
  ];
  for (const [what, condition, message] of bad) {
    test(`${what}: INVALID_ARGUMENT naming the field, nothing written`, async () => {
      const error = await rejects(harness.admin.append({ logId: "cond-bad", entry: entry("a.b", {}), condition }), Code.InvalidArgument, message);
      assert.match(metadataOf(error).field!, /^condition\./);
      await rejects(harness.admin.getLog({ logId: "cond-bad" }), Code.NotFound);
    });
  }

  test("the limits are named in the error metadata, and the fields' paths follow the request (AppendBatch, AppendStream)", async () => {
    const tooMany = { kinds: Array.from({ length: MAX_CONDITION_KINDS + 1 }, (_, i) => `k.k${i}`) };
    const error = await rejects(harness.admin.appendBatch({ logId: "cond-bad", entries: [entry("a.b", {})], condition: tooMany }), Code.InvalidArgument);
    assert.deepEqual(metadataOf(error), { field: "condition.kinds", limit: String(MAX_CONDITION_KINDS) });
    async function* frames() {
      yield { frame: { case: "options" as const, value: { logId: "cond-bad" } } };
      yield { frame: { case: "batch" as const, value: { entries: [entry("a.b", {})], condition: { kinds: ["a..b"] } } } };
    }
    const consume = async () => {
      for await (const response of harness.admin.appendStream(frames())) void response;
    };
    await rejects(consume(), Code.InvalidArgument, /^frame\[1\]\.batch\.condition\.kinds\[0\]: "a\.\.b" has an empty token/);
    await rejects(harness.admin.getLog({ logId: "cond-bad" }), Code.NotFound);
  });

  test("exactly at the limits is accepted", async () => {
    const condition = {
      afterSeq: 0n,
      kinds: Array.from({ length: MAX_CONDITION_KINDS }, (_, i) => (i % 2 ? `k.k${i}.>` : `k.k${i}`)),
      sourceIds: Array.from({ length: MAX_CONDITION_SOURCE_IDS }, (_, i) => `s${i}`),
    };
    await harness.admin.append({ logId: "cond-limits", entry: entry("a.b", {}) });
    assert.equal((await harness.admin.append({ logId: "cond-limits", entry: entry("a.b", {}), condition })).result!.seq, 2n);
  });
});

describe("the query's index paths agree with a brute-force answer", () => {
  test("random queries on a 2,000-entry log, by scan, by source and by kind", async () => {
    const logId = "dcb-oracle";
    const kinds = ["a.b.c", "a.b.d", "a.e", "a.e.f.g", "b", "b.c", "b.c.d", "c-d.e_f", "a.bb.c", "ab.c", "a"];
    const sources = ["", "s1", "s2", "s3", "s4"];
    // A fixed pseudo-random sequence, so a failure reproduces.
    let state = 18;
    const random = (n: number) => {
      // xorshift32
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return (state >>> 0) % n;
    };
    for (let batch = 0; batch < 2; batch++) {
      const entries = Array.from({ length: 1000 }, () => entry(kinds[random(kinds.length)]!, {}, { sourceId: sources[random(sources.length)]! }));
      await harness.admin.appendBatch({ logId, entries });
    }
    const stored: logV1.Entry[] = [];
    for (let fromSeq = 1n; fromSeq <= 2000n; fromSeq += 1000n) stored.push(...(await harness.admin.read({ logId, fromSeq, pageSize: 1000 })).entries);
    assert.equal(stored.length, 2000);
    const patterns = ["a.>", "a.*", "a.b.*", "*.c", "*.*.d", ">", "b", "b.>", "a.*.c", "*", "a.e.>", "c-d.*", "x.>", "a.b.c", "ab.>", "*.e_f"];
    for (let i = 0; i < 150; i++) {
      const chosenKinds = Array.from({ length: random(3) }, () => patterns[random(patterns.length)]!);
      const chosenSources = Array.from({ length: random(3) }, () => sources[random(sources.length)]!);
      const afterSeq = BigInt(i % 5 === 0 ? 1990 + random(10) : random(2000));
      const filter = new KindFilter(chosenKinds);
      const expected =
        stored.find((e) => e.seq > afterSeq && filter.matches(e.kind) && (chosenSources.length === 0 || chosenSources.includes(e.sourceId)))?.seq ?? null;
      const query = conditionQuerySql({ afterSeq, kinds: chosenKinds, sourceIds: chosenSources, filter });
      const what = `after ${afterSeq}, kinds ${JSON.stringify(chosenKinds)}, sources ${JSON.stringify(chosenSources)}`;
      // Scan limit 0: the per-kind and per-source probes; 10^6: the walk in seq order; the service's own limit.
      for (const scanLimit of [0n, 1_000_000n, CONDITION_SCAN_LIMIT]) {
        const [found] = await firstConditionConflicts(harness.db, logId, 2000n, scanLimit, [query]);
        assert.equal(found, expected, `${what}, scan limit ${scanLimit}`);
      }
    }
  });
});

/** An AppendDecision as the fields of an AppendRequest (one entry). */
function firstOf(decision: { entries: ReturnType<typeof entry>[]; condition: { expectedLastSeq: bigint } }) {
  return { entry: decision.entries[0]!, condition: decision.condition };
}
