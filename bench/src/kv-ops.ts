// The KV service under load, on each backend: the standalone service process
// (services/kv/dist/main.js, JWT auth) driven by grpc-js clients from this
// process, against two baselines measured in the same run: DiagService.Ping
// on the same server (the RPC floor), and the backend called directly from
// this process (`pg` with the statements the postgres backend runs, ioredis
// GET/SET, the MemoryBackend object) — the storage floor. Then lock
// contention: many callers taking one lock in turn, compared across the
// three backends in the same run.
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { Redis } from "ioredis";
import pg from "pg";
import { MemoryBackend } from "@annals/kv";
import { diagV1, kvV1 } from "@annals/proto";
import { grpcServiceDefinition } from "@annals/runtime";
import { startServiceProcess, type ServiceProcess } from "@annals/runtime/testing";
import { createBenchDatabase } from "./bench-database.js";
import { BENCH_SECRET, benchToken } from "./bench-token.js";
import { runLoad, type LoadResult } from "./load.js";
import { formatTable } from "./table.js";

export interface KvBenchOptions {
  concurrency: number;
  durationMs: number;
  warmupMs: number;
  /** Keys preloaded and then read and written at random. */
  keys: number;
  valueBytes: number;
  /** Callers that contend for one lock in the lock cell; default 100. */
  lockContenders?: number;
  /** How many times each contender takes the lock; default 1. */
  lockAcquisitionsEach?: number;
  /** Lock contention rounds per backend; default 3. */
  lockRounds?: number;
}

type Backend = "postgres" | "redis" | "memory";
const BACKENDS: Backend[] = ["postgres", "redis", "memory"];
type Unary = (request: object, metadata: grpc.Metadata, callback: (error: grpc.ServiceError | null, response: unknown) => void) => void;
type Stub = Record<string, Unary> & { close(): void };

const KvClient = grpc.makeGenericClientConstructor(grpcServiceDefinition(kvV1.KvService), "KvService");
const DiagClient = grpc.makeGenericClientConstructor(grpcServiceDefinition(diagV1.DiagService), "DiagService");
const auth = new grpc.Metadata();

function unary<R = unknown>(client: Stub, method: string, request: object): Promise<R> {
  return new Promise((resolve, reject) => client[method]!.call(client, request, auth, (error, response) => (error ? reject(error) : resolve(response as R))));
}

/** The postgres backend's Get and Set (no TTL, no condition) statements, as pg runs them without the service. */
const PG_GET = "select kv.get_value($1) as value";
const PG_SET = `insert into kv.entries as e (key, value, expires_at_ms) values ($1, $2, case when $3::bigint > 0 then kv.now_ms() + $3::bigint end)
  on conflict (key) do update set value = excluded.value, expires_at_ms = excluded.expires_at_ms`;

