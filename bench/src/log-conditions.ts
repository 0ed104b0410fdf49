// Conditional appends (issue 18): what the condition costs an Append. The
// standalone log service process on a fresh PostgreSQL database, grpc-js
// clients in this process; every figure against plain Append measured in the
// same run, the cases alternating so that the machine's noise hits both.
import { loadavg } from "node:os";
import * as grpc from "@grpc/grpc-js";
import pg from "pg";
import { logV1 } from "@annals/proto";
import { grpcServiceDefinition } from "@annals/runtime";
import { benchToken } from "./bench-token.js";
import { runLoad, type LoadResult } from "./load.js";
import { formatTable } from "./table.js";
import { startBenchLogService } from "./log-service.js";

export interface ConditionBenchOptions {
  /** Callers of the throughput case, each on its own log. */
  callers: number;
  /** Rounds of the throughput and latency cases (each round runs every case once, in turn). */
  rounds: number;
  durationMs: number;
  warmupMs: number;
  /** Entries of the log the latency case appends to. */
  bigLogEntries: number;
  /** Distinct kinds and sources among them. */
  kinds: number;
  sources: number;
}

const LogClient = grpc.makeGenericClientConstructor(grpcServiceDefinition(logV1.LogService), "LogService");
type Unary = (request: object, metadata: grpc.Metadata, callback: (error: grpc.ServiceError | null, response: unknown) => void) => void;
type LogStub = Record<"append" | "appendBatch" | "getLog", Unary> & { close(): void };

const auth = new grpc.Metadata();

function unary<T>(client: LogStub, method: "append" | "appendBatch" | "getLog", request: object): Promise<T> {
  return new Promise((resolve, reject) => client[method].call(client, request, auth, (error, response) => (error ? reject(error) : resolve(response as T))));
}

function entryInput(n: number, kind = "bench.order.placed", sourceId = "bench") {
  const payload = { order_id: `ord-${n}`, customer: `cust-${n % 9973}`, amount: (n % 10000) / 100, currency: "EUR", items: [{ sku: `sku-${n % 97}`, qty: 1 + (n % 5) }], note: "x".repeat(60) };
  return { kind, body: { case: "payload" as const, value: payload }, sourceId };
}

/** How an Append is conditioned, given the last seq its caller saw acknowledged on its log. */
type Conditioning = { label: string; condition: (lastSeq: bigint) => object | undefined };

export async function logConditions(options: ConditionBenchOptions): Promise<void> {
  const { service, database } = await startBenchLogService("conditions");
  auth.set("authorization", `Bearer ${await benchToken(["admin"])}`);
  const log = new LogClient(`127.0.0.1:${service.grpcPort}`, grpc.credentials.createInsecure()) as unknown as LogStub;
  const raw = new pg.Client({ connectionString: database.url });
  await raw.connect();
  console.log(
    `log-conditions: the log service process (services/log/dist/main.js, JWT auth) on PostgreSQL database ${database.name} at ${database.host},\n` +
      "grpc-js clients in the bench process over one HTTP/2 connection; payloads of ~200 bytes of JSON.\n" +
      `Load average at the start: ${load()} (other work on the machine shows here; every ratio is within one run).\n`,
  );
  try {
    await throughputCase(log, options);
    await latencyCase(log, raw, options);
  } finally {
    log.close();
    await raw.end();
    await service.stop();
    await database.drop();
  }
}

/** Closed loop, one log per caller: each caller appends with a condition its own last ack makes true. */
async function throughputCase(log: LogStub, options: ConditionBenchOptions): Promise<void> {
  console.log(
    `Conditional Append ÷ plain Append: ${options.callers} callers, each on a log of its own, closed loop, ${options.durationMs} ms after ${options.warmupMs} ms\n` +
      `warm-up per cell, ${options.rounds} rounds of the cases in turn (fresh logs per cell). A caller conditions each append on what its\n` +
      "previous ack said, so no condition fails: the figure is the check's cost. ratio = calls/s ÷ plain Append's in the same round.",
  );
  const cases: Conditioning[] = [
    { label: "plain Append (baseline)", condition: () => undefined },
    { label: "expected_last_seq = last ack", condition: (lastSeq) => ({ expectedLastSeq: lastSeq }) },
    { label: "query: after_seq = last ack, kinds bench.x.>", condition: (lastSeq) => ({ afterSeq: lastSeq, kinds: ["bench.x.>"] }) },
    // Ten of its own entries after after_seq: the check runs its statement and walks them.
    { label: "query: after_seq = last ack − 10, kinds bench.x.>", condition: (lastSeq) => ({ afterSeq: lastSeq > 10n ? lastSeq - 10n : 0n, kinds: ["bench.x.>"] }) },
  ];
  const rows: string[][] = [];
  for (let round = 1; round <= options.rounds; round++) {
    let baseline: LoadResult | undefined;
    for (const [index, conditioning] of cases.entries()) {
      const lastSeqs = Array.from({ length: options.callers }, () => 0n);
      let n = 0;
      const result = await runLoad(
        async (caller) => {
          const logId = `tp-${round}-${index}-${caller}`;
          const response = await unary<logV1.AppendResponse>(log, "append", { logId, entry: entryInput(n++), condition: conditioning.condition(lastSeqs[caller]!) });
          lastSeqs[caller] = response.result!.seq;
        },
        options.callers,
        options.durationMs,
        options.warmupMs,
      );
      baseline ??= result;
      rows.push([String(round), conditioning.label, result.callsPerSecond.toFixed(0), result.p50Ms.toFixed(2), result.p99Ms.toFixed(2), String(result.errors), (result.callsPerSecond / baseline.callsPerSecond).toFixed(2)]);
    }
  }
  console.log(formatTable(["round", "append", "calls/s", "p50 ms", "p99 ms", "errors", "ratio"], rows));
  console.log(`Load average after the case: ${load()}\n`);
  await sideBySideCase(log, options, cases);
}

