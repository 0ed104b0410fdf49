import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { logV1 } from "@annals/proto";
import { GENESIS_CHECKSUM, entryChecksum } from "@annals/chain";
import { planAppends, type AppendRequest, type AppendedEntry } from "./append-plan.js";
import { DEFAULT_LOG_LIMITS, prepareEntry } from "./entry-input.js";
import type { EntryRow, HeadRow } from "./store.js";

function head(lastSeq = 0n, lastChecksum = GENESIS_CHECKSUM, lastWallTimeUs = 0n): HeadRow {
  return {
    log_id: "plan",
    origin: "local",
    origin_node: null,
    chain_log_id: null,
    created_at: new Date(),
    last_seq: lastSeq,
    last_checksum: lastChecksum,
    entry_count: lastSeq,
    checkpoint_seq: 0n,
    checkpoint_checksum: GENESIS_CHECKSUM,
    last_wall_time_us: lastWallTimeUs,
    redacted_count: 0n,
    tree_edge: null,
  };
}

function request(...entries: { kind?: string; payload?: Record<string, unknown>; reqId?: string; uuid?: string }[]): AppendRequest {
  return {
    entries: entries.map((e, i) =>
      prepareEntry(
        create(logV1.EntryInputSchema, { kind: e.kind ?? "plan.e", body: { case: "payload", value: (e.payload ?? {}) as never }, requestId: e.reqId ?? "", uuid: e.uuid ?? "" }),
        DEFAULT_LOG_LIMITS,
        `entry[${i}]`,
      ),
    ),
  };
}

function results(outcome: AppendedEntry[] | ConnectError): AppendedEntry[] {
  assert.ok(!(outcome instanceof ConnectError), `refused: ${outcome instanceof ConnectError ? outcome.message : ""}`);
  return outcome;
}

test("requests are sequenced after the head, chained, and share one wall time", () => {
  const plan = planAppends("plan", head(4n, "a".repeat(64), 10n), [request({}, {}), request({})], [], 1_000n);
  assert.deepEqual(
    plan.rows.map((row) => row.seq),
    [5n, 6n, 7n],
  );
  assert.equal(plan.rows[0]!.prev_checksum, "a".repeat(64));
  for (let i = 1; i < plan.rows.length; i++) assert.equal(plan.rows[i]!.prev_checksum, plan.rows[i - 1]!.checksum);
  const first = plan.rows[0]!;
  const recomputed = entryChecksum({
    logId: "plan",
    seq: first.seq,
    uuid: first.uuid,
    kind: first.kind,
    sourceId: first.source_id,
    simTime: first.sim_time,
    wallTimeUs: first.wall_time_us,
    reqId: "",
    contentType: null,
    metadata: first.metadata,
    payloadDigest: first.payload_digest,
    prevChecksum: first.prev_checksum,
  });
  assert.equal(first.checksum, recomputed);
  assert.deepEqual(plan.head, { lastSeq: 7n, lastChecksum: plan.rows[2]!.checksum, lastWallTimeUs: 1_000n });
  assert.deepEqual(
    results(plan.outcomes[1]!).map((r) => r.seq),
    [7n],
  );
});

test("wall time never goes below the head's, even when this clock is behind", () => {
  const plan = planAppends("plan", head(1n, "b".repeat(64), 5_000n), [request({})], [], 1_000n);
  assert.equal(plan.rows[0]!.wall_time_us, 5_000n);
});

test("a retried req_id resolves to the stored entry; other content is ALREADY_EXISTS and takes no seq", () => {
  const first = planAppends("plan", head(), [request({ reqId: "r1", payload: { a: 1 } })], [], 1n);
  const stored = first.rows[0]!;
  const row: EntryRow = { ...stored, payload: { a: 1 }, redacted_by_seq: null, redaction_reason: null };
  const retry = planAppends(
    "plan",
    head(1n, stored.checksum, 1n),
    [request({ reqId: "r1", payload: { a: 1 } }), request({ reqId: "r1", payload: { a: 2 } }), request({ payload: { b: 1 } })],
    [row],
    2n,
  );
  assert.deepEqual(results(retry.outcomes[0]!), [{ seq: 1n, checksum: stored.checksum, wallTimeUs: 1n, uuid: stored.uuid, duplicate: true }]);
  const conflict = retry.outcomes[1];
  assert.ok(conflict instanceof ConnectError && conflict.code === Code.AlreadyExists, "different content under one req_id");
  assert.deepEqual(
    retry.rows.map((r) => r.seq),
    [2n],
  );
});

test("the same req_id twice in one group is written once; a request that conflicts with itself is refused whole", () => {
  const plan = planAppends("plan", head(), [request({ reqId: "x" }), request({ reqId: "x" })], [], 1n);
  assert.equal(plan.rows.length, 1);
  assert.equal(results(plan.outcomes[1]!)[0]!.duplicate, true);
  assert.equal(results(plan.outcomes[1]!)[0]!.seq, 1n);

  const self = planAppends("plan", head(), [request({ reqId: "y", payload: { v: 1 } }, { payload: {} }, { reqId: "y", payload: { v: 2 } })], [], 1n);
  assert.ok(self.outcomes[0] instanceof ConnectError);
  assert.equal(self.rows.length, 0, "nothing of a refused request is written");
});

test("a uuid already stored, or given twice, is refused", () => {
  const uuid = "01890a5d-ac96-774b-bcce-b302099a8057";
  const taken = planAppends("plan", head(), [request({ uuid })], [], 1n);
  const row: EntryRow = { ...taken.rows[0]!, payload: {}, redacted_by_seq: null, redaction_reason: null };
  const again = planAppends("plan", head(1n, row.checksum, 1n), [request({ uuid, payload: { other: true } })], [row], 2n);
  assert.match((again.outcomes[0] as ConnectError).rawMessage, /already taken by seq 1/);
  const twice = planAppends("plan", head(), [request({ uuid }, { uuid })], [], 1n);
  assert.match((twice.outcomes[0] as ConnectError).rawMessage, /by another entry of this request/);
});
