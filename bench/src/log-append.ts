// The log service under load: the standalone service process on a fresh
// PostgreSQL database (the server named by ANNALS_BENCH_DATABASE_URL, default
// the local one), driven by grpc-js clients from this process, against
// baselines measured in the same run: a no-op RPC on the same server, raw
// multi-row INSERTs with `pg`, and NATS JetStream on 127.0.0.1:4222.
import { randomBytes, randomUUID } from "node:crypto";
import { availableParallelism } from "node:os";
import * as grpc from "@grpc/grpc-js";
import { jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { connect as connectNats } from "@nats-io/transport-node";
import pg from "pg";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { diagV1, logV1 } from "@annals/proto";
import { grpcServiceDefinition } from "@annals/runtime";
import { startBenchServer } from "./bench-server-process.js";
import { benchToken } from "./bench-token.js";
import { runLoad } from "./load.js";
import { formatTable } from "./table.js";
import { LOG_SERVICE_SCRIPT, startBenchLogService, startLogServiceProcess } from "./log-service.js";
import { startRoundTripRelay } from "./pg-round-trips.js";
import { backendCpuSecondsDuring, processCpuSeconds } from "./process-cpu.js";

export interface LogBenchOptions {
  concurrencies: number[];
  durationMs: number;
  warmupMs: number;
  /** Entries written by the bulk cases (and read back by the catch-up case). */
  bulkEntries: number;
  /** Appends per second and seconds of the latency case. */
  latencyRate: number;
  latencySeconds: number;
  /**
   * The cases to run, of unary, bulk, nats, catch-up, latency, round-trips
   * (default all); nats compares with bulk's AppendStream figure and catch-up
   * reads what bulk wrote, against nats's consumer.
   */
  cases?: readonly string[];
}

const LogClient = grpc.makeGenericClientConstructor(grpcServiceDefinition(logV1.LogService), "LogService");
/** Subscribe with the request and the responses as bytes: the frames as they arrive, undecoded. */
const RawSubscribeClient = grpc.makeGenericClientConstructor(
  {
    subscribe: {
      ...grpcServiceDefinition(logV1.LogService).subscribe!,
      requestSerialize: (request: Buffer) => request,
      responseDeserialize: (bytes: Buffer) => bytes,
    },
  },
  "LogService",
);
const DiagClient = grpc.makeGenericClientConstructor(grpcServiceDefinition(diagV1.DiagService), "DiagService");

type Unary = (request: object, metadata: grpc.Metadata, callback: (error: grpc.ServiceError | null, response: unknown) => void) => void;
interface LogStub {
  append: Unary;
  appendBatch: Unary;
  appendStream(metadata: grpc.Metadata): grpc.ClientDuplexStream<object, logV1.AppendStreamResponse>;
  subscribe(request: object, metadata: grpc.Metadata): grpc.ClientReadableStream<logV1.SubscribeResponse>;
  close(): void;
}
interface RawSubscribeStub {
  subscribe(request: Uint8Array, metadata: grpc.Metadata): grpc.ClientReadableStream<Buffer>;
  close(): void;
}

/** The bearer token every call carries (set once the bench token is minted). */
const auth = new grpc.Metadata();

function unary<C extends Record<M, Unary>, M extends string>(client: C, method: M, request: object): Promise<unknown> {
  return new Promise((resolve, reject) => client[method].call(client, request, auth, (error, response) => (error ? reject(error) : resolve(response))));
}

/** A payload of about 200 bytes of canonical JSON, like a small business event. */
function payload(n: number) {
  return { order_id: `ord-${n}`, customer: `cust-${n % 9973}`, amount: (n % 10000) / 100, currency: "EUR", items: [{ sku: `sku-${n % 97}`, qty: 1 + (n % 5) }], note: "x".repeat(60) };
}

function entryInput(n: number) {
  return { kind: "bench.order.placed", body: { case: "payload" as const, value: payload(n) }, sourceId: "bench" };
}

export async function logAppend(options: LogBenchOptions): Promise<void> {
  const { service, database } = await startBenchLogService("log");
  auth.set("authorization", `Bearer ${await benchToken(["admin"])}`);
  const address = `127.0.0.1:${service.grpcPort}`;
  const log = new LogClient(address, grpc.credentials.createInsecure()) as unknown as LogStub;
  const rawLog = new RawSubscribeClient(address, grpc.credentials.createInsecure()) as unknown as RawSubscribeStub;
  const diag = new DiagClient(address, grpc.credentials.createInsecure()) as unknown as { ping: Unary; close(): void };
  const raw = new pg.Client({ connectionString: database.url });
  await raw.connect();
  console.log(
    `log-append: the log service process (${LOG_SERVICE_SCRIPT}, JWT auth) on PostgreSQL database ${database.name} at ${database.host},\n` +
      "grpc-js clients in the bench process over one HTTP/2 connection; payloads of ~200 bytes of JSON.\n",
  );
  const runs = (name: string) => options.cases === undefined || options.cases.includes(name);
  try {
    if (runs("unary")) await unaryCase(log, diag, options);
    const streamRate = runs("bulk") ? await bulkCase(log, raw, { pid: service.pid, httpPort: service.httpPort, database: database.name }, options) : NaN;
    const jetStreamConsumeRate = runs("nats") ? await natsCase(options, streamRate) : NaN;
    if (runs("catch-up")) await catchUpCase(log, rawLog, options, jetStreamConsumeRate);
    if (runs("latency")) await latencyCase(log, options);
    if (runs("round-trips")) await roundTripCase(database.url, options);
  } finally {
    log.close();
    rawLog.close();
    diag.close();
    await raw.end();
    await service.stop();
    await database.drop();
  }
}

/** Append, one entry per call, against Ping on the same server at the same concurrency. */
async function unaryCase(log: LogStub, diag: { ping: Unary }, options: LogBenchOptions): Promise<void> {
  console.log(
    `Append vs no-op: closed loop, ${options.durationMs} ms per cell after ${options.warmupMs} ms warm-up; one log per concurrency;\n` +
      "baseline = DiagService.Ping (no-op unary) on the same server; ratio = Append calls/s ÷ Ping calls/s.",
  );
  const rows: string[][] = [];
  for (const concurrency of options.concurrencies) {
    const ping = await runLoad(() => unary(diag, "ping", { data: new Uint8Array(0) }), concurrency, options.durationMs, options.warmupMs);
    let n = 0;
    const logId = `bench-unary-${concurrency}`;
    const append = await runLoad(() => unary(log, "append", { logId, entry: entryInput(n++) }), concurrency, options.durationMs, options.warmupMs);
    for (const [label, result] of [["Ping (baseline)", ping], ["Append", append]] as const) {
      rows.push([label, String(concurrency), result.callsPerSecond.toFixed(0), result.p50Ms.toFixed(2), result.p99Ms.toFixed(2), String(result.errors), (result.callsPerSecond / ping.callsPerSecond).toFixed(2)]);
    }
  }
  console.log(formatTable(["call", "callers", "calls/s", "p50 ms", "p99 ms", "errors", "ratio"], rows) + "\n");
}

/**
 * What one bulk writer cost: entries/s, the log service's group commits, and
 * CPU µs per entry of the bench process, the log service process and
 * PostgreSQL's backends.
 */
interface BulkRun {
  rate: number;
  groups: number;
  clientUs: number;
  serviceUs: number;
  postgresUs: number;
}

/** AppendBatch and AppendStream against raw multi-row INSERTs of the same rows; returns AppendStream entries/s. */
async function bulkCase(log: LogStub, raw: pg.Client, server: { pid: number; httpPort: number; database: string }, options: LogBenchOptions): Promise<number> {
  const total = options.bulkEntries;
  console.log(
    `Bulk appends: ${total} entries each way. Baseline = raw multi-row INSERT with pg of 1,000 precomputed rows per\n` +
      "statement (autocommit) into a copy of log.entries with the same indexes (the storage limit: no sequencing,\n" +
      "hashing, idempotency check or RPC). ratio = entries/s ÷ raw INSERT rows/s. CPU µs per entry: of this bench\n" +
      "process (client), the log service process (/proc) and the PostgreSQL backends of the bench database (/proc);\n" +
      "cores limit = entries/s at which their sum fills the machine's cores.",
  );
  await raw.query("create table public.raw_entries (like log.entries including all)");
  const measure = async (write: () => Promise<void>): Promise<BulkRun> => {
    const groups = await groupCommits(server.httpPort);
    const client = process.cpuUsage();
    const service = processCpuSeconds(server.pid);
    const started = performance.now();
    const postgres = await backendCpuSecondsDuring(raw, server.database, write);
    const seconds = (performance.now() - started) / 1000;
    const { user, system } = process.cpuUsage(client);
    return {
      rate: total / seconds,
      groups: (await groupCommits(server.httpPort)) - groups,
      clientUs: (user + system) / total,
      serviceUs: ((processCpuSeconds(server.pid) - service) * 1e6) / total,
      postgresUs: (postgres * 1e6) / total,
    };
  };
  const columns = ["log_id", "seq", "uuid", "kind", "source_id", "sim_time", "wall_time_us", "req_id", "metadata", "payload", "payload_digest", "prev_checksum", "checksum"];
  const rawRun = await measure(async () => {
    for (let first = 1; first <= total; first += 1000) {
      const values: unknown[] = [];
      const tuples: string[] = [];
      for (let seq = first; seq < first + 1000 && seq <= total; seq++) {
        const row = ["raw", seq, randomUUID(), "bench.order.placed", "bench", null, Date.now() * 1000, null, "{}", JSON.stringify(payload(seq)), hex(), hex(), hex()];
        tuples.push(`(${row.map((_, i) => `$${values.length + i + 1}`).join(",")})`);
        values.push(...row);
      }
      await raw.query(`insert into public.raw_entries (${columns.join(",")}) values ${tuples.join(",")}`, values);
    }
  });
  const batchRun = await measure(async () => {
    for (let first = 0; first < total; first += 1000) {
      await unary(log, "appendBatch", { logId: "bench-batch", entries: Array.from({ length: Math.min(1000, total - first) }, (_, i) => entryInput(first + i)) });
    }
  });
  const streamRun = await measure(() => appendStream(log, "bench-stream", total, 64));

  const runs: [string, BulkRun][] = [
    ["raw INSERT, 1,000 rows/statement (baseline)", rawRun],
    ["AppendBatch, 1,000 entries/call", batchRun],
    ["AppendStream, 64 in flight", streamRun],
  ];
  const cores = availableParallelism();
  const rows = runs.map(([label, run]) => {
    const cpuUs = run.clientUs + run.serviceUs + run.postgresUs;
    const cpu = [run.clientUs, run.serviceUs, run.postgresUs, cpuUs].map((us) => us.toFixed(1));
    const groups = run === rawRun ? "" : String(run.groups);
    return [label, run.rate.toFixed(0), (run.rate / rawRun.rate).toFixed(2), groups, ...cpu, ((cores * 1e6) / cpuUs).toFixed(0)];
  });
  console.log(formatTable(["writer", "entries/s", "ratio", "groups", "client µs", "service µs", "postgres µs", "sum µs", `${cores}-core limit/s`], rows) + "\n");
  return streamRun.rate;
}

/** How many group commits the log service has made so far (its annals.log.group_commit.entries histogram on /metrics). */
async function groupCommits(httpPort: number): Promise<number> {
  const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const count = /^annals_log_group_commit_entries_count(?:\{[^}]*\})? (\d+)/m.exec(metrics);
  return count ? Number(count[1]) : 0;
}

