// The redis backend: every operation is the Redis command of the same name on
// `<prefix>k:<key>`; the helpers' state lives under `<prefix>s:<space>:<key>`
// and changes by compare-and-set (a Lua script), on the Redis server's clock.
import { createHash } from "node:crypto";
import { Redis, ReplyError } from "ioredis";
import { unavailable } from "@annals/runtime";
import {
  badCursor,
  hasPrefix,
  incrementOverflows,
  notAnInteger,
  type Decide,
  type KvBackend,
  type ScanEntry,
  type ScanPage,
  type SetOptions,
  type StateSpace,
} from "./backend.js";

/** Reads a state, its remaining TTL and the server's clock in one step. */
const READ_STATE = `return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1]), redis.call('TIME')}`;

/**
 * Replaces a state only if it is still the one the transition was decided on
 * (ARGV[1] = "1" and the value ARGV[2], or ARGV[1] = "0": absent). ARGV[3] is
 * "del", or the new value's expiry as a Unix time in ms ("0": none) with the
 * value in ARGV[4]. Returns 1 when applied.
 */
const COMPARE_AND_SET = `
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current then
  return 0
end
if ARGV[3] == 'del' then
  redis.call('DEL', KEYS[1])
elseif ARGV[3] == '0' then
  redis.call('SET', KEYS[1], ARGV[4])
else
  redis.call('SET', KEYS[1], ARGV[4], 'PXAT', ARGV[3])
end
return 1`;

/** Compare-and-set attempts before a transition gives up under contention. */
const MAX_ATTEMPTS = 1000;

type ScriptedRedis = Redis & {
  annalsReadState(key: Buffer): Promise<[Buffer | null, string, [string, string]]>;
  annalsCompareAndSet(key: Buffer, ...args: (Buffer | string)[]): Promise<string>;
};

export interface RedisBackendOptions {
  /** redis://host:port/db */
  url: string;
  /** Prepended to every key, so that several deployments can share a server. Default "annals:kv:". */
  keyPrefix?: string;
}

export class RedisBackend implements KvBackend {
  readonly name = "redis";
  readonly supports = { ttl: true, scan: true, batch: true };
  private readonly redis: ScriptedRedis;
  private readonly entryPrefix: Buffer;
  private readonly statePrefix: string;

  private constructor(redis: Redis, keyPrefix: string) {
    redis.defineCommand("annalsReadState", { numberOfKeys: 1, lua: READ_STATE });
    redis.defineCommand("annalsCompareAndSet", { numberOfKeys: 1, lua: COMPARE_AND_SET });
    this.redis = redis as ScriptedRedis;
    this.entryPrefix = Buffer.from(`${keyPrefix}k:`);
    this.statePrefix = `${keyPrefix}s:`;
  }

  /** Connects, and fails when the server does not answer. */
  static async connect(options: RedisBackendOptions): Promise<RedisBackend> {
    const redis = new Redis(options.url, {
      lazyConnect: true,
      // Integer replies as strings: Incr results span the whole 64-bit range.
      stringNumbers: true,
      maxRetriesPerRequest: 2,
      connectTimeout: 5000,
    });
    // Connection errors reach the callers of the commands; without a listener ioredis logs each to stderr.
    redis.on("error", () => {});
    try {
      await redis.connect();
    } catch (error) {
      redis.disconnect();
      throw new Error(`cannot reach Redis at ${describeRedisUrl(options.url)}: ${(error as Error).message}`);
    }
    return new RedisBackend(redis, options.keyPrefix ?? "annals:kv:");
  }

  private entryKey(key: Uint8Array): Buffer {
    return Buffer.concat([this.entryPrefix, key]);
  }

  /** Runs a command; a lost connection becomes UNAVAILABLE, a Redis error is left to the caller. */
  private async run<T>(command: Promise<T>): Promise<T> {
    try {
      return await command;
    } catch (error) {
      if (error instanceof ReplyError) throw error;
      throw unavailable(`the KV store (Redis) is unreachable: ${(error as Error).message}`, { reason: "KV_BACKEND_UNAVAILABLE" }, 1000);
    }
  }

  async get(key: Uint8Array) {
    return (await this.run(this.redis.getBuffer(this.entryKey(key)))) ?? undefined;
  }

