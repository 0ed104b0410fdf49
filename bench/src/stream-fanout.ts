// The stream service fanning out to many live subscribers: the standalone log
// and stream service processes on a fresh PostgreSQL database, 1,000 grpc-js
// Subscribe streams in this process over 20 patterns, entries appended at
// fixed rates. In the same run: the same subscribers on a bare grpc-js server
// that writes each published entry to its streams (bare-fanout.ts), and the
// peer, NATS core (127.0.0.1:4222) with the same subscriptions and publish
// rates, subscribers in this process too.
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { connect as connectNats, type NatsConnection } from "@nats-io/transport-node";
import { logV1, streamV1 } from "@annals/proto";
import { grpcServiceDefinition } from "@annals/runtime";
import { startServiceProcess, type ServiceProcess } from "@annals/runtime/testing";
import { PUBLISH_METHOD } from "./bare-fanout.js";
import { createBenchDatabase } from "./bench-database.js";
import { startBenchServer, type BenchServer } from "./bench-server-process.js";
import { LOG_SERVICE_SCRIPT } from "./log-service.js";
import { BENCH_SECRET, benchToken } from "./bench-token.js";
import { machineBusySeconds, processCpuSeconds } from "./process-cpu.js";
import { formatTable } from "./table.js";

export interface FanoutBenchOptions {
  subscribers: number;
  topics: number;
  /** Entries (messages) per second of the two headline runs. */
  rates: number[];
  /** max_events_per_frame of the subscribers that ask for `events` frames. */
  batchEvents: number;
  /** Subscriber sets measured: plain `event` frames, `events` frames, or both. */
  modes: ("event" | "events")[];
  /** Rates tried, lowest first, to find the highest one with p99 under the target; empty: no search. */
  searchRates: number[];
  seconds: number;
  p99TargetMs: number;
  /** Whether NATS core is measured too. */
  peer: boolean;
  /** Whether the bare grpc-js baseline (bare-fanout.ts) is measured too, with `event` frames. */
  bare: boolean;
  /**
   * The subscribers' HTTP/2 receive window in bytes (grpc-js's
   * grpc-node.flow_control_window, per stream and per connection); undefined:
   * grpc-js's default, HTTP/2's 64 KiB, as the reference rows are measured.
   */
  clientWindowBytes: number | undefined;
}

/** The full bench, or what ANNALS_BENCH_FANOUT_* narrow it to (one rate, one kind of subscriber, shorter runs, no search or peer). */
export function fanoutOptions(env: NodeJS.ProcessEnv): FanoutBenchOptions {
  const list = (name: string, fallback: number[]) => (env[name] === undefined ? fallback : env[name].split(",").filter(Boolean).map(Number));
  return {
    subscribers: 1000,
    topics: 20,
    rates: list("ANNALS_BENCH_FANOUT_RATES", [1000, 4000]),
    batchEvents: 1000,
    modes: (env.ANNALS_BENCH_FANOUT_MODES?.split(",") as FanoutBenchOptions["modes"] | undefined) ?? ["event", "events"],
    searchRates: list("ANNALS_BENCH_FANOUT_SEARCH_RATES", [250, 500, 750, 1000, 1500, 2000, 3000, 4000]),
    seconds: Number(env.ANNALS_BENCH_FANOUT_SECONDS ?? 10),
    p99TargetMs: 100,
    peer: env.ANNALS_BENCH_FANOUT_PEER !== "0",
    bare: env.ANNALS_BENCH_FANOUT_BARE !== "0",
    clientWindowBytes: env.ANNALS_BENCH_FANOUT_CLIENT_WINDOW ? Number(env.ANNALS_BENCH_FANOUT_CLIENT_WINDOW) : undefined,
  };
}