export async function kvOps(options: KvBenchOptions): Promise<void> {
  const redisUrl = process.env.ANNALS_BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
  const redisPrefix = `annals-bench:${process.pid}:`;
  const database = await createBenchDatabase("kv");
  const redis = new Redis(redisUrl);
  auth.set("authorization", `Bearer ${await benchToken(["admin"])}`);
  const value = randomBytes(options.valueBytes);
  const keyOf = (i: number) => Buffer.from(`bench:${i}`);
  const randomKey = () => keyOf(Math.floor(Math.random() * options.keys));
  console.log(
    `kv-ops: the kv service process (services/kv/dist/main.js, JWT auth) on each backend — PostgreSQL database ${database.name} at ${database.host},\n` +
      `Redis at ${redisUrl} (prefix ${redisPrefix}), memory; grpc-js clients in the bench process over one HTTP/2 connection.\n` +
      `${options.keys} keys preloaded with ${options.valueBytes}-byte values; Get and Set of random keys; closed loop, ${options.concurrency} callers,\n` +
      `${options.durationMs} ms per cell after ${options.warmupMs} ms warm-up, the five cells of a backend taking turns in ${SLICES} slices (p50 and p99:\n` +
      "the median slice's). Baselines in the same run: Ping = DiagService.Ping (no-op unary)\n" +
      "on the same server; direct = the backend called from the bench process (pg pool of 10 connections, as the service's, with the\n" +
      "backend's own statements; ioredis on one connection; the MemoryBackend object). ratios = calls/s ÷ baseline calls/s.\n",
  );
  const contenders = options.lockContenders ?? 100;
  const acquisitionsEach = options.lockAcquisitionsEach ?? 1;
  const lockRounds = options.lockRounds ?? 3;
  const rows: string[][] = [];
  const pool = new pg.Pool({ connectionString: database.url, max: 10 });
  const memory = new MemoryBackend();
  const running = new Map<Backend, { service: ServiceProcess; kv: Stub; diag: Stub }>();
  try {
    for (const backend of BACKENDS) {
      const service = await startServiceProcess({
        script: fileURLToPath(new URL("../../services/kv/dist/main.js", import.meta.url)),
        env: { DATABASE_URL: database.url, ANNALS_AUTH_JWT_SECRET: BENCH_SECRET, ANNALS_KV_BACKEND: backend, REDIS_URL: redisUrl, ANNALS_KV_REDIS_PREFIX: redisPrefix },
      });
      const address = `127.0.0.1:${service.grpcPort}`;
      running.set(backend, {
        service,
        kv: new KvClient(address, grpc.credentials.createInsecure()) as unknown as Stub,
        diag: new DiagClient(address, grpc.credentials.createInsecure()) as unknown as Stub,
      });
    }
    for (const backend of BACKENDS) {
      const { kv, diag } = running.get(backend)!;
      for (let first = 0; first < options.keys; first += 1000) {
        const entries = Array.from({ length: Math.min(1000, options.keys - first) }, (_, i) => ({ key: keyOf(first + i), value }));
        await unary(kv, "mSet", { entries });
      }
      const direct = directCalls(backend, pool, redis, redisPrefix, memory);
      if (backend === "memory") await Promise.all(Array.from({ length: options.keys }, (_, i) => direct.set(keyOf(i), value)));
      const { ping, get, set, directGet, directSet } = await interleaved(
        {
          ping: () => unary(diag, "ping", { data: new Uint8Array(0) }),
          get: () => unary(kv, "get", { key: randomKey() }),
          set: () => unary(kv, "set", { key: randomKey(), value }),
          directGet: () => direct.get(randomKey()),
          directSet: () => direct.set(randomKey(), value),
        },
        options,
      );
      const row = (call: string, result: LoadResult, directRate: number | undefined) => [
        backend,
        call,
        result.callsPerSecond.toFixed(0),
        result.p50Ms.toFixed(2),
        result.p99Ms.toFixed(2),
        String(result.errors),
        (result.callsPerSecond / ping.callsPerSecond).toFixed(2),
        directRate === undefined ? "" : (result.callsPerSecond / directRate).toFixed(2),
      ];
      rows.push(
        row("Ping (baseline)", ping, undefined),
        row("Get", get, directGet.callsPerSecond),
        row("Set", set, directSet.callsPerSecond),
        row("direct get (baseline)", directGet, directGet.callsPerSecond),
        row("direct set (baseline)", directSet, directSet.callsPerSecond),
      );
    }
    console.log(formatTable(["backend", "call", "calls/s", "p50 ms", "p99 ms", "errors", "÷ Ping", "÷ direct"], rows));

    // Rounds alternate between the backends, so that a slow moment of a shared machine does not fall on one backend only.
    const lockRuns = new Map<Backend, LockContention[]>(BACKENDS.map((backend) => [backend, []]));
    for (let round = 0; round < lockRounds; round++) {
      for (const backend of BACKENDS) {
        const key = Buffer.from(`bench:lock:${round}`);
        lockRuns.get(backend)!.push(await lockContention(running.get(backend)!.kv, key, contenders, acquisitionsEach));
      }
    }
    console.log(
      `\nLock contention: ${contenders} callers on one key, each taking the lock ${acquisitionsEach} time(s): AcquireLock (ttl 10 s),\n` +
        "again at once while refused, ReleaseLock as soon as it holds it; time until every caller is done. The same service processes\n" +
        `as above; ${lockRounds} rounds, the backends taking turns; the median round of each backend, with every round's seconds.\n` +
        "÷ redis, ÷ memory = this backend's median time ÷ that backend's in this run (lower is faster).\n",
    );
    const medians = new Map([...lockRuns].map(([backend, runs]) => [backend, median(runs)]));
    const lockRow = (backend: Backend) => {
      const run = medians.get(backend)!;
      return [
        backend,
        (run.ms / 1000).toFixed(2),
        lockRuns.get(backend)!.map((r) => (r.ms / 1000).toFixed(2)).join(" "),
        String(run.calls),
        String(run.acquired),
        (run.calls / (run.ms / 1000)).toFixed(0),
        run.p50Ms.toFixed(2),
        run.p99Ms.toFixed(2),
        String(lockRuns.get(backend)!.reduce((sum, r) => sum + r.errors, 0)),
        (run.ms / medians.get("redis")!.ms).toFixed(2),
        (run.ms / medians.get("memory")!.ms).toFixed(2),
      ];
    };
    console.log(
      formatTable(
        ["backend", "median s", "rounds s", "AcquireLock calls", "acquired", "calls/s", "p50 ms", "p99 ms", "errors", "÷ redis", "÷ memory"],
        BACKENDS.map(lockRow),
      ),
    );
  } finally {
    for (const { service, kv, diag } of running.values()) {
      kv.close();
      diag.close();
      await service.stop();
    }
    await pool.end();
    await clearPrefix(redis, redisPrefix);
    redis.disconnect();
    await database.drop();
  }
}

