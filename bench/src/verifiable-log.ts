// What the verifiable log costs and how fast its evidence is served: the log
// service process on fresh PostgreSQL databases, driven from this process.
//   1. Append and AppendBatch to logs with the Merkle tree and signed
//      checkpoints against logs without a tree in the same build,
//      alternating, in rounds.
//   2. GetInclusionProof and GetConsistencyProof on a log of 1,000,000
//      entries against a no-op call on the same server.
//   3. Tile GETs on the HTTP port against a no-op Connect call on that port.
//   4. Checkpoint lag: from an Append's ack to a signed checkpoint covering it.
import { randomInt } from "node:crypto";
import { Agent, request as httpRequest } from "node:http";
import * as grpc from "@grpc/grpc-js";
import { leafHash, verifyConsistency, verifyInclusion } from "@annals/chain";
import pg from "pg";
import { diagV1, logV1 } from "@annals/proto";
import { grpcServiceDefinition } from "@annals/runtime";
import { benchToken } from "./bench-token.js";
import { runLoad, type LoadResult } from "./load.js";
import { formatTable } from "./table.js";
import { LOG_SERVICE_SCRIPT, startBenchLogService } from "./log-service.js";

export interface VerifiableLogBenchOptions {
  /** Rounds of the append comparison; each runs the logs without a tree, then those with one. */
  rounds: number;
  concurrencies: number[];
  durationMs: number;
  warmupMs: number;
  /** Entries written by AppendBatch (1,000 per call) in each variant and round. */
  batchEntries: number;
  /** The size of the log the proofs and tiles are read from. */
  proofLogEntries: number;
  proofConcurrencies: number[];
  /** Appends per second and seconds of the checkpoint-lag case. */
  lagRate: number;
  lagSeconds: number;
}

const LogClient = grpc.makeGenericClientConstructor(grpcServiceDefinition(logV1.LogService), "LogService");
const DiagClient = grpc.makeGenericClientConstructor(grpcServiceDefinition(diagV1.DiagService), "DiagService");

type Unary = (request: object, metadata: grpc.Metadata, callback: (error: grpc.ServiceError | null, response: unknown) => void) => void;
type Stub = Record<string, Unary> & { close(): void };

const auth = new grpc.Metadata();

function call<T>(client: Stub, method: string, request: object): Promise<T> {
  return new Promise((resolve, reject) => client[method]!.call(client, request, auth, (error, response) => (error ? reject(error) : resolve(response as T))));
}

function entryInput(n: number) {
  const payload = { order_id: `ord-${n}`, customer: `cust-${n % 9973}`, amount: (n % 10000) / 100, currency: "EUR", items: [{ sku: `sku-${n % 97}`, qty: 1 + (n % 5) }], note: "x".repeat(60) };
  return { kind: "bench.order.placed", body: { case: "payload" as const, value: payload }, sourceId: "bench" };
}

/** A log service process on a database of its own, with clients on both ports. */
interface Running {
  log: Stub;
  diag: Stub;
  httpPort: number;
  databaseUrl: string;
  stop(): Promise<void>;
}

async function start(label: string): Promise<Running> {
  const { service, database } = await startBenchLogService(label);
  const address = `127.0.0.1:${service.grpcPort}`;
  const log = new LogClient(address, grpc.credentials.createInsecure()) as unknown as Stub;
  const diag = new DiagClient(address, grpc.credentials.createInsecure()) as unknown as Stub;
  return {
    log,
    diag,
    httpPort: service.httpPort,
    databaseUrl: database.url,
    stop: async () => {
      log.close();
      diag.close();
      await service.stop();
      await database.drop();
    },
  };
}

export async function verifiableLog(options: VerifiableLogBenchOptions): Promise<void> {
  auth.set("authorization", `Bearer ${await benchToken(["admin"])}`);
  console.log(
    "verifiable-log: the log service process (JWT auth) on fresh PostgreSQL databases, grpc-js clients and node:http\n" +
      `in the bench process; build ${LOG_SERVICE_SCRIPT}.\n`,
  );
  await appendCost(options);
  const running = await start("proofs");
  try {
    await fill(running, options.proofLogEntries);
    await proofs(running, options);
    await tiles(running, options);
    await checkpointLag(running, options);
  } finally {
    await running.stop();
  }
}

/**
 * Creates the logs a cell appends to; without a tree they are logs whose
 * tree_edge is NULL (as for logs compacted before trees existed): appends
 * then write no tiles and the checkpointer signs nothing for them.
 */