/** A table of entries/s with each row's ratio to the baseline (first row). */
function printRates(role: string, baseline: [string, number], others: [string, number][]): void {
  const rows = [baseline, ...others].map(([label, rate]) => [label, rate.toFixed(0), (rate / baseline[1]).toFixed(2)]);
  console.log(formatTable([role, "entries/s", "ratio"], rows) + "\n");
}

function hex(): string {
  return randomBytes(32).toString("hex");
}

/** Writes `total` entries through one AppendStream, keeping at most `window` unacknowledged. */
function appendStream(log: LogStub, logId: string, total: number, window: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const call = log.appendStream(auth);
    let sent = 0;
    let acked = 0;
    const fill = () => {
      while (sent < total && sent - acked < window) call.write({ frame: { case: "entry", value: { logId, entry: entryInput(sent++) } } });
      if (sent === total) call.end();
    };
    call.on("data", () => {
      acked++;
      if (sent < total) fill();
    });
    call.on("error", reject);
    call.on("end", () => (acked === total ? resolve() : reject(new Error(`stream ended after ${acked} of ${total} acks`))));
    fill();
  });
}

/**
 * JetStream publish-with-ack, 64 in flight, against AppendStream's figure from
 * the bulk case and the same writer on a server that stores nothing; returns
 * the rate of a consumer reading the stored messages.
 */