  async mget(keys: readonly Uint8Array[]) {
    const values = await this.run(this.redis.mgetBuffer(keys.map((key) => this.entryKey(key))));
    return values.map((value) => value ?? undefined);
  }

  async exists(key: Uint8Array) {
    return Number(await this.run(this.redis.exists(this.entryKey(key)))) > 0;
  }

  async set(key: Uint8Array, value: Uint8Array, options: SetOptions) {
    const args: (Buffer | string | number)[] = [this.entryKey(key), Buffer.from(value)];
    if (options.condition === "ifAbsent") args.push("NX");
    if (options.condition === "ifPresent") args.push("XX");
    if (options.returnPrevious) args.push("GET");
    if (options.keepTtl) args.push("KEEPTTL");
    else if (options.ttlMs > 0) args.push("PX", options.ttlMs);
    const reply = (await this.run(this.redis.callBuffer("SET", ...args))) as Buffer | null;
    if (!options.returnPrevious) return { written: reply !== null, previous: undefined };
    // With GET the reply is the previous value; whether SET wrote follows from the condition.
    const previous = reply ?? undefined;
    const written = options.condition === "always" || (options.condition === "ifAbsent") === (previous === undefined);
    return { written, previous };
  }

  async mset(entries: readonly (readonly [Uint8Array, Uint8Array])[], ttlMs: number) {
    if (ttlMs <= 0) {
      await this.run(this.redis.mset(entries.flatMap(([key, value]) => [this.entryKey(key), Buffer.from(value)])));
      return;
    }
    const transaction = this.redis.multi();
    for (const [key, value] of entries) transaction.set(this.entryKey(key), Buffer.from(value), "PX", ttlMs);
    const results = await this.run(transaction.exec());
    const failed = results?.find(([error]) => error);
    if (!results || failed) throw failed?.[0] ?? new Error("MULTI was discarded");
  }

  async delete(keys: readonly Uint8Array[]) {
    return Number(await this.run(this.redis.del(keys.map((key) => this.entryKey(key)))));
  }

  async ttl(key: Uint8Array) {
    return Number(await this.run(this.redis.pttl(this.entryKey(key))));
  }

  async expire(key: Uint8Array, ttlMs: number) {
    return Number(await this.run(this.redis.pexpire(this.entryKey(key), ttlMs))) === 1;
  }

  async incrBy(key: Uint8Array, delta: bigint) {
    try {
      return BigInt(await this.run(this.redis.incrby(this.entryKey(key), delta.toString())));
    } catch (error) {
      const message = error instanceof ReplyError ? (error as Error).message : "";
      if (/not an integer/.test(message)) throw notAnInteger();
      if (/overflow/.test(message)) throw incrementOverflows();
      throw error;
    }
  }

  /**
   * Redis SCAN over `<prefix>k:<prefix>*`. A page ends where the limit falls,
   * possibly inside one SCAN batch: the cursor then holds that batch's SCAN
   * cursor and the last key returned, and the next page runs the same SCAN
   * step again and skips the keys up to that one (a batch is sorted). SCAN
   * returns every key present for the whole scan at least once, and so
   * does this; keys are in byte order within a page.
   */
  async scan(prefix: Uint8Array, cursor: Uint8Array, limit: number, includeValues: boolean): Promise<ScanPage> {
    let { scanCursor, after } = decodeScanCursor(cursor, prefix);
    const pattern = Buffer.concat([this.entryPrefix, escapeGlob(prefix), Buffer.from("*")]);
    const keys: Buffer[] = [];
    let nextCursor: Uint8Array = new Uint8Array();
    for (;;) {
      const [next, found] = (await this.run(this.redis.callBuffer("SCAN", scanCursor, "MATCH", pattern, "COUNT", Math.max(limit, 100)))) as [Buffer, Buffer[]];
      const batch = [...new Set(found.map((key) => key.subarray(this.entryPrefix.length).toString("latin1")))]
        .map((key) => Buffer.from(key, "latin1"))
        .filter((key) => after === undefined || Buffer.compare(key, after) > 0)
        .sort(Buffer.compare);
      after = undefined;
      const room = limit - keys.length;
      if (batch.length > room) {
        keys.push(...batch.slice(0, room));
        nextCursor = encodeScanCursor(prefix, scanCursor, keys.at(-1)!);
        break;
      }
      keys.push(...batch);
      scanCursor = next.toString();
      if (scanCursor === "0") break;
      if (keys.length === limit) {
        nextCursor = encodeScanCursor(prefix, scanCursor);
        break;
      }
    }
    // A page may gather several SCAN steps, each sorted on its own: sort the page
    // (the cursor was taken above from the last step, which is what resuming needs).
    keys.sort(Buffer.compare);
    let entries: ScanEntry[] = keys.map((key) => ({ key }));
    if (includeValues && keys.length > 0) {
      const values = await this.mget(keys);
      // A key deleted since SCAN saw it was not present for the whole scan: leave it out.
      entries = keys.flatMap((key, i) => (values[i] === undefined ? [] : [{ key, value: values[i] }]));
    }
    return { entries, nextCursor };
  }