async function createLogs(running: Running, logIds: readonly string[], tree: boolean): Promise<void> {
  for (const logId of logIds) await call(running.log, "createLog", { logId });
  if (tree) return;
  const db = new pg.Client({ connectionString: running.databaseUrl });
  await db.connect();
  try {
    await db.query(`update log.logs set tree_edge = null where log_id = any($1)`, [logIds]);
  } finally {
    await db.end();
  }
}

/** Append (closed loop) and AppendBatch to logs with and without a tree, alternating, `rounds` times. */
async function appendCost(options: VerifiableLogBenchOptions): Promise<void> {
  console.log(
    `Appends with the Merkle tree and checkpoints (tree) ÷ without them (baseline: the same build, logs without a tree,\n` +
      `so no tiles are written and nothing is signed): ${options.rounds} rounds, each starting a fresh process and database per\n` +
      `variant; Append closed loop ${options.durationMs} ms after ${options.warmupMs} ms warm-up per concurrency, one log per cell;\n` +
      `AppendBatch of ${options.batchEntries} entries, 1,000 per call. ratio = tree ÷ baseline, same round.`,
  );
  const rows: string[][] = [];
  for (let round = 1; round <= options.rounds; round++) {
    const measured: Record<"baseline" | "tree", Map<string, number>> = { baseline: new Map(), tree: new Map() };
    for (const variant of ["baseline", "tree"] as const) {
      const running = await start(`${variant}${round}`);
      try {
        await createLogs(running, [...options.concurrencies.map((concurrency) => `append-${concurrency}`), "batch"], variant === "tree");
        for (const concurrency of options.concurrencies) {
          let n = 0;
          const logId = `append-${concurrency}`;
          const result = await runLoad(() => call(running.log, "append", { logId, entry: entryInput(n++) }), concurrency, options.durationMs, options.warmupMs);
          if (result.errors > 0) throw new Error(`${variant}: ${result.errors} Append errors`);
          measured[variant].set(`Append, ${concurrency} callers (calls/s)`, result.callsPerSecond);
        }
        const started = performance.now();
        for (let first = 0; first < options.batchEntries; first += 1000) {
          await call(running.log, "appendBatch", { logId: "batch", entries: Array.from({ length: Math.min(1000, options.batchEntries - first) }, (_, i) => entryInput(first + i)) });
        }
        measured[variant].set("AppendBatch, 1,000/call (entries/s)", options.batchEntries / ((performance.now() - started) / 1000));
        if (variant === "tree") {
          const checkpoint = await call<logV1.GetCheckpointResponse>(running.log, "getCheckpoint", { logId: "batch" });
          if (checkpoint.treeSize === 0n) throw new Error("the tree variant signed no checkpoint of the batch log");
        }
      } finally {
        await running.stop();
      }
    }
    for (const [label, base] of measured.baseline) {
      const now = measured.tree.get(label)!;
      rows.push([String(round), label, base.toFixed(0), now.toFixed(0), (now / base).toFixed(2)]);
    }
  }
  console.log(formatTable(["round", "case", "baseline (no tree)", "tree", "ratio"], rows) + "\n");
}

/** Writes `total` entries to the log "proofs" with AppendBatch, and waits for a checkpoint of all of them. */
async function fill(running: Running, total: number): Promise<void> {
  const started = performance.now();
  for (let first = 0; first < total; first += 1000) {
    await call(running.log, "appendBatch", { logId: "proofs", entries: Array.from({ length: Math.min(1000, total - first) }, (_, i) => entryInput(first + i)) });
  }
  const seconds = (performance.now() - started) / 1000;
  while ((await call<logV1.GetCheckpointResponse>(running.log, "getCheckpoint", { logId: "proofs" })).treeSize < BigInt(total)) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  console.log(`The proof log: ${total} entries written with AppendBatch in ${seconds.toFixed(1)} s (${(total / seconds).toFixed(0)} entries/s).\n`);
}