async function natsCase(options: LogBenchOptions, streamRate: number): Promise<number> {
  const { publishRate, consumeRate } = await jetStreamRates(options.bulkEntries);
  console.log(
    `The peer: NATS JetStream on 127.0.0.1:4222, file-storage stream, ${options.bulkEntries} messages of the same JSON, 64 publishes\n` +
      "awaiting their PubAck at a time. JetStream does not fsync each message by default (it syncs every 2 minutes);\n" +
      "every annals commit is fsynced by PostgreSQL before the ack. ratio = AppendStream ÷ JetStream.",
  );
  const bare = await bareAppendStream(options.bulkEntries);
  printRates("writer", ["JetStream publish+ack, 64 in flight (baseline)", publishRate], [
    ["annals AppendStream, 64 in flight", streamRate],
    ["bare grpc-js AppendStream, 64 in flight: acked at once, nothing stored", bare.rate],
  ]);
  console.log(
    `The bare grpc-js server (bench-server.js bare-grpc-append) answers each decoded request at once: what the bench's client and the\n` +
      `transport allow on this machine with no log behind them. CPU µs per entry there: ${bare.clientUs.toFixed(1)} in this bench process (the client),\n` +
      `${bare.serverUs.toFixed(1)} in the server process.\n`,
  );
  return consumeRate;
}

