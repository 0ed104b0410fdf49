// Conditional and plain appends that share one group commit resolve as if
// they had arrived one by one (issue 18). Its own file: it reads the group
// commit histogram of /metrics, which every log server in a process shares.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { logV1, rpcDetails } from "@annals/proto";
import { KindFilter } from "@annals/topics";
import { AppendBatcher } from "./append-batcher.js";
import { prepareCondition } from "./append-condition.js";
import type { AppendRequest } from "./append-plan.js";
import { DEFAULT_LOG_LIMITS, prepareEntry } from "./entry-input.js";
import type { LogMetrics } from "./log-metrics.js";
import { entry, startLogHarness, type LogHarness } from "./log-harness.js";

let harness: LogHarness;

before(async () => {
  // The first append to an idle log waits 1 s for company: requests sent together share its transaction.
  harness = await startLogHarness("log_condition_groups", { groupCommit: { maxEntries: 1000, maxWaitMs: 1000 } });
});

after(async () => {
  await harness?.close();
});

/** Transactions that wrote entries, and the entries they wrote, from the group commit histogram. */
async function groupCommits(): Promise<{ groups: number; entries: number }> {
  const text = await (await fetch(`http://127.0.0.1:${harness.server.httpPort}/metrics`)).text();
  const read = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)`, "m").exec(text)?.[1] ?? 0);
  return { groups: read("annals_log_group_commit_entries_count"), entries: read("annals_log_group_commit_entries_sum") };
}

type Condition = { expectedLastSeq?: bigint; afterSeq?: bigint; kinds?: string[]; sourceIds?: string[] };

/** Whether `condition` holds on a log made of `entries` (seq 1 up). */
function holds(condition: Condition, entries: readonly logV1.Entry[]): { ok: boolean; conflictingSeq?: bigint } {
  const head = BigInt(entries.length);
  if (condition.expectedLastSeq !== undefined && condition.expectedLastSeq !== head) return { ok: false };
  const query = condition.afterSeq !== undefined || condition.kinds?.length || condition.sourceIds?.length;
  if (!query) return { ok: true };
  const filter = new KindFilter(condition.kinds ?? []);
  const sources = condition.sourceIds ?? [];
  const hit = entries.find((e) => e.seq > (condition.afterSeq ?? 0n) && filter.matches(e.kind) && (sources.length === 0 || sources.includes(e.sourceId)));
  return hit ? { ok: false, conflictingSeq: hit.seq } : { ok: true };
}

describe("a group of mixed appends", () => {
  test("over gRPC, in one transaction: every outcome is the one a serial order gives", async () => {
    const logId = "mixed";
    const requests: { kind: string; condition?: Condition }[] = [
      ...Array.from({ length: 8 }, () => ({ kind: "mix.plain" })),
      ...Array.from({ length: 8 }, (_, i) => ({ kind: "mix.expected", condition: { expectedLastSeq: BigInt(i) } })),
      ...Array.from({ length: 4 }, () => ({ kind: "mix.unique", condition: { afterSeq: 0n, kinds: ["mix.unique"] } })),
      ...Array.from({ length: 4 }, (_, i) => ({ kind: `mix.free.f${i}`, condition: { afterSeq: 0n, kinds: ["mix.none.>"] } })),
      ...Array.from({ length: 4 }, () => ({ kind: "mix.after", condition: { afterSeq: 3n, kinds: ["mix.*"] } })),
    ];
    const before = await groupCommits();
    const outcomes = await Promise.allSettled(requests.map((r) => harness.admin.append({ logId, entry: entry(r.kind, {}), condition: r.condition })));
    const after = await groupCommits();
    const stored = (await harness.admin.read({ logId, pageSize: 1000 })).entries;
    assert.equal(after.groups - before.groups, 1, "every request shared one transaction");
    assert.equal(after.entries - before.entries, stored.length);

    let succeeded = 0;
    outcomes.forEach((outcome, index) => {
      const { kind, condition = {} } = requests[index]!;
      if (outcome.status === "fulfilled") {
        succeeded++;
        const seq = outcome.value.result!.seq;
        assert.equal(stored[Number(seq) - 1]!.kind, kind);
        // It was checked against the log as the requests sequenced before it left it.
        assert.deepEqual(holds(condition, stored.slice(0, Number(seq) - 1)), { ok: true }, `request ${index} (${kind}) at seq ${seq}`);
        return;
      }
      const error = ConnectError.from(outcome.reason);
      assert.equal(error.code, Code.FailedPrecondition, error.message);
      const metadata = error.findDetails(rpcDetails.ErrorInfoSchema)[0]!.metadata;
      const head = Number(metadata.head);
      const verdict = holds(condition, stored.slice(0, head));
      assert.equal(verdict.ok, false, `request ${index} (${kind}) was refused at head ${head}, where its condition holds`);
      assert.equal(metadata.conflicting_seq, verdict.conflictingSeq === undefined ? undefined : String(verdict.conflictingSeq));
    });
    assert.equal(succeeded, stored.length);
    const kinds = stored.map((e) => e.kind);
    assert.equal(kinds.filter((k) => k === "mix.plain").length, 8, "plain appends all go through");
    assert.equal(kinds.filter((k) => k === "mix.unique").length, 1, "one of the four unique ones");
    assert.equal(kinds.filter((k) => k.startsWith("mix.free.")).length, 4, "a query nothing matches never fails");
  });

  test("queued in a known order, one transaction gives exactly the outcomes of appending one by one", async () => {
    const sizes: number[] = [];
    const metrics = { groupCommitted: (entries: number) => sizes.push(entries), appendFinished: () => {} } as unknown as LogMetrics;
    const prepared = (kind: string, extra: { requestId?: string; sourceId?: string; payload?: Record<string, unknown> } = {}) =>
      prepareEntry(create(logV1.EntryInputSchema, entry(kind, extra.payload ?? {}, extra)), DEFAULT_LOG_LIMITS, "entry");
    const condition = (init: Condition) => prepareCondition(create(logV1.AppendConditionSchema, init), "condition");
    const requests: AppendRequest[] = [
      { entries: [prepared("acct.opened", { sourceId: "a1" })], condition: condition({ expectedLastSeq: 0n }) },
      { entries: [prepared("acct.opened", { sourceId: "a1" })], condition: condition({ expectedLastSeq: 0n }) },
      { entries: [prepared("acct.deposited", { sourceId: "a1", requestId: "dep-1" })], condition: condition({ expectedLastSeq: 1n }) },
      { entries: [prepared("acct.deposited", { sourceId: "a2" })] },
      { entries: [prepared("acct.deposited", { sourceId: "a1", requestId: "dep-1" })], condition: condition({ expectedLastSeq: 1n }) },
      { entries: [prepared("acct.withdrawn", { sourceId: "a1" })], condition: condition({ afterSeq: 1n, sourceIds: ["a1"] }) },
      { entries: [prepared("acct.withdrawn", { sourceId: "a2" })], condition: condition({ afterSeq: 2n, kinds: ["acct.withdrawn"], sourceIds: ["a2"] }) },
      { entries: [prepared("acct.x"), prepared("acct.y")], condition: condition({ afterSeq: 3n, kinds: ["acct.*"], sourceIds: ["a2"] }) },
      { entries: [prepared("acct.x"), prepared("acct.y")], condition: condition({ afterSeq: 4n, kinds: ["acct.*"], sourceIds: ["a2"] }) },
      { entries: [prepared("acct.closed", { sourceId: "a1" })], condition: condition({ expectedLastSeq: 7n, afterSeq: 0n, kinds: ["acct.closed"] }) },
      { entries: [prepared("acct.closed", { sourceId: "a1" })], condition: condition({ afterSeq: 0n, kinds: ["acct.closed"] }) },
      { entries: [prepared("acct.deposited", { sourceId: "a1", requestId: "dep-1", payload: { other: true } })] },
      { entries: [prepared("acct.z")] },
    ];
    type Outcome = { seqs: string } | { code: string; reason?: string; metadata: Record<string, string> };
    const outcomeOf = async (logId: string, pending: Promise<{ seq: bigint; duplicate: boolean }[]>): Promise<Outcome> => {
      try {
        return { seqs: (await pending).map((r) => `${r.seq}${r.duplicate ? " (duplicate)" : ""}`).join(",") };
      } catch (caught) {
        const error = ConnectError.from(caught);
        const info = error.findDetails(rpcDetails.ErrorInfoSchema)[0];
        const metadata = { ...info?.metadata };
        if (metadata.log === logId) metadata.log = "LOG";
        return { code: Code[error.code], reason: info?.reason, metadata };
      }
    };

    const batcher = new AppendBatcher(harness.db, { maxEntries: 1000, maxWaitMs: 50 }, metrics, () => {});
    const grouped = await Promise.all(requests.map((request) => outcomeOf("grouped", batcher.append("grouped", request))));
    assert.deepEqual(sizes, [8], "one transaction wrote the group");
    const serial: Outcome[] = [];
    for (const request of requests) serial.push(await outcomeOf("serial", batcher.append("serial", request)));
    assert.equal(sizes.length, 1 + serial.filter((outcome) => "seqs" in outcome && !outcome.seqs.includes("duplicate")).length);
    assert.deepEqual(grouped, serial);
    // The serial outcomes themselves, so that both cannot be wrong the same way.
    assert.deepEqual(
      serial.map((outcome) => ("seqs" in outcome ? outcome.seqs : `${outcome.reason} ${JSON.stringify(outcome.metadata)}`)),
      [
        "1",
        'APPEND_CONDITION_FAILED {"log":"LOG","head":"1"}',
        "2",
        "3",
        "2 (duplicate)",
        'APPEND_CONDITION_FAILED {"log":"LOG","head":"3","conflicting_seq":"2"}',
        "4",
        'APPEND_CONDITION_FAILED {"log":"LOG","head":"4","conflicting_seq":"4"}',
        "5,6",
        'APPEND_CONDITION_FAILED {"log":"LOG","head":"6"}',
        "7",
        'REQUEST_ID_CONFLICT {"request_id":"dep-1","index":"0"}',
        "8",
      ],
    );
    await batcher.settled();
  });
});