/**
 * The same comparison with both kinds of caller running at once, so that
 * whatever else loads the machine loads both alike: `callers` plain and
 * `callers` conditional callers, each on a log of its own, in one window.
 */
async function sideBySideCase(log: LogStub, options: ConditionBenchOptions, cases: Conditioning[]): Promise<void> {
  console.log(
    `Side by side: ${options.callers} plain and ${options.callers} conditional callers at once (each on a log of its own), closed loop,\n` +
      `${options.durationMs} ms after ${options.warmupMs} ms warm-up, ${options.rounds} rounds; ratio = conditional calls/s ÷ plain calls/s in the same window.`,
  );
  const [plain, ...conditioned] = cases;
  const rows: string[][] = [];
  for (let round = 1; round <= options.rounds; round++) {
    for (const [index, conditioning] of conditioned.entries()) {
      const pair = [plain!, conditioning];
      const lastSeqs = Array.from({ length: 2 * options.callers }, () => 0n);
      const latencies: number[][] = [[], []];
      let n = 0;
      const warmupEnd = performance.now() + options.warmupMs;
      const end = warmupEnd + options.durationMs;
      await Promise.all(
        lastSeqs.map(async (_, caller) => {
          const side = caller < options.callers ? 0 : 1;
          const logId = `sbs-${round}-${index}-${caller}`;
          while (performance.now() < end) {
            const before = performance.now();
            const response = await unary<logV1.AppendResponse>(log, "append", { logId, entry: entryInput(n++), condition: pair[side]!.condition(lastSeqs[caller]!) });
            lastSeqs[caller] = response.result!.seq;
            if (before >= warmupEnd) latencies[side]!.push(performance.now() - before);
          }
        }),
      );
      const rate = (side: number) => latencies[side]!.length / (options.durationMs / 1000);
      for (const side of [0, 1]) {
        const sorted = latencies[side]!.sort((a, b) => a - b);
        const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
        rows.push([String(round), pair[side]!.label, rate(side).toFixed(0), at(0.5).toFixed(2), at(0.99).toFixed(2), (rate(side) / rate(0)).toFixed(2)]);
      }
    }
  }
  console.log(formatTable(["round", "append", "calls/s", "p50 ms", "p99 ms", "ratio"], rows));
  console.log(`Load average after the case: ${load()}\n`);
}