/** The bench's AppendStream writer against a grpc-js server that acks each entry as it arrives: entries/s and CPU µs per entry of both processes. */
async function bareAppendStream(total: number): Promise<{ rate: number; clientUs: number; serverUs: number }> {
  const server = await startBenchServer("bare-grpc-append");
  const log = new LogClient(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure()) as unknown as LogStub;
  try {
    const serverCpu = server.cpuSeconds();
    const client = process.cpuUsage();
    const started = performance.now();
    await appendStream(log, "bare", total, 64);
    const seconds = (performance.now() - started) / 1000;
    const { user, system } = process.cpuUsage(client);
    return { rate: total / seconds, clientUs: (user + system) / total, serverUs: ((server.cpuSeconds() - serverCpu) * 1e6) / total };
  } finally {
    log.close();
    await server.stop();
  }
}

/** Messages/s of JetStream publishing `total` entries (64 awaiting their PubAck) and of an ordered consumer reading them back. */
async function jetStreamRates(total: number): Promise<{ publishRate: number; consumeRate: number }> {
  const nc = await connectNats({ servers: "127.0.0.1:4222" });
  const jsm = await jetstreamManager(nc);
  const name = `ANNALS_BENCH_${process.pid}`;
  const subject = `annalsbench${process.pid}`;
  await jsm.streams.add({ name, subjects: [`${subject}.>`], storage: StorageType.File });
  try {
    const js = jetstream(nc);
    const encoder = new TextEncoder();
    let started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < total) {
          const n = next++;
          await js.publish(`${subject}.order.placed`, encoder.encode(JSON.stringify(entryInput(n))));
        }
      }),
    );
    const publishRate = total / ((performance.now() - started) / 1000);

    started = performance.now();
    const consumer = await js.consumers.get(name);
    const messages = await consumer.consume({ max_messages: 1000 });
    let read = 0;
    for await (const message of messages) {
      if (message.data.length === 0) throw new Error("empty message");
      if (++read === total) break;
    }
    const consumeRate = total / ((performance.now() - started) / 1000);
    return { publishRate, consumeRate };
  } finally {
    await jsm.streams.delete(name);
    await nc.close();
  }
}

/**
 * One gRPC subscriber catching up on the entries AppendStream wrote, against
 * the JetStream consumer: one `entry` frame per entry (the reference), then
 * batch frames as federation asks for them. Two more rows show where the
 * time goes: the same stream received but not decoded, and the subscriber's
 * own decoding of those frames alone (no I/O).
 */