/** What one run at one rate measured. */
interface RunResult {
  rate: number;
  expected: number;
  delivered: number;
  p50: number;
  p99: number;
  max: number;
  /** Frames that carried the deliveries (annals only). */
  frames?: number;
  /** Streams the server ended during the run or while its backlog drained (slow consumers). */
  ended: number;
  /** The serving process's CPU seconds over the run, from the first append until every delivery arrived or 10 s after the last append. */
  cpuSeconds?: number;
  /** The run's duration in s, over which cpuSeconds was measured. */
  seconds?: number;
  /** Deliveries of the run until the streams fell quiet (its backlog delivered), and the CPU seconds of the serving process and of this process until then. */
  deliveredToQuiet?: number;
  cpuSecondsToQuiet?: number;
  benchCpuSecondsToQuiet?: number;
  /** Bytes of the frames that carried the run's deliveries (gRPC's 5-byte prefixes left out), per delivery. */
  bytesPerDelivery?: number;
  /** The whole machine's busy CPU seconds (every process, summed over the cores) over the same span. */
  machineCpuSeconds?: number;
  /** The log service's CPU seconds over the same span (annals only). */
  logCpuSeconds?: number;
  /** This process's CPU (the subscribers and the producer), in % of one core. */
  benchCpuPercent: number;
  /** The stream service's own view (annals only): the bucket bounds in ms under which half and 99% of the run's live deliveries were written, from its entry's sequencing. */
  serviceP50?: number;
  serviceP99?: number;
  /** The same for the hand-over of the run's entries to the subscribers' queues (annals.stream.fanout.latency): what the feed from the log service added. */
  handOverP50?: number;
  handOverP99?: number;
}

/** The most entries one AppendBatch takes. */
const MAX_BATCH_ENTRIES = 1000;

type Unary = (request: object, metadata: grpc.Metadata, callback: (error: grpc.ServiceError | null, response: unknown) => void) => void;

/**
 * A Subscribe response read only as far as its entries' seqs: a load
 * generator that decoded every payload would measure itself, not the server.
 * Returns the seq of an `event` frame, the seqs of an `events` frame, or 0n
 * for CaughtUp and Heartbeat.
 */
export function seqsOfFrame(bytes: Buffer): bigint | bigint[] {
  // SubscribeResponse field 1 (Event) → Event field 1 (Entry) → Entry field 2 (seq, varint).
  const event = lengthDelimited(bytes, 0, bytes.length, 1);
  if (event !== null) return seqOfEvent(bytes, event.start, event.end);
  // SubscribeResponse field 4 (EventBatch) → repeated field 1 (Event).
  const batch = lengthDelimited(bytes, 0, bytes.length, 4);
  if (batch === null) return 0n;
  const seqs: bigint[] = [];
  for (let offset = batch.start; offset < batch.end; ) {
    const next = lengthDelimited(bytes, offset, batch.end, 1);
    if (next === null) break;
    seqs.push(seqOfEvent(bytes, next.start, next.end));
    offset = next.end;
  }
  return seqs;
}

/** The seq of the Event in bytes[start, end); Entry's log_id (field 1) comes before it and is skipped. */
function seqOfEvent(bytes: Buffer, start: number, end: number): bigint {
  const entry = lengthDelimited(bytes, start, end, 1);
  if (entry === null) return 0n;
  for (let offset = entry.start; offset < entry.end; ) {
    const tag = varint(bytes, offset);
    offset = tag.next;
    const wireType = tag.value & 7;
    if (tag.value >>> 3 === 2 && wireType === 0) return BigInt(varint(bytes, offset).value);
    if (wireType === 0) offset = varint(bytes, offset).next;
    else if (wireType === 2) {
      const length = varint(bytes, offset);
      offset = length.next + length.value;
    } else return 0n;
  }
  return 0n;
}

/** The bounds of field `field` (length-delimited) when it is the first field in bytes[start, end). */
function lengthDelimited(bytes: Buffer, start: number, end: number, field: number): { start: number; end: number } | null {
  if (start >= end || bytes[start] !== ((field << 3) | 2)) return null;
  const length = varint(bytes, start + 1);
  return { start: length.next, end: length.next + length.value };
}

/**
 * A varint as a number (tags, lengths and the bench's seqs are far below
 * 2^53). Read with BigInt arithmetic, the seq of a 315-byte `event` frame
 * took 1.3–1.9 µs, beside the 17–18 µs the bench spends per delivery.
 */
function varint(bytes: Buffer, offset: number): { value: number; next: number } {
  let value = 0;
  for (let scale = 1; ; scale *= 128) {
    const byte = bytes[offset++]!;
    value += (byte & 0x7f) * scale;
    if (!(byte & 0x80)) return { value, next: offset };
  }
}

/** Bytes of the Subscribe responses the subscribers received (all sets, one set at a time). */
let frameBytes = 0;