/** Proofs at random positions of the whole log, each kind against Ping at the same concurrency; a sample is verified first. */
async function proofs(running: Running, options: VerifiableLogBenchOptions): Promise<void> {
  const size = BigInt(options.proofLogEntries);
  const checkpoint = await call<logV1.GetCheckpointResponse>(running.log, "getCheckpoint", { logId: "proofs" });
  let verified = 0;
  for (let i = 0; i < 50; i++) {
    const seq = BigInt(randomInt(1, options.proofLogEntries + 1));
    const { entry } = await call<logV1.GetEntryResponse>(running.log, "getEntry", { logId: "proofs", selector: { case: "seq", value: seq } });
    const proof = await call<logV1.GetInclusionProofResponse>(running.log, "getInclusionProof", { logId: "proofs", seq, treeSize: size });
    verifyInclusion(leafHash(Buffer.from(entry!.checksum, "hex")), seq - 1n, size, proof.hashes, checkpoint.rootHash);
    const from = BigInt(randomInt(1, options.proofLogEntries));
    const old = await call<logV1.GetCheckpointResponse>(running.log, "getCheckpoint", { logId: "proofs", treeSize: from });
    const consistency = await call<logV1.GetConsistencyProofResponse>(running.log, "getConsistencyProof", { logId: "proofs", fromSize: from, toSize: size });
    verifyConsistency(from, size, old.rootHash, checkpoint.rootHash, consistency.hashes);
    verified += 2;
  }
  console.log(
    `Proofs on the ${options.proofLogEntries}-entry log (${verified} sampled proofs verified against the signed root first): closed loop,\n` +
      `${options.durationMs} ms per cell after ${options.warmupMs} ms warm-up, a random seq (or old size) per call, tree_size = the whole log;\n` +
      "baseline = DiagService.Ping on the same server at the same concurrency. ratio = calls/s ÷ Ping calls/s.",
  );
  const rows: string[][] = [];
  for (const concurrency of options.proofConcurrencies) {
    const ping = await runLoad(() => call(running.diag, "ping", { data: new Uint8Array(0) }), concurrency, options.durationMs, options.warmupMs);
    const inclusion = await runLoad(
      () => call(running.log, "getInclusionProof", { logId: "proofs", seq: BigInt(randomInt(1, options.proofLogEntries + 1)), treeSize: size }),
      concurrency,
      options.durationMs,
      options.warmupMs,
    );
    const consistency = await runLoad(
      () => call(running.log, "getConsistencyProof", { logId: "proofs", fromSize: BigInt(randomInt(1, options.proofLogEntries)), toSize: size }),
      concurrency,
      options.durationMs,
      options.warmupMs,
    );
    for (const [label, result] of [["Ping (baseline)", ping], ["GetInclusionProof", inclusion], ["GetConsistencyProof", consistency]] as const) {
      rows.push(loadRow(label, concurrency, result, ping));
    }
  }
  console.log(formatTable(["call", "callers", "calls/s", "p50 ms", "p99 ms", "errors", "ratio"], rows) + "\n");
}

function loadRow(label: string, concurrency: number, result: LoadResult, baseline: LoadResult): string[] {
  return [label, String(concurrency), result.callsPerSecond.toFixed(0), result.p50Ms.toFixed(2), result.p99Ms.toFixed(2), String(result.errors), (result.callsPerSecond / baseline.callsPerSecond).toFixed(2)];
}