async function catchUpCase(log: LogStub, rawLog: RawSubscribeStub, options: LogBenchOptions, jetStreamRate: number): Promise<void> {
  const total = options.bulkEntries;
  const perEntry = await catchUp(log, "bench-stream", total, 0);
  const batched = await catchUp(log, "bench-stream", total, 1000);
  const raw = await catchUpRaw(rawLog, "bench-stream", total);
  const started = performance.now();
  for (const frame of raw.frames) fromBinary(logV1.SubscribeResponseSchema, frame);
  const decodeRate = total / ((performance.now() - started) / 1000);
  console.log(
    `Subscribe catch-up: ${total} stored entries from seq 1 to the caught-up marker, one grpc-js subscriber decoding every\n` +
      `entry (protobuf-es); baseline = a JetStream ordered consumer reading the ${total} stored messages above.`,
  );
  printRates("reader", ["JetStream ordered consumer (baseline)", jetStreamRate], [
    ["annals Subscribe, one entry frame per entry", perEntry],
    ["annals Subscribe, max_entries_per_frame 1000", batched],
  ]);
  console.log("Where the limit is: the subscriber above without its decoding, and its decoding alone (no I/O).");
  printRates("reader", ["JetStream ordered consumer (baseline)", jetStreamRate], [
    ["annals Subscribe, entry frames not decoded", raw.rate],
    [`protobuf-es fromBinary of those ${raw.frames.length} frames`, decodeRate],
  ]);
}

/** Entries/s of one Subscribe from seq 1 to CaughtUp, every frame decoded. */
async function catchUp(log: LogStub, logId: string, total: number, maxEntriesPerFrame: number): Promise<number> {
  const started = performance.now();
  let received = 0;
  await new Promise<void>((resolve, reject) => {
    // after_seq 0: from the first stored entry (seq 1 here).
    const call = log.subscribe({ logId, afterSeq: 0n, maxEntriesPerFrame }, auth);
    call.on("data", (message: logV1.SubscribeResponse) => {
      if (message.frame.case === "entry") received++;
      if (message.frame.case === "entries") received += message.frame.value.entries.length;
      if (message.frame.case === "caughtUp") {
        call.cancel();
        resolve();
      }
    });
    call.on("error", (error: grpc.ServiceError) => (error.code === grpc.status.CANCELLED ? undefined : reject(error)));
  });
  if (received !== total) throw new Error(`caught up after ${received} of ${total} entries (max_entries_per_frame ${maxEntriesPerFrame})`);
  return total / ((performance.now() - started) / 1000);
}

/** The first byte of a SubscribeResponse whose frame is CaughtUp (field 2, length-delimited). */
const CAUGHT_UP_TAG = (2 << 3) | 2;

/** One Subscribe from seq 1 to CaughtUp whose entry frames are kept as received, undecoded. */
async function catchUpRaw(rawLog: RawSubscribeStub, logId: string, total: number): Promise<{ rate: number; frames: Buffer[] }> {
  const started = performance.now();
  const frames: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    const request = create(logV1.SubscribeRequestSchema, { logId, afterSeq: 0n });
    const call = rawLog.subscribe(Buffer.from(toBinary(logV1.SubscribeRequestSchema, request)), auth);
    call.on("data", (frame: Buffer) => {
      if (frame[0] !== CAUGHT_UP_TAG) return frames.push(frame);
      call.cancel();
      resolve();
    });
    call.on("error", (error: grpc.ServiceError) => (error.code === grpc.status.CANCELLED ? undefined : reject(error)));
  });
  if (frames.length !== total) throw new Error(`caught up after ${frames.length} of ${total} frames`);
  return { rate: total / ((performance.now() - started) / 1000), frames };
}