function streamDefinition(): grpc.ServiceDefinition {
  const definition = grpcServiceDefinition(streamV1.StreamService) as Record<string, grpc.MethodDefinition<object, unknown>>;
  const responseDeserialize = (bytes: Buffer) => {
    frameBytes += bytes.length;
    return seqsOfFrame(bytes);
  };
  return { ...definition, subscribe: { ...definition["subscribe"]!, responseDeserialize } };
}

/** Latency samples of deliveries, in ms from the append's acknowledgement (or the NATS publish). */
class Deliveries {
  /** Counts only deliveries of entries from `firstSeq` on: those of this run. */
  constructor(private readonly firstSeq: bigint) {}

  readonly latencies: number[] = [];
  private readonly acked = new Map<bigint, number>();
  /** Deliveries that arrived before their append's acknowledgement did. */
  private readonly early = new Map<bigint, number[]>();
  count = 0;
  /** Frames that carried deliveries of this run (an `events` frame counts once). */
  frames = 0;

  ack(seq: bigint, at: number): void {
    this.acked.set(seq, at);
    const early = this.early.get(seq);
    if (early) {
      for (const received of early) this.latencies.push(Math.max(0, received - at));
      this.early.delete(seq);
    }
  }

  received(seq: bigint, at: number): void {
    if (seq < this.firstSeq) return;
    this.count++;
    const acked = this.acked.get(seq);
    if (acked !== undefined) this.latencies.push(at - acked);
    else {
      const early = this.early.get(seq);
      if (early) early.push(at);
      else this.early.set(seq, [at]);
    }
  }

  summary(rate: number, expected: number, ended: number): Omit<RunResult, "benchCpuPercent"> {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
    return { rate, expected, delivered: this.count, p50: q(0.5), p99: q(0.99), max: sorted.at(-1) ?? NaN, ended };
  }
}

function rssBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"))!;
  return Number(line.split(/\s+/)[1]) * 1024;
}

/**
 * The stream service's latency histograms from its /metrics, as cumulative
 * counts by bucket bound in s: `delivery` (annals.stream.delivery.latency,
 * sequencing to the write to a subscriber) and `handOver`
 * (annals.stream.fanout.latency, sequencing to the subscribers' queues).
 * Empty before the first live delivery.
 */
async function latencyBuckets(httpPort: number): Promise<{ delivery: Map<number, number>; handOver: Map<number, number> }> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const found = { delivery: new Map<number, number>(), handOver: new Map<number, number>() };
  for (const line of text.split("\n")) {
    const match = /^annals_stream_(delivery|fanout)_latency(?:_seconds)?_bucket\{.*le="([^"]+)".*\} (\d+)/.exec(line);
    if (match) found[match[1] === "delivery" ? "delivery" : "handOver"].set(match[2] === "+Inf" ? Infinity : Number(match[2]), Number(match[3]));
  }
  return found;
}

/** The bound in ms of the first bucket holding the fraction q of what was recorded between two readings (Infinity: past the last bound). */
function bucketQuantileMs(before: Map<number, number>, after: Map<number, number>, q: number): number {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const total = (after.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  for (const bound of bounds) if ((after.get(bound) ?? 0) - (before.get(bound) ?? 0) >= q * total) return bound * 1000;
  return Infinity;
}

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Calls `tick(count)` every 10 ms so that `rate` items per second go out over `seconds`. */
async function paced(rate: number, seconds: number, tick: (count: number, first: number) => void): Promise<void> {
  const start = now();
  let sent = 0;
  const total = rate * seconds;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((now() - start) / 1000) * rate));
    if (due > sent) {
      tick(due - sent, sent);
      sent = due;
    }
    await sleep(10);
  }
}

