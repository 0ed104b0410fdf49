// `npm run bench`: every benchmark, or those named on the command line.
// Each prints what it compared, how, and ratios against a baseline measured in the same run.
import { cpus, totalmem } from "node:os";
import { federationCatchup } from "./federation-catchup.js";
import { kvOps } from "./kv-ops.js";
import { logAppend, logCatchup } from "./log-append.js";
import { logConditions } from "./log-conditions.js";
import { rpcOverhead } from "./rpc-overhead.js";
import { fanoutOptions, streamFanout } from "./stream-fanout.js";
import { verifiableLog } from "./verifiable-log.js";

const SUITES: Record<string, () => Promise<void>> = {
  "rpc-overhead": () => rpcOverhead({ concurrencies: [1, 16, 64], durationMs: 3000, warmupMs: 500 }),
  // ANNALS_BENCH_LOG_APPEND_CASES=bulk,nats runs those cases only; ANNALS_BENCH_LOG_BULK_ENTRIES sets how many entries they write.
  "log-append": () =>
    logAppend({
      concurrencies: [1, 16, 64],
      durationMs: 3000,
      warmupMs: 500,
      bulkEntries: Number(process.env.ANNALS_BENCH_LOG_BULK_ENTRIES ?? 100_000),
      latencyRate: 500,
      latencySeconds: 10,
      cases: process.env.ANNALS_BENCH_LOG_APPEND_CASES?.split(","),
    }),
  // The Subscribe catch-up row of log-append alone, with CPU µs per entry of each process.
  "log-catchup": () =>
    logCatchup({ entries: Number(process.env.ANNALS_BENCH_CATCHUP_ENTRIES ?? 100_000), rounds: Number(process.env.ANNALS_BENCH_CATCHUP_ROUNDS ?? 2) }),
  // Conditional appends (issue 18) against plain Append.
  "log-conditions": () =>
    logConditions({ callers: 64, rounds: 3, durationMs: 4000, warmupMs: 500, bigLogEntries: Number(process.env.ANNALS_BENCH_CONDITION_LOG_ENTRIES ?? 1_000_000), kinds: 20, sources: 100 }),
  "kv-ops": () => kvOps({ concurrency: 64, durationMs: 3000, warmupMs: 500, keys: 10_000, valueBytes: 100 }),
  "federation-catchup": () => federationCatchup({ entries: 100_000 }),
  "stream-fanout": () => streamFanout(fanoutOptions(process.env)),
  // Against the log service of the commit before the Merkle tree and checkpoints (74d614e added them).
  "verifiable-log": () =>
    verifiableLog({
      rounds: 2,
      concurrencies: [16, 64],
      durationMs: 3000,
      warmupMs: 500,
      batchEntries: 50_000,
      proofLogEntries: 1_000_000,
      proofConcurrencies: [1, 16],
      lagRate: 200,
      lagSeconds: 10,
    }),
};

const selected = process.argv.slice(2).length > 0 ? process.argv.slice(2) : Object.keys(SUITES);
console.log(`annals benchmarks on ${cpus().length} × ${cpus()[0]?.model ?? "unknown CPU"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}\n`);
for (const name of selected) {
  const suite = SUITES[name];
  if (!suite) {
    console.error(`unknown benchmark ${name}; known: ${Object.keys(SUITES).join(", ")}`);
    process.exit(2);
  }
  await suite();
  console.log();
}