/** Open-loop appends at a fixed rate with a live subscriber: append-acked → received latency. */
async function latencyCase(log: LogStub, options: LogBenchOptions): Promise<void> {
  const count = options.latencyRate * options.latencySeconds;
  const sentAt = new Map<bigint, number>();
  const ackedAt = new Map<bigint, number>();
  const receivedAt = new Map<bigint, number>();
  const call = log.subscribe({ logId: "bench-latency" }, auth);
  let allReceived!: () => void;
  const done = new Promise<void>((resolve) => (allReceived = resolve));
  const caughtUp = new Promise<void>((resolve) =>
    call.on("data", (message: logV1.SubscribeResponse) => {
      if (message.frame.case === "caughtUp") resolve();
      if (message.frame.case === "entry") {
        receivedAt.set(message.frame.value.seq, performance.now());
        if (receivedAt.size === count) allReceived();
      }
    }),
  );
  call.on("error", () => undefined);
  await caughtUp;
  const start = performance.now();
  const appends: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const due = start + (i * 1000) / options.latencyRate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    const sent = performance.now();
    appends.push(
      unary(log, "append", { logId: "bench-latency", entry: entryInput(i) }).then((response) => {
        const { seq } = (response as logV1.AppendResponse).result!;
        sentAt.set(seq, sent);
        ackedAt.set(seq, performance.now());
      }),
    );
  }
  await Promise.all(appends);
  await done;
  call.cancel();
  const quantiles = (values: number[]) => {
    values.sort((a, b) => a - b);
    const at = (q: number) => values[Math.min(values.length - 1, Math.floor(q * values.length))]!;
    return [at(0.5).toFixed(2), at(0.99).toFixed(2), values.at(-1)!.toFixed(2)];
  };
  const seqs = [...receivedAt.keys()];
  const fromAck = seqs.map((seq) => receivedAt.get(seq)! - ackedAt.get(seq)!);
  const fromSend = seqs.map((seq) => receivedAt.get(seq)! - sentAt.get(seq)!);
  console.log(
    `Live delivery: ${count} Appends at ${options.latencyRate}/s (open loop, one at a time on schedule) with one live subscriber;\n` +
      "ms from the Append's ack (and from its send) to the subscriber receiving the entry; negative = received before the ack.",
  );
  console.log(
    formatTable(
      ["measured from", "p50 ms", "p99 ms", "max ms"],
      [
        ["Append acknowledged", ...quantiles(fromAck)],
        ["Append sent", ...quantiles(fromSend)],
      ],
    ),
  );
}

/**
 * PostgreSQL round trips per append: a second log service process on the
 * same database reaches PostgreSQL through a relay that counts every round
 * trip it makes (each simple Query — BEGIN and COMMIT among them — and each
 * Sync that closes an extended-protocol statement). Background work is
 * included: checkpoint signing (once per checkpoint interval per log that
 * grew) and the listen connection. Kept apart from the throughput figures
 * above, which run without the relay.
 */
async function roundTripCase(databaseUrl: string, options: LogBenchOptions): Promise<void> {
  const relay = await startRoundTripRelay(databaseUrl);
  const service = await startLogServiceProcess(relay.url);
  const address = `127.0.0.1:${service.grpcPort}`;
  const log = new LogClient(address, grpc.credentials.createInsecure()) as unknown as LogStub;
  const rows: string[][] = [];
  const measure = async (label: string, logId: string, run: () => Promise<{ calls: number; entries: number }>) => {
    // The log's first append (creating it) is not counted.
    await unary(log, "append", { logId, entry: entryInput(0) });
    const before = relay.roundTrips();
    const { calls, entries } = await run();
    const roundTrips = relay.roundTrips() - before;
    rows.push([label, String(calls), String(entries), String(roundTrips), (roundTrips / calls).toFixed(2), (roundTrips / entries).toFixed(3)]);
  };
  try {
    let n = 0;
    for (const concurrency of [1, 64]) {
      const logId = `bench-round-trips-${concurrency}`;
      await measure(`Append, ${concurrency} caller${concurrency === 1 ? "" : "s"}`, logId, async () => {
        const result = await runLoad(() => unary(log, "append", { logId, entry: entryInput(n++) }), concurrency, options.durationMs, options.warmupMs);
        const calls = result.calls + result.warmupCalls + result.errors;
        return { calls, entries: calls };
      });
    }
    await measure("AppendBatch of 1,000", "bench-round-trips-batch", async () => {
      for (let call = 0; call < 10; call++) {
        await unary(log, "appendBatch", { logId: "bench-round-trips-batch", entries: Array.from({ length: 1000 }, (_, i) => entryInput(call * 1000 + i)) });
      }
      return { calls: 10, entries: 10_000 };
    });
    await measure("AppendStream, 64 in flight", "bench-round-trips-stream", async () => {
      await appendStream(log, "bench-round-trips-stream", 10_000, 64);
      return { calls: 1, entries: 10_000 };
    });
  } finally {
    log.close();
    await service.stop();
    await relay.close();
  }
  console.log(
    "\nPostgreSQL round trips per append: a second log service process on the same database, reaching PostgreSQL through a relay\n" +
      "that counts every round trip it makes (each simple Query, BEGIN and COMMIT among them, and each Sync closing a statement);\n" +
      "the background checkpoint signing (once a second per log that grew) is included.",
  );
  console.log(formatTable(["writer", "calls", "entries", "round trips", "per call", "per entry"], rows) + "\n");
}