export async function streamFanout(options: FanoutBenchOptions): Promise<void> {
  const database = await createBenchDatabase("stream");
  const services: ServiceProcess[] = [];
  const nats = await connectNats({ servers: process.env.ANNALS_BENCH_NATS_URL ?? "127.0.0.1:4222" });
  console.log(
    `stream-fanout: ${options.subscribers} subscribers over ${options.topics} patterns (evt.t0.> … evt.t${options.topics - 1}.>), entries spread\n` +
      `evenly over the ${options.topics} topics at fixed rates for ${options.seconds} s each. annals: the log service and the stream service\n` +
      `as their own processes on PostgreSQL database ${database.name}, entries appended with AppendBatch every 10 ms, subscribers as\n` +
      `grpc-js Subscribe streams in the bench process (10 channels, HTTP/2 receive window ${options.clientWindowBytes === undefined ? "grpc-js's default of 64 KiB" : `${options.clientWindowBytes} bytes (ANNALS_BENCH_FANOUT_CLIENT_WINDOW)`}),\n` +
      "reading only each frame's seqs; one set asking for plain `event`\n" +
      `frames, one for \`events\` frames (max_events_per_frame ${options.batchEvents}). Baseline in the same run: the same\n` +
      "subscribers (`event` frames) on a bare grpc-js server process that encodes each published entry once, in a frame of the same\n" +
      "shape, and writes it to the matching streams (bench/src/bare-fanout.ts: no log, no database, no flow control of its own). Peer:\n" +
      "NATS core on 127.0.0.1:4222, the same subscriptions and publish rates, subscribers in the bench process. Latency: from the\n" +
      "append's acknowledgement (baseline and NATS: the publish call) to delivery. CPU in % of one core: the server's (the stream\n" +
      "service's or the baseline's, and its CPU time per delivery), and the bench process's " +
      "(subscribers and producer; on this 2-core machine they share the cores with the services and PostgreSQL); machine: every\n" +
      "process's (/proc/stat) over the run's window, in % of all the cores. bytes/event: what the subscribers received, per delivery.\n",
  );
  try {
    const env = { DATABASE_URL: database.url, ANNALS_AUTH_JWT_SECRET: BENCH_SECRET, ANNALS_LOG_LEVEL: "info" };
    const logService = await startServiceProcess({ script: LOG_SERVICE_SCRIPT, env });
    services.push(logService);
    // ANNALS_BENCH_PROFILE_DIR: write a CPU profile of the stream service there (node --cpu-prof).
    const profileDir = process.env.ANNALS_BENCH_PROFILE_DIR;
    // ANNALS_BENCH_STREAM_SERVICE_SCRIPT: another build's stream service (to measure two versions with the same bench).
    const streamMain = process.env.ANNALS_BENCH_STREAM_SERVICE_SCRIPT ?? fileURLToPath(new URL("../../services/stream/dist/main.js", import.meta.url));
    const streamService = await startServiceProcess({
      command: [process.execPath, ...(profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : []), streamMain],
      env: { ...env, ANNALS_LOG_URL: `http://127.0.0.1:${logService.grpcPort}`, ANNALS_LOG_TOKEN: await benchToken(["log.read", "log.write", "log.relay"]), ANNALS_STREAM_MAX_PER_USER: String(options.subscribers) },
    });
    services.push(streamService);
    const producer = producerOf(logService, await benchToken(["admin"]));
    const annalsStreams = annalsTarget(streamService, logService, producer, options.topics);
    const fanout = options.subscribers / options.topics;
    const header = [
      "system",
      "entries/s",
      "deliveries/s",
      "expected",
      "delivered",
      "p50 ms",
      "p99 ms",
      "max ms",
      "hand-over p50/p99 ≤ ms†",
      "service p50/p99 ≤ ms†",
      "streams ended",
      "server CPU %",
      "CPU µs/delivery*",
      "events/frame",
      "bytes/event",
      "bench CPU %",
      "bench µs/delivery*",
      "log service CPU %",
      `machine CPU % of ${availableParallelism()} cores`,
    ];
    // Two kinds of subscriber, one set at a time: plain `event` frames (what a client that did not opt in gets), and
    // clients that asked for `events` frames (max_events_per_frame), which carry everything queued for a subscriber at once.
    const modes = [
      { label: "annals, event frames", maxEventsPerFrame: 0 },
      { label: `annals, events ≤${options.batchEvents}`, maxEventsPerFrame: options.batchEvents },
    ].filter((mode) => options.modes.includes(mode.maxEventsPerFrame === 0 ? "event" : "events"));
    const rows = new Map<number, string[][]>(options.rates.map((rate) => [rate, []]));
    const search: string[][] = [];
    let best: RunResult | undefined;
    let memory = "";
    for (const mode of modes) {
      const annals = await subscriberSet(annalsStreams, options, mode.maxEventsPerFrame);
      memory ||=
        `\nstream service memory: ${(annals.rssIdle / 2 ** 20).toFixed(1)} MiB RSS with no subscriber, ${(annals.rssSubscribed / 2 ** 20).toFixed(1)} MiB with ` +
        `${options.subscribers} connected: ${((annals.rssSubscribed - annals.rssIdle) / options.subscribers / 1024).toFixed(1)} KiB per subscriber.`;
      for (const rate of options.rates) rows.get(rate)!.push(row(mode.label, await measured(() => annals.run(rate, options.seconds)), fanout));
      if (mode.maxEventsPerFrame > 0) {
        for (const rate of options.searchRates) {
          const result = await measured(() => annals.run(rate, options.seconds));
          search.push(row(mode.label, result, fanout));
          if (result.p99 < options.p99TargetMs && result.delivered === result.expected) best = result;
          else break;
        }
      }
      await annals.close();
    }
    if (options.bare) {
      const server = await startBenchServer("bare-grpc-fanout");
      const bare = bareTarget(server, options.topics);
      try {
        const subscribers = await subscriberSet(bare, options, 0);
        for (const rate of options.rates) rows.get(rate)!.push(row("bare grpc-js (baseline)", await measured(() => subscribers.run(rate, options.seconds)), fanout));
        await subscribers.close();
      } finally {
        bare.close();
        await server.stop();
      }
    }
    if (options.peer) {
      const peer = await natsSide(nats, options);
      for (const rate of options.rates) rows.get(rate)!.push(row("NATS core (peer)", await measured(() => peer.run(rate, options.seconds)), fanout));
      await peer.close();
    }
    producer.close();
    console.log(formatTable(header, [...rows.values()].flat()));
    console.log("* CPU time per delivery counted until the run's backlog was delivered (the streams fell quiet), not only over its window.");
    console.log(
      "† The stream service's own histograms (from its /metrics), as the bucket bounds that half and 99% of the run's live entries fell under,\n" +
        "  both from the entry's sequencing in the log service (before its commit and ack): hand-over (annals.stream.fanout.latency) to the\n" +
        "  subscribers' queues in the stream service, so what the log service and its feed took; service (annals.stream.delivery.latency) to\n" +
        "  the frame's write to the subscriber's HTTP/2 stream. What the subscribers' p50/p99 add was spent between that write and the\n" +
        "  subscriber process.",
    );
    console.log(memory);
    if (search.length > 0) {
      console.log(`\nHighest rate with p99 under ${options.p99TargetMs} ms and every event delivered, subscribers asking for events frames (rates tried in order, stopping at the first miss):`);
      console.log(formatTable(header, search));
      console.log(best ? `→ ${best.rate} entries/s, ${best.rate * fanout} deliveries/s.` : "→ none of the rates tried.");
    }
    // What the services said about trouble during the runs (feed reconnects, failures).
    for (const service of services) {
      const notes = service.output().split("\n").filter((line) => /"level":(3|4|5)\d/.test(line) && !/"msg":"listening"/.test(line));
      if (notes.length > 0) console.log(`\n${notes.length} log lines of pid ${service.pid} at info or above besides startup, the first ones:\n${notes.slice(0, 5).join("\n")}`);
    }
  } finally {
    await nats.close();
    for (const service of services.reverse()) await service.stop();
    await database.drop();
  }
}