/** One HTTP/1.1 request on a keep-alive agent; resolves with the status once the body is read. */
function httpCall(agent: Agent, port: number, method: string, path: string, headers: Record<string, string>, body?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ agent, host: "127.0.0.1", port, method, path, headers }, (response) => {
      response.on("data", () => undefined);
      response.on("end", () => (response.statusCode === 200 ? resolve(200) : reject(new Error(`${method} ${path}: HTTP ${response.statusCode}`))));
      response.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** The C2SP tile path of tile index n: groups of three digits, all but the last prefixed with x. */
function tileIndexPath(n: number): string {
  const digits = String(n).padStart(3 * Math.max(1, Math.ceil(String(n).length / 3)), "0");
  const groups = digits.match(/\d{3}/g)!;
  return groups.map((group, i) => (i < groups.length - 1 ? `x${group}` : group)).join("/");
}

/** Full tiles of levels 0 and 1, entry bundles and the checkpoint, against Connect Ping on the same port and agent. */
async function tiles(running: Running, options: VerifiableLogBenchOptions): Promise<void> {
  const concurrency = 16;
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const bearer = { authorization: auth.get("authorization")[0] as string };
  const connect = { ...bearer, "content-type": "application/json", "connect-protocol-version": "1" };
  const fullLevel0 = Math.floor(options.proofLogEntries / 256);
  const fullLevel1 = Math.floor(fullLevel0 / 256);
  const cases: [string, () => Promise<number>][] = [
    ["Connect Ping, JSON (baseline)", () => httpCall(agent, running.httpPort, "POST", "/annals.diag.v1.DiagService/Ping", connect, "{}")],
    ["GET tile/0/N (8 KiB)", () => httpCall(agent, running.httpPort, "GET", `/v1/logs/proofs/tile/0/${tileIndexPath(randomInt(fullLevel0))}`, bearer)],
    ["GET tile/1/N (8 KiB)", () => httpCall(agent, running.httpPort, "GET", `/v1/logs/proofs/tile/1/${tileIndexPath(randomInt(fullLevel1))}`, bearer)],
    ["GET tile/entries/N (256 leaves)", () => httpCall(agent, running.httpPort, "GET", `/v1/logs/proofs/tile/entries/${tileIndexPath(randomInt(fullLevel0))}`, bearer)],
    ["GET checkpoint", () => httpCall(agent, running.httpPort, "GET", "/v1/logs/proofs/checkpoint", bearer)],
  ];
  console.log(
    `Tile reads on the HTTP port: ${concurrency} callers on one node:http keep-alive agent (HTTP/1.1, up to ${concurrency} sockets), closed loop,\n` +
      `${options.durationMs} ms per row after ${options.warmupMs} ms warm-up, random full tiles of the ${options.proofLogEntries}-entry log, bearer token on\n` +
      "every request; baseline = DiagService.Ping through Connect (JSON) on the same port. ratio = requests/s ÷ Ping requests/s.",
  );
  const rows: string[][] = [];
  let baseline: LoadResult | undefined;
  try {
    for (const [label, request] of cases) {
      const result = await runLoad(request, concurrency, options.durationMs, options.warmupMs);
      baseline ??= result;
      rows.push(loadRow(label, concurrency, result, baseline));
    }
  } finally {
    agent.destroy();
  }
  console.log(formatTable(["request", "callers", "requests/s", "p50 ms", "p99 ms", "errors", "ratio"], rows) + "\n");
}

/**
 * Appends at a fixed rate while a poller reads the largest signed tree size
 * from the database every few milliseconds (GetCheckpoint would not do: it
 * signs one at once when the latest is behind); an entry's lag is from its
 * ack to the first poll that saw a checkpoint covering it.
 */
async function checkpointLag(running: Running, options: VerifiableLogBenchOptions): Promise<void> {
  const pollMs = 5;
  const count = options.lagRate * options.lagSeconds;
  const ackedAt: [bigint, number][] = [];
  const sizeSeen: [bigint, number][] = [];
  let polling = true;
  await call(running.log, "append", { logId: "lag", entry: entryInput(0) });
  const db = new pg.Client({ connectionString: running.databaseUrl });
  await db.connect();
  const poller = (async () => {
    while (polling) {
      const { rows } = await db.query<{ size: string | null }>("select max(tree_size) as size from log.checkpoints where log_id = 'lag'");
      const treeSize = BigInt(rows[0]?.size ?? 0);
      if (sizeSeen.length === 0 || sizeSeen.at(-1)![0] < treeSize) sizeSeen.push([treeSize, performance.now()]);
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  })();
  const start = performance.now();
  const appends: Promise<void>[] = [];
  for (let i = 1; i <= count; i++) {
    const wait = start + (i * 1000) / options.lagRate - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    appends.push(call<logV1.AppendResponse>(running.log, "append", { logId: "lag", entry: entryInput(i) }).then(({ result }) => void ackedAt.push([result!.seq, performance.now()])));
  }
  await Promise.all(appends);
  const last = ackedAt.reduce((max, [seq]) => (seq > max ? seq : max), 0n);
  while (sizeSeen.length === 0 || sizeSeen.at(-1)![0] < last) await new Promise((resolve) => setTimeout(resolve, pollMs));
  polling = false;
  await poller;
  await db.end();
  const lags = ackedAt.map(([seq, acked]) => sizeSeen.find(([size]) => size >= seq)![1] - acked).sort((a, b) => a - b);
  const at = (q: number) => lags[Math.min(lags.length - 1, Math.floor(q * lags.length))]!.toFixed(0);
  console.log(
    `Checkpoint lag: ${count} Appends at ${options.lagRate}/s (open loop) with the default ANNALS_LOG_CHECKPOINT_INTERVAL_MS (1000);\n` +
      `ms from an Append's ack to the first poll of log.checkpoints (every ${pollMs} ms) that finds a signed checkpoint covering it. ${sizeSeen.length} checkpoints seen.`,
  );
  console.log(formatTable(["entries", "p50 ms", "p99 ms", "max ms"], [[String(lags.length), at(0.5), at(0.99), lags.at(-1)!.toFixed(0)]]));
}