export interface LogCatchupOptions {
  /** Entries written with AppendBatch (1,000 per call) and read back by each catch-up. */
  entries: number;
  /** Catch-ups of each kind, alternating per-entry and batch frames. */
  rounds: number;
}

/**
 * The catch-up case alone, with the CPU time each party spends per entry:
 * the log service process, the PostgreSQL backends serving its database
 * (from /proc, so the server must run on this machine) and this process, the
 * subscriber. On a machine where they share the cores, their sum per entry
 * bounds the rate.
 */
export async function logCatchup(options: LogCatchupOptions): Promise<void> {
  const { entries: total, rounds } = options;
  const { service, database } = await startBenchLogService("catchup");
  auth.set("authorization", `Bearer ${await benchToken(["admin"])}`);
  const address = `127.0.0.1:${service.grpcPort}`;
  const log = new LogClient(address, grpc.credentials.createInsecure()) as unknown as LogStub;
  const rawLog = new RawSubscribeClient(address, grpc.credentials.createInsecure()) as unknown as RawSubscribeStub;
  const admin = new pg.Client({ connectionString: database.url });
  await admin.connect();
  try {
    for (let first = 0; first < total; first += 1000) {
      await unary(log, "appendBatch", { logId: "bench-catchup", entries: Array.from({ length: Math.min(1000, total - first) }, (_, i) => entryInput(first + i)) });
    }
    const { consumeRate } = await jetStreamRates(total);
    const rows: string[][] = [];
    const measure = async (label: string, run: () => Promise<number>) => {
      const serviceBefore = processCpuSeconds(service.pid);
      const clientBefore = process.cpuUsage();
      let rate = 0;
      const backendSeconds = await backendCpuSecondsDuring(admin, database.name, async () => {
        rate = await run();
      });
      const client = process.cpuUsage(clientBefore);
      const serviceUs = ((processCpuSeconds(service.pid) - serviceBefore) * 1e6) / total;
      const postgresUs = (backendSeconds * 1e6) / total;
      const clientUs = (client.user + client.system) / total;
      const sum = serviceUs + postgresUs + clientUs;
      rows.push([label, rate.toFixed(0), (rate / consumeRate).toFixed(2), serviceUs.toFixed(1), postgresUs.toFixed(1), clientUs.toFixed(1), sum.toFixed(1), ((2 * 1e6) / sum).toFixed(0)]);
    };
    let frames: Buffer[] = [];
    for (let round = 0; round < rounds; round++) {
      await measure("one entry frame per entry", () => catchUp(log, "bench-catchup", total, 0));
      await measure("max_entries_per_frame 1000", () => catchUp(log, "bench-catchup", total, 1000));
      await measure("entry frames, not decoded", async () => {
        const raw = await catchUpRaw(rawLog, "bench-catchup", total);
        frames = raw.frames;
        return raw.rate;
      });
    }
    const clientBefore = process.cpuUsage();
    for (const frame of frames) fromBinary(logV1.SubscribeResponseSchema, frame);
    const decode = process.cpuUsage(clientBefore);
    console.log(
      `Subscribe catch-up alone: ${total} entries written with AppendBatch, read from seq 1 to the caught-up marker by one\n` +
        `grpc-js subscriber in this process, ${rounds} rounds; baseline = a JetStream ordered consumer reading ${total} stored\n` +
        `messages of the same JSON (${consumeRate.toFixed(0)} msgs/s). CPU µs per entry (user + system) of the log service process,\n` +
        "of the PostgreSQL backends of its database and of this process; bound = entries/s if those µs filled 2 cores.\n" +
        `The subscriber's protobuf-es decoding alone (fromBinary of the undecoded frames): ${((decode.user + decode.system) / total).toFixed(1)} µs/entry.`,
    );
    console.log(formatTable(["reader", "entries/s", "ratio", "service µs", "postgres µs", "client µs", "sum µs", "bound/s"], rows) + "\n");
  } finally {
    log.close();
    rawLog.close();
    await admin.end();
    await service.stop();
    await database.drop();
  }
}