/** Runs one rate and adds this process's CPU use over it. */
async function measured(run: () => Promise<Omit<RunResult, "benchCpuPercent">>): Promise<RunResult> {
  const cpu = process.cpuUsage();
  const started = now();
  const result = await run();
  const used = process.cpuUsage(cpu);
  return { ...result, benchCpuPercent: ((used.user + used.system) / 1000 / (now() - started)) * 100 };
}

/** CPU µs per delivery, to the end of the run's backlog. */
function perDelivery(cpuSeconds: number | undefined, delivered: number | undefined): string {
  return cpuSeconds === undefined || !delivered ? "" : ((cpuSeconds * 1e6) / delivered).toFixed(1);
}

function row(system: string, result: RunResult, fanout: number): string[] {
  return [
    system,
    String(result.rate),
    String(result.rate * fanout),
    String(result.expected),
    String(result.delivered),
    result.p50.toFixed(1),
    result.p99.toFixed(1),
    result.max.toFixed(1),
    result.handOverP99 === undefined ? "" : `${result.handOverP50}/${result.handOverP99}`,
    result.serviceP99 === undefined ? "" : `${result.serviceP50}/${result.serviceP99}`,
    String(result.ended),
    result.cpuSeconds === undefined || !result.seconds ? "" : ((result.cpuSeconds / result.seconds) * 100).toFixed(0),
    perDelivery(result.cpuSecondsToQuiet, result.deliveredToQuiet),
    result.frames ? (result.delivered / result.frames).toFixed(2) : "",
    result.bytesPerDelivery === undefined ? "" : result.bytesPerDelivery.toFixed(0),
    result.benchCpuPercent.toFixed(0),
    perDelivery(result.benchCpuSecondsToQuiet, result.deliveredToQuiet),
    result.logCpuSeconds === undefined || !result.seconds ? "" : ((result.logCpuSeconds / result.seconds) * 100).toFixed(0),
    result.machineCpuSeconds === undefined || !result.seconds ? "" : ((result.machineCpuSeconds / result.seconds / availableParallelism()) * 100).toFixed(0),
  ];
}