interface LockContention {
  ms: number;
  /** AcquireLock calls made, and how many of them got the lock. */
  calls: number;
  acquired: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
}

/**
 * `contenders` callers each take the lock on `key` `acquisitionsEach` times:
 * AcquireLock, again at once while refused, then ReleaseLock as soon as it is
 * held. Checks that the fencing numbers grow with every acquisition, as the
 * contract says.
 */
async function lockContention(kv: Stub, key: Buffer, contenders: number, acquisitionsEach: number): Promise<LockContention> {
  const latencies: number[] = [];
  const fencings: bigint[] = [];
  let errors = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: contenders }, async () => {
      for (let held = 0; held < acquisitionsEach && errors < 100; ) {
        const before = performance.now();
        try {
          const lock = await unary<kvV1.AcquireLockResponse>(kv, "acquireLock", { key, ttlMs: 10_000n });
          latencies.push(performance.now() - before);
          if (!lock.acquired) continue;
          held++;
          fencings.push(BigInt(lock.fencing));
          await unary(kv, "releaseLock", { key, token: lock.token });
        } catch {
          errors++;
        }
      }
    }),
  );
  const ms = performance.now() - started;
  // A lock is acquired only after the previous holder's release, so completion order is acquisition order.
  if (fencings.some((fencing, i) => i > 0 && fencing <= fencings[i - 1]!)) throw new Error("lock contention: fencing numbers did not increase");
  latencies.sort((a, b) => a - b);
  const quantile = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  return { ms, calls: latencies.length, acquired: fencings.length, errors, p50Ms: quantile(0.5), p99Ms: quantile(0.99) };
}

/** Slices each call's time is cut into (see interleaved). */
const SLICES = 6;

/**
 * Closed-loop load on each call in turn, SLICES times for durationMs/SLICES
 * each (after one warm-up of each), so that a change in the load of a shared
 * machine falls on every call alike. Per call: calls/s over all its slices,
 * the median slice's p50 and p99.
 */
async function interleaved<K extends string>(calls: Record<K, () => Promise<unknown>>, options: KvBenchOptions): Promise<Record<K, LoadResult>> {
  const named = Object.entries(calls) as [K, () => Promise<unknown>][];
  const slices = new Map<K, LoadResult[]>(named.map(([name]) => [name, []]));
  for (const [, call] of named) await runLoad(call, options.concurrency, 0, options.warmupMs);
  for (let slice = 0; slice < SLICES; slice++) {
    for (const [name, call] of named) slices.get(name)!.push(await runLoad(call, options.concurrency, options.durationMs / SLICES, 0));
  }
  const combined = (results: LoadResult[]): LoadResult => {
    const total = results.reduce((sum, r) => sum + r.calls, 0);
    const seconds = results.reduce((sum, r) => sum + (r.calls > 0 ? r.calls / r.callsPerSecond : 0), 0);
    const middle = (pick: (r: LoadResult) => number) => results.map(pick).sort((a, b) => a - b)[Math.floor(results.length / 2)]!;
    return {
      calls: total,
      warmupCalls: 0,
      errors: results.reduce((sum, r) => sum + r.errors, 0),
      callsPerSecond: seconds > 0 ? total / seconds : 0,
      p50Ms: middle((r) => r.p50Ms),
      p99Ms: middle((r) => r.p99Ms),
    };
  };
  return Object.fromEntries([...slices].map(([name, results]) => [name, combined(results)])) as Record<K, LoadResult>;
}

/** The run of median duration. */
function median(runs: LockContention[]): LockContention {
  return [...runs].sort((a, b) => a.ms - b.ms)[Math.floor(runs.length / 2)]!;
}

function directCalls(backend: Backend, pool: pg.Pool, redis: Redis, prefix: string, memory: MemoryBackend) {
  switch (backend) {
    case "postgres":
      return { get: (key: Buffer) => pool.query(PG_GET, [key]), set: (key: Buffer, value: Buffer) => pool.query(PG_SET, [key, value, 0]) };
    case "redis":
      return { get: (key: Buffer) => redis.getBuffer(prefix + "k:" + key.toString()), set: (key: Buffer, value: Buffer) => redis.set(prefix + "k:" + key.toString(), value) };
    case "memory":
      return {
        get: (key: Buffer) => memory.get(key),
        set: (key: Buffer, value: Buffer) => memory.set(key, value, { ttlMs: 0, condition: "always", keepTtl: false, returnPrevious: false }),
      };
  }
}

async function clearPrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
    if (keys.length > 0) await redis.del(keys);
    cursor = next;
  } while (cursor !== "0");
}