  async transact<R>(space: StateSpace, key: Uint8Array, decide: Decide<R>): Promise<R> {
    const stateKey = Buffer.concat([Buffer.from(`${this.statePrefix}${space}:`), key]);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const [value, pttl, [seconds, micros]] = await this.run(this.redis.annalsReadState(stateKey));
      const nowMs = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
      const remaining = Number(pttl);
      const current = value === null ? undefined : { value, expiresAtMs: remaining >= 0 ? nowMs + remaining : null };
      const { result, write } = decide(current, nowMs);
      if (write === undefined) return result;
      const expected = value === null ? ["0", ""] : ["1", value];
      const change = write === "delete" ? ["del"] : [String(write.expiresAtMs ?? 0), Buffer.from(write.value)];
      const applied = await this.run(this.redis.annalsCompareAndSet(stateKey, ...expected, ...change));
      if (Number(applied) === 1) return result;
    }
    throw unavailable(`the KV state of this key changed ${MAX_ATTEMPTS} times while being updated; retry`, { reason: "KV_CONTENTION" }, 10);
  }

  async sweep() {
    // Redis deletes expired keys itself.
    return 0;
  }

  async close() {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

/** SCAN MATCH treats `* ? [ ] \` specially; a prefix matches itself literally. */
function escapeGlob(prefix: Uint8Array): Buffer {
  const out: number[] = [];
  for (const byte of prefix) {
    if ("*?[]\\".includes(String.fromCharCode(byte))) out.push(0x5c);
    out.push(byte);
  }
  return Buffer.from(out);
}

/**
 * A page's cursor: `<SCAN cursor>.<digest of the prefix>\n<last key>`, the
 * last key only when the page ended inside a SCAN batch. The digest ties the
 * cursor to its prefix, since a SCAN cursor alone would fit any prefix.
 */
function encodeScanCursor(prefix: Uint8Array, scanCursor: string, after?: Uint8Array): Uint8Array {
  return Buffer.concat([Buffer.from(`${scanCursor}.${prefixDigest(prefix)}\n`), after ?? new Uint8Array()]);
}

function decodeScanCursor(cursor: Uint8Array, prefix: Uint8Array): { scanCursor: string; after: Buffer | undefined } {
  if (cursor.length === 0) return { scanCursor: "0", after: undefined };
  const buffer = Buffer.from(cursor);
  const newline = buffer.indexOf(0x0a);
  const match = /^([0-9]{1,20})\.([0-9a-f]{16})$/.exec(newline > 0 ? buffer.subarray(0, newline).toString("latin1") : "");
  if (!match) throw badCursor("malformed");
  const after = buffer.subarray(newline + 1);
  if (match[2] !== prefixDigest(prefix) || (after.length > 0 && !hasPrefix(after, prefix))) throw badCursor("it belongs to another prefix");
  return { scanCursor: match[1]!, after: after.length > 0 ? after : undefined };
}

function prefixDigest(prefix: Uint8Array): string {
  return createHash("sha256").update(prefix).digest("hex").slice(0, 16);
}

/** The URL without its password, for messages. */
function describeRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.password = "";
    return parsed.toString();
  } catch {
    return "(unparseable URL)";
  }
}