/** The producer of the annals side: AppendBatch calls to the log service, and the last seq appended. */
function producerOf(logService: ServiceProcess, token: string) {
  const auth = new grpc.Metadata();
  auth.set("authorization", `Bearer ${token}`);
  const LogClient = grpc.makeGenericClientConstructor(grpcServiceDefinition(logV1.LogService), "LogService");
  const log = new LogClient(`127.0.0.1:${logService.grpcPort}`, grpc.credentials.createInsecure()) as unknown as Record<string, Unary> & { close(): void };
  return {
    auth,
    /** Appends entries; resolves with each one's seq. */
    appendBatch(entries: object[]): Promise<bigint[]> {
      return new Promise((resolve, reject) =>
        log.appendBatch!.call(log, { logId: "fanout", entries }, auth, (error, response) => {
          if (error) reject(error);
          else resolve((response as logV1.AppendBatchResponse).results.map((result) => result.seq));
        }),
      );
    },
    close: () => log.close(),
  };
}

/** What a set of subscribers is measured against: the annals services, or the bare grpc-js baseline. */
interface FanoutTarget {
  grpcPort: number;
  /** The process that serves the streams, whose CPU is measured. */
  pid: number;
  /** Sent with every call (the annals token). */
  auth: grpc.Metadata;
  /** The last seq published; a stream opened (again) resumes after it, with no snapshot. */
  appended: bigint;
  /** Publishes entries `first` … `first + count - 1` of a run (entry i of topic i mod topics); resolves with their seqs once acknowledged. */
  publish(first: number, count: number): Promise<bigint[]>;
  /** The stream service's HTTP port (its latency histograms on /metrics) and the log service's pid; undefined for the baseline. */
  annals?: { httpPort: number; logPid: number };
}

/** The annals services as a target: entries appended with AppendBatch, streams from the stream service. */
function annalsTarget(streamService: ServiceProcess, logService: ServiceProcess, producer: ReturnType<typeof producerOf>, topics: number): FanoutTarget {
  return {
    grpcPort: streamService.grpcPort,
    pid: streamService.pid,
    auth: producer.auth,
    appended: 0n,
    publish: (first, count) =>
      producer.appendBatch(Array.from({ length: count }, (_, i) => ({ kind: `evt.t${(first + i) % topics}.happened`, body: { case: "payload" as const, value: { n: first + i } } }))),
    annals: { httpPort: streamService.httpPort, logPid: logService.pid },
  };
}

/** The bare grpc-js baseline (bare-fanout.ts) as a target. */
function bareTarget(server: BenchServer, topics: number): FanoutTarget & { close(): void } {
  const client = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
  const { path, requestSerialize, responseDeserialize } = PUBLISH_METHOD;
  return {
    grpcPort: server.grpcPort,
    pid: server.pid,
    auth: new grpc.Metadata(),
    appended: 0n,
    publish: (first, count) =>
      new Promise((resolve, reject) =>
        client.makeUnaryRequest(path, requestSerialize, responseDeserialize, { first, count, topics }, (error, response) => {
          if (error || !response) return reject(error ?? new Error("no response"));
          const seqs: bigint[] = [];
          for (let seq = BigInt(response.firstSeq); seq <= BigInt(response.lastSeq); seq++) seqs.push(seq);
          resolve(seqs);
        }),
      ),
    close: () => client.close(),
  };
}