/** One caller appending to a log of bigLogEntries entries: what each form of the check adds to the latency. */
async function latencyCase(log: LogStub, raw: pg.Client, options: ConditionBenchOptions): Promise<void> {
  const logId = "dcb-big";
  const started = performance.now();
  for (let first = 0; first < options.bigLogEntries; first += 1000) {
    const entries = Array.from({ length: Math.min(1000, options.bigLogEntries - first) }, (_, i) => {
      const n = first + i;
      return entryInput(n, `bench.k${n % options.kinds}.event`, `src-${n % options.sources}`);
    });
    await unary(log, "appendBatch", { logId, entries });
  }
  const fillSeconds = (performance.now() - started) / 1000;
  await raw.query("analyze log.entries");
  console.log(
    `The query's latency on a big log: ${options.bigLogEntries} entries (AppendBatch of 1,000, ${fillSeconds.toFixed(0)} s; then ANALYZE) of ${options.kinds} kinds\n` +
      `bench.k<i>.event and ${options.sources} sources; one caller, closed loop, ${options.durationMs} ms after ${options.warmupMs} ms warm-up per cell, ${options.rounds} rounds of\n` +
      "the cases in turn. The appended entries match none of the queries, so every check passes after looking at everything it\n" +
      "must. added = the case's quantile − plain Append's in the same round.",
  );
  const cases: Conditioning[] = [
    { label: "plain Append (baseline)", condition: () => undefined },
    { label: "query near the head: after_seq = last ack − 50, kinds bench.k1.>", condition: (lastSeq) => ({ afterSeq: lastSeq - 50n, kinds: ["bench.k1.>"] }) },
    { label: "query from seq 1: kinds bench.*.missing (skips through every kind)", condition: () => ({ afterSeq: 1n, kinds: ["bench.*.missing"] }) },
    { label: "query from seq 1: 4 literal kinds, none present", condition: () => ({ afterSeq: 1n, kinds: ["bench.a.x", "bench.b.x", "bench.c.x", "other.x"] }) },
    { label: "query from seq 1: kinds bench.>, source src-none", condition: () => ({ afterSeq: 1n, kinds: ["bench.>"], sourceIds: ["src-none"] }) },
  ];
  let lastSeq = BigInt(options.bigLogEntries);
  let n = options.bigLogEntries;
  const rows: string[][] = [];
  for (let round = 1; round <= options.rounds; round++) {
    let baseline: LoadResult | undefined;
    for (const conditioning of cases) {
      const result = await runLoad(
        async () => {
          const response = await unary<logV1.AppendResponse>(log, "append", { logId, entry: entryInput(n++), condition: conditioning.condition(lastSeq) });
          lastSeq = response.result!.seq;
        },
        1,
        options.durationMs,
        options.warmupMs,
      );
      baseline ??= result;
      rows.push([
        String(round),
        conditioning.label,
        result.callsPerSecond.toFixed(0),
        result.p50Ms.toFixed(2),
        result.p99Ms.toFixed(2),
        String(result.errors),
        (result.p50Ms - baseline.p50Ms).toFixed(2),
        (result.p99Ms - baseline.p99Ms).toFixed(2),
      ]);
    }
  }
  console.log(formatTable(["round", "append", "calls/s", "p50 ms", "p99 ms", "errors", "added p50 ms", "added p99 ms"], rows));
  console.log(`Load average after the case: ${load()}\n`);
  await explainChecks(raw, logId, lastSeq);
}

/** The plans PostgreSQL runs inside log.first_condition_conflict, from auto_explain. */
async function explainChecks(raw: pg.Client, logId: string, head: bigint): Promise<void> {
  console.log(
    `Plans of the statements inside log.first_condition_conflict on that log (head ${head}), logged by auto_explain (analyze, buffers)\n` +
      "for one call per path; one plan per distinct statement, the first time it ran.",
  );
  const notices: string[] = [];
  const onNotice = (notice: { message?: string }) => notices.push(notice.message ?? "");
  raw.on("notice", onNotice);
  try {
    await raw.query("load 'auto_explain'");
    for (const setting of ["log_min_duration = 0", "log_nested_statements = on", "log_analyze = on", "log_buffers = on", "log_timing = on"]) {
      await raw.query(`set auto_explain.${setting}`);
    }
    await raw.query("set client_min_messages = log");
    const paths: [string, unknown[]][] = [
      ["near the head (walk by seq)", [logId, head - 5n, head, 128n, [], ["bench."], ["bench/"], ["^bench\\.k1\\..+$"], []]],
      ["kinds by pattern (skip through the kinds)", [logId, 1n, head, 128n, [], ["bench."], ["bench/"], ["^bench\\.[^.]+\\.missing$"], []]],
      ["literal kinds", [logId, 1n, head, 128n, ["bench.a.x", "other.x"], [], [], [], []]],
      ["a source", [logId, 1n, head, 128n, [], ["bench."], ["bench/"], ["^bench\\..+$"], ["src-none"]]],
    ];
    for (const [label, args] of paths) {
      notices.length = 0;
      await raw.query("select log.first_condition_conflict($1, $2, $3, $4, $5, $6, $7, $8, $9)", args);
      const seen = new Set<string>();
      console.log(`-- ${label}`);
      for (const notice of notices) {
        // The statement: its first line and the indented lines that continue it (the plan starts unindented).
        const query = /Query Text: [^\n]*(\n\s[^\n]*)*/.exec(notice)?.[0] ?? notice;
        if (seen.has(query) || !notice.includes("Query Text")) continue;
        seen.add(query);
        if (query.includes("first_condition_conflict")) continue;
        console.log(notice.replace(/^duration: [^\n]*\n/, "").trimEnd());
      }
    }
  } finally {
    raw.off("notice", onNotice);
    await raw.query("reset client_min_messages");
  }
  console.log();
}

/** The 1-, 5- and 15-minute load averages. */
function load(): string {
  return loadavg()
    .map((value) => value.toFixed(1))
    .join(", ");
}