/** `options.subscribers` grpc-js Subscribe streams to `target`, and runs at a rate measured through them. */
async function subscriberSet(target: FanoutTarget, options: FanoutBenchOptions, maxEventsPerFrame: number) {
  const auth = target.auth;
  const StreamClient = grpc.makeGenericClientConstructor(streamDefinition(), "StreamService");
  // Distinct channel options keep the channels from sharing one connection (and those of one subscriber set from the other's).
  const channelOptions = (i: number) => ({
    "annals.bench.channel": `${maxEventsPerFrame}-${i}`,
    ...(options.clientWindowBytes === undefined ? {} : { "grpc-node.flow_control_window": options.clientWindowBytes }),
  });
  const channels = Array.from({ length: 10 }, (_, i) => new StreamClient(`127.0.0.1:${target.grpcPort}`, grpc.credentials.createInsecure(), channelOptions(i)) as unknown as {
    subscribe(request: object, metadata: grpc.Metadata): grpc.ClientReadableStream<bigint | bigint[]>;
    close(): void;
  });
  const rssIdle = rssBytes(target.pid);
  let current = new Deliveries(1n);
  let ended = 0;
  let ready = 0;
  // Subscriber i follows pattern i mod topics; one ended by the server (a slow consumer) is opened again before the next run.
  const calls: (grpc.ClientReadableStream<bigint | bigint[]> | undefined)[] = [];
  let lastReceivedAt = now();
  const open = (i: number) => {
    const call = channels[i % channels.length]!.subscribe({ logId: "fanout", kinds: [`evt.t${i % options.topics}.>`], afterSeq: target.appended, maxEventsPerFrame }, auth);
    let first = true;
    call.on("data", (seqs: bigint | bigint[]) => {
      if (first) {
        first = false;
        ready++;
      }
      lastReceivedAt = now();
      if (typeof seqs !== "bigint") {
        current.frames++;
        for (const seq of seqs) current.received(seq, lastReceivedAt);
      } else if (seqs > 0n) {
        current.frames++;
        current.received(seqs, lastReceivedAt);
      }
    });
    call.on("error", () => {
      ended++;
      calls[i] = undefined;
    });
    calls[i] = call;
  };
  /** Opens the streams that are not open and waits until each has its first frame. */
  const openAll = async () => {
    // Counted from the slots, not with calls.filter: filter skips the holes of the first call's empty array, which
    // counted every stream ready at once, so the first run started while they were still subscribing and those
    // joining late read the log from seq 1 (a catch-up Read per stream).
    ready = 0;
    for (let i = 0; i < options.subscribers; i++) if (calls[i]) ready++;
    for (let i = 0; i < options.subscribers; i++) if (!calls[i]) open(i);
    while (ready < options.subscribers) await sleep(50);
  };
  await openAll();
  await sleep(500);
  const rssSubscribed = rssBytes(target.pid);
  const run = async (rate: number, seconds: number) => {
    // Every stream open again (those the previous run's backlog ended resume with no snapshot).
    await openAll();
    current = new Deliveries(target.appended + 1n);
    target.appended += BigInt(rate * seconds);
    const endedBefore = ended;
    const deliveries = current;
    const bytesBefore = frameBytes;
    const cpuBefore = processCpuSeconds(target.pid);
    const machineBefore = machineBusySeconds();
    const logCpuBefore = target.annals && processCpuSeconds(target.annals.logPid);
    const benchCpuBefore = process.cpuUsage();
    const latencyBefore = target.annals && (await latencyBuckets(target.annals.httpPort));
    const started = now();
    const appends: Promise<void>[] = [];
    await paced(rate, seconds, (count, first) => {
      // A tick that came late (the bench process starved on a loaded machine) owes more than one AppendBatch may carry.
      for (let from = first; from < first + count; from += MAX_BATCH_ENTRIES) {
        appends.push(
          target.publish(from, Math.min(MAX_BATCH_ENTRIES, first + count - from)).then((seqs) => {
            const at = now();
            for (const seq of seqs) deliveries.ack(seq, at);
          }),
        );
      }
    });
    await Promise.all(appends);
    const expected = rate * seconds * (options.subscribers / options.topics);
    const deadline = now() + 10_000;
    while (deliveries.count < expected && now() < deadline) await sleep(50);
    const elapsed = (now() - started) / 1000;
    const used = processCpuSeconds(target.pid) - cpuBefore;
    const machineUsed = machineBusySeconds() - machineBefore;
    const logUsed = target.annals && processCpuSeconds(target.annals.logPid) - logCpuBefore!;
    const result = deliveries.summary(rate, expected, 0);
    const frames = deliveries.frames;
    // The run ends quiet: its backlog delivered or given up (within a minute); streams it ended count for it.
    for (const deadline = now() + 60_000; now() - lastReceivedAt < 1000 && now() < deadline; ) await sleep(100);
    // Per delivery, CPU counts to the end of the backlog: what a run queued but delivered after its window cost CPU too.
    const benchToQuiet = process.cpuUsage(benchCpuBefore);
    const perDelivery = {
      deliveredToQuiet: deliveries.count,
      cpuSecondsToQuiet: processCpuSeconds(target.pid) - cpuBefore,
      benchCpuSecondsToQuiet: (benchToQuiet.user + benchToQuiet.system) / 1e6,
      bytesPerDelivery: deliveries.count > 0 ? (frameBytes - bytesBefore) / deliveries.count : undefined,
    };
    let serviceLatency = {};
    if (target.annals) {
      const latencyAfter = await latencyBuckets(target.annals.httpPort);
      if (latencyAfter.delivery.size === 0 || latencyAfter.handOver.size === 0) throw new Error("the stream service's /metrics lacks its latency histograms after a run");
      serviceLatency = {
        serviceP50: bucketQuantileMs(latencyBefore!.delivery, latencyAfter.delivery, 0.5),
        serviceP99: bucketQuantileMs(latencyBefore!.delivery, latencyAfter.delivery, 0.99),
        handOverP50: bucketQuantileMs(latencyBefore!.handOver, latencyAfter.handOver, 0.5),
        handOverP99: bucketQuantileMs(latencyBefore!.handOver, latencyAfter.handOver, 0.99),
      };
    }
    return { ...result, ...perDelivery, ...serviceLatency, frames, ended: ended - endedBefore, cpuSeconds: used, machineCpuSeconds: machineUsed, seconds: elapsed, logCpuSeconds: logUsed };
  };
  return {
    run,
    rssIdle,
    rssSubscribed,
    /** Cancels the streams and waits until the stream service has let them go (its feed stops with the last). */
    close: async () => {
      for (const call of calls) call?.cancel();
      for (const channel of channels) channel.close();
      await sleep(1000);
    },
  };
}

async function natsSide(nats: NatsConnection, options: FanoutBenchOptions) {
  const scope = `annals_bench_${process.pid}`;
  let current = new Deliveries(1n);
  const decoder = new TextDecoder();
  // One connection per 100 subscribers, as the annals side spreads its streams over channels.
  const connections = await Promise.all(Array.from({ length: 10 }, () => connectNats({ servers: process.env.ANNALS_BENCH_NATS_URL ?? "127.0.0.1:4222" })));
  for (let i = 0; i < options.subscribers; i++) {
    connections[i % connections.length]!.subscribe(`${scope}.evt.t${i % options.topics}.>`, {
      callback: (_error, message) => current.received(BigInt(decoder.decode(message.data).split(",", 1)[0]!), now()),
    });
  }
  await Promise.all(connections.map((connection) => connection.flush()));
  let seq = 0n;
  const run = async (rate: number, seconds: number) => {
    current = new Deliveries(seq + 1n);
    const deliveries = current;
    const started = now();
    const machineBefore = machineBusySeconds();
    await paced(rate, seconds, (count, first) => {
      const at = now();
      for (let i = 0; i < count; i++) {
        seq++;
        deliveries.ack(seq, at);
        nats.publish(`${scope}.evt.t${(first + i) % options.topics}.happened`, `${seq},{"n":${first + i}}`);
      }
    });
    await nats.flush();
    const expected = rate * seconds * (options.subscribers / options.topics);
    const deadline = now() + 10_000;
    while (deliveries.count < expected && now() < deadline) await sleep(50);
    return { ...deliveries.summary(rate, expected, 0), machineCpuSeconds: machineBusySeconds() - machineBefore, seconds: (now() - started) / 1000 };
  };
  return { run, close: () => Promise.all(connections.map((connection) => connection.close())) };
}
