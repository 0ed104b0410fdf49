// The redis backend: every operation is the Redis command of the same name on
// `<prefix>k:<key>`; the helpers' state lives under `<prefix>s:<space>:<key>`
// and changes by compare-and-set (a Lua script), on the Redis server's clock.
//
// Scan reads a sorted set of the keys, `<prefix>i:keys` (every member scored
// 0, so ZRANGE BYLEX orders them by their bytes), as the postgres and memory
// backends read their ordered keys: pages in byte order, the cursor the last
// key returned, every key present throughout returned exactly once. Redis's
// own SCAN cannot give that (issue 14: its cursor skipped and repeated keys
// while the table was resized). Every command that writes an entry is a Lua
// script that also brings the key's members up to date, so the index and the
// entries change in one atomic step. Keys that Redis expires leave a member
// behind: `<prefix>i:expiring` scores each key that has a TTL with its expiry,
// and the sweeper drops the members of keys past it; a Scan that meets such a
// member drops it too. Requires Redis 7.0 (PEXPIRETIME).
import { Redis, ReplyError } from "ioredis";
import { unavailable } from "@annals/runtime";
import {
  badCursor,
  hasPrefix,
  incrementOverflows,
  notAnInteger,
  prefixUpperBound,
  type Decide,
  type KvBackend,
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

/**
 * The Lua function every script that writes entries ends with. KEYS[1] is
 * the key index, KEYS[2] the expiry index; `track(entry, member)` makes the
 * member of entry key `entry` (its name without the prefix) match what the
 * entry now is: in the key index while it exists, in the expiry index scored
 * with its expiry (ms since the epoch) while it has one. Returns true when
 * the entry is gone.
 */
const TRACK = `
local function track(entry, member)
  local expiresAt = redis.call('PEXPIRETIME', entry)
  if expiresAt == -2 then
    redis.call('ZREM', KEYS[1], member)
    redis.call('ZREM', KEYS[2], member)
    return true
  end
  redis.call('ZADD', KEYS[1], 0, member)
  if expiresAt == -1 then
    redis.call('ZREM', KEYS[2], member)
  else
    redis.call('ZADD', KEYS[2], expiresAt, member)
  end
  return false
end
`;

/** SET on KEYS[3] with the arguments ARGV[2…]; ARGV[1] is the member. Returns SET's reply. */
const SET_ENTRY = `${TRACK}
local reply = redis.call('SET', KEYS[3], unpack(ARGV, 2))
track(KEYS[3], ARGV[1])
return reply`;

/**
 * SET of KEYS[3…] to ARGV[3…] (KEYS[i] gets ARGV[i]), with a TTL of ARGV[2]
 * ms ("0": none); ARGV[1] is the length of the entry prefix.
 */
const SET_ENTRIES = `${TRACK}
local cut = tonumber(ARGV[1]) + 1
for i = 3, #KEYS do
  if ARGV[2] == '0' then
    redis.call('SET', KEYS[i], ARGV[i])
  else
    redis.call('SET', KEYS[i], ARGV[i], 'PX', ARGV[2])
  end
  track(KEYS[i], string.sub(KEYS[i], cut))
end
return 'OK'`;

/** DEL of KEYS[3…]; ARGV[1] is the length of the entry prefix. Returns how many existed. */
const DELETE_ENTRIES = `${TRACK}
local deleted = redis.call('DEL', unpack(KEYS, 3))
local cut = tonumber(ARGV[1]) + 1
for i = 3, #KEYS do track(KEYS[i], string.sub(KEYS[i], cut)) end
return deleted`;

/** PEXPIRE KEYS[3] ARGV[2] (≤ 0 deletes); ARGV[1] is the member. Returns PEXPIRE's reply. */
const EXPIRE_ENTRY = `${TRACK}
local applied = redis.call('PEXPIRE', KEYS[3], ARGV[2])
track(KEYS[3], ARGV[1])
return applied`;

/**
 * INCRBY KEYS[3] ARGV[2]; ARGV[1] is the member. Returns the new value as
 * the stored string: a Lua number would round integers beyond 2^53.
 */
const INCRBY_ENTRY = `${TRACK}
redis.call('INCRBY', KEYS[3], ARGV[2])
track(KEYS[3], ARGV[1])
return redis.call('GET', KEYS[3])`;

/** Brings the members of entry keys KEYS[3…] up to date; ARGV[1] is the length of the entry prefix. */
const TRACK_ENTRIES = `${TRACK}
local cut = tonumber(ARGV[1]) + 1
for i = 3, #KEYS do track(KEYS[i], string.sub(KEYS[i], cut)) end
return #KEYS - 2`;

/**
 * One page of Scan from the key index: members between ARGV[2] and ARGV[3]
 * (ZRANGE BYLEX bounds), at most ARGV[4] of them live, values too when
 * ARGV[5] is "1"; the entry of member m is ARGV[1]..m. A member whose entry
 * is gone (expired) is dropped from both indexes on the way; at most ARGV[6]
 * members are looked at. Returns {keys, values, cursor}: the cursor is the
 * last member looked at, or "" when nothing follows.
 */
const SCAN_PAGE = `
local prefix, low, high = ARGV[1], ARGV[2], ARGV[3]
local limit, withValues, budget = tonumber(ARGV[4]), ARGV[5] == '1', tonumber(ARGV[6])
local keys, values, last = {}, {}, nil
local examined = 0
while #keys < limit and examined < budget do
  local wanted = math.min(limit - #keys, budget - examined)
  local batch = redis.call('ZRANGE', KEYS[1], low, high, 'BYLEX', 'LIMIT', 0, wanted)
  for _, member in ipairs(batch) do
    local value = false
    if withValues then
      value = redis.call('GET', prefix .. member)
    elseif redis.call('EXISTS', prefix .. member) == 1 then
      value = ''
    end
    if value then
      keys[#keys + 1] = member
      values[#values + 1] = value
    else
      redis.call('ZREM', KEYS[1], member)
      redis.call('ZREM', KEYS[2], member)
    end
    last = member
  end
  examined = examined + #batch
  if #batch < wanted then return {keys, values, ''} end
  low = '(' .. last
end
if #redis.call('ZRANGE', KEYS[1], low, high, 'BYLEX', 'LIMIT', 0, 1) == 0 then last = '' end
return {keys, values, last}`;

/**
 * Brings up to date the members of the entries whose expiry (their score in
 * the expiry index) has passed, at most ARGV[2] of them; the entry of member
 * m is ARGV[1]..m. The members of entries that are gone leave both indexes;
 * an entry that got a later expiry, or lost it, is re-scored or leaves the
 * expiry index. Returns how many members were looked at and how many
 * entries were gone.
 */
const SWEEP_EXPIRED = `${TRACK}
local now = redis.call('TIME')
local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local due = redis.call('ZRANGE', KEYS[2], '-inf', nowMs, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
local gone = 0
for _, member in ipairs(due) do
  if track(ARGV[1] .. member, member) then gone = gone + 1 end
end
return {#due, gone}`;

/** Members the sweeper looks at per script call, so that Redis is never blocked for long. */
const SWEEP_BATCH = 500;
/** Script calls per sweep at most; the next sweep goes on where this one stopped. */
const SWEEP_MAX_BATCHES = 200;
/** Members a Scan page may look at beyond its limit (dropping expired ones) before it returns a shorter page. */
const SCAN_EXTRA_BUDGET = 1000;

/** Compare-and-set attempts before a transition gives up under contention. */
const MAX_ATTEMPTS = 1000;

type Arg = Buffer | string | number;

type ScriptedRedis = Redis & {
  annalsReadState(key: Buffer): Promise<[Buffer | null, string, [string, string]]>;
  annalsCompareAndSet(key: Buffer, ...args: (Buffer | string)[]): Promise<string>;
  annalsSetEntryBuffer(index: string, expiring: string, entry: Buffer, member: Buffer, ...args: Arg[]): Promise<Buffer | null>;
  annalsSetEntries(keyCount: number, ...keysAndArgs: Arg[]): Promise<string>;
  annalsDeleteEntries(keyCount: number, ...keysAndArgs: Arg[]): Promise<string>;
  annalsExpireEntry(index: string, expiring: string, entry: Buffer, member: Buffer, ttlMs: number): Promise<string>;
  annalsIncrByEntry(index: string, expiring: string, entry: Buffer, member: Buffer, delta: string): Promise<string>;
  annalsTrackEntries(keyCount: number, ...keysAndArgs: Arg[]): Promise<string>;
  annalsScanPageBuffer(index: string, expiring: string, ...args: Arg[]): Promise<[Buffer[], Buffer[], Buffer]>;
  annalsSweepExpired(index: string, expiring: string, entryPrefix: Buffer, batch: number): Promise<[string, string]>;
};

/** Marks a key index that covers every entry, including those written before the index existed. */
const INDEX_COMPLETE = "1";

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
  /** The sorted set of every entry's key. */
  private readonly keyIndex: string;
  /** The sorted set of the keys that have a TTL, scored with their expiry. */
  private readonly expiryIndex: string;
  /** Set once the key index holds the entries written before it existed. */
  private readonly indexState: string;

  private constructor(redis: Redis, keyPrefix: string) {
    redis.defineCommand("annalsReadState", { numberOfKeys: 1, lua: READ_STATE });
    redis.defineCommand("annalsCompareAndSet", { numberOfKeys: 1, lua: COMPARE_AND_SET });
    redis.defineCommand("annalsSetEntry", { numberOfKeys: 3, lua: SET_ENTRY });
    redis.defineCommand("annalsSetEntries", { lua: SET_ENTRIES });
    redis.defineCommand("annalsDeleteEntries", { lua: DELETE_ENTRIES });
    redis.defineCommand("annalsExpireEntry", { numberOfKeys: 3, lua: EXPIRE_ENTRY });
    redis.defineCommand("annalsIncrByEntry", { numberOfKeys: 3, lua: INCRBY_ENTRY });
    redis.defineCommand("annalsTrackEntries", { lua: TRACK_ENTRIES });
    redis.defineCommand("annalsScanPage", { numberOfKeys: 2, lua: SCAN_PAGE });
    redis.defineCommand("annalsSweepExpired", { numberOfKeys: 2, lua: SWEEP_EXPIRED });
    this.redis = redis as ScriptedRedis;
    this.entryPrefix = Buffer.from(`${keyPrefix}k:`);
    this.statePrefix = `${keyPrefix}s:`;
    this.keyIndex = `${keyPrefix}i:keys`;
    this.expiryIndex = `${keyPrefix}i:expiring`;
    this.indexState = `${keyPrefix}i:state`;
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
    const backend = new RedisBackend(redis, options.keyPrefix ?? "annals:kv:");
    try {
      await backend.completeIndex();
    } catch (error) {
      redis.disconnect();
      throw new Error(`cannot index the keys on Redis at ${describeRedisUrl(options.url)} (Redis 7.0 or later is required): ${(error as Error).message}`);
    }
    return backend;
  }

  /**
   * Adds the entries written before the key index existed (by a version of
   * this service without it) to the index, once per key prefix. Writers
   * index their keys themselves meanwhile, and tracking reads each key's
   * current state, so running this alongside them, or twice, is harmless.
   */
  private async completeIndex(): Promise<void> {
    if ((await this.redis.get(this.indexState)) === INDEX_COMPLETE) return;
    const pattern = Buffer.concat([escapeGlob(this.entryPrefix), Buffer.from("*")]);
    let cursor = "0";
    do {
      const [next, keys] = (await this.redis.callBuffer("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)) as [Buffer, Buffer[]];
      if (keys.length > 0) await this.redis.annalsTrackEntries(keys.length + 2, this.keyIndex, this.expiryIndex, ...keys, this.entryPrefix.length);
      cursor = next.toString();
    } while (cursor !== "0");
    await this.redis.set(this.indexState, INDEX_COMPLETE);
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
    const args: Arg[] = [Buffer.from(value)];
    if (options.condition === "ifAbsent") args.push("NX");
    if (options.condition === "ifPresent") args.push("XX");
    if (options.returnPrevious) args.push("GET");
    if (options.keepTtl) args.push("KEEPTTL");
    else if (options.ttlMs > 0) args.push("PX", options.ttlMs);
    const reply = await this.run(this.redis.annalsSetEntryBuffer(this.keyIndex, this.expiryIndex, this.entryKey(key), Buffer.from(key), ...args));
    if (!options.returnPrevious) return { written: reply !== null, previous: undefined };
    // With GET the reply is the previous value; whether SET wrote follows from the condition.
    const previous = reply ?? undefined;
    const written = options.condition === "always" || (options.condition === "ifAbsent") === (previous === undefined);
    return { written, previous };
  }

  async mset(entries: readonly (readonly [Uint8Array, Uint8Array])[], ttlMs: number) {
    const keys = entries.map(([key]) => this.entryKey(key));
    const values = entries.map(([, value]) => Buffer.from(value));
    await this.run(this.redis.annalsSetEntries(keys.length + 2, this.keyIndex, this.expiryIndex, ...keys, this.entryPrefix.length, ttlMs, ...values));
  }

  async delete(keys: readonly Uint8Array[]) {
    const entries = keys.map((key) => this.entryKey(key));
    return Number(await this.run(this.redis.annalsDeleteEntries(entries.length + 2, this.keyIndex, this.expiryIndex, ...entries, this.entryPrefix.length)));
  }

  async ttl(key: Uint8Array) {
    return Number(await this.run(this.redis.pttl(this.entryKey(key))));
  }

  async expire(key: Uint8Array, ttlMs: number) {
    return Number(await this.run(this.redis.annalsExpireEntry(this.keyIndex, this.expiryIndex, this.entryKey(key), Buffer.from(key), ttlMs))) === 1;
  }

  async incrBy(key: Uint8Array, delta: bigint) {
    try {
      return BigInt(await this.run(this.redis.annalsIncrByEntry(this.keyIndex, this.expiryIndex, this.entryKey(key), Buffer.from(key), delta.toString())));
    } catch (error) {
      const message = error instanceof ReplyError ? (error as Error).message : "";
      if (/not an integer/.test(message)) throw notAnInteger();
      if (/overflow/.test(message)) throw incrementOverflows();
      throw error;
    }
  }

  /** A page of the key index from after `cursor` (the last key of the previous page), like the other backends. */
  async scan(prefix: Uint8Array, cursor: Uint8Array, limit: number, includeValues: boolean): Promise<ScanPage> {
    if (cursor.length > 0 && !hasPrefix(cursor, prefix)) throw badCursor("it does not start with the prefix");
    const low = cursor.length > 0 ? lexBound("(", cursor) : prefix.length > 0 ? lexBound("[", prefix) : "-";
    const bound = prefixUpperBound(prefix);
    const high = bound ? lexBound("(", bound) : "+";
    const [keys, values, next] = await this.run(
      this.redis.annalsScanPageBuffer(this.keyIndex, this.expiryIndex, this.entryPrefix, low, high, limit, includeValues ? "1" : "0", limit + SCAN_EXTRA_BUDGET),
    );
    return { entries: keys.map((key, i) => (includeValues ? { key, value: values[i]! } : { key })), nextCursor: next };
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

  /**
   * Redis deletes expired keys itself; this drops their members from the
   * indexes. Returns how many keys were gone.
   */
  async sweep() {
    let gone = 0;
    for (let batch = 0; batch < SWEEP_MAX_BATCHES; batch++) {
      const [looked, dropped] = await this.run(this.redis.annalsSweepExpired(this.keyIndex, this.expiryIndex, this.entryPrefix, SWEEP_BATCH));
      gone += Number(dropped);
      if (Number(looked) < SWEEP_BATCH) break;
    }
    return gone;
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

/** A ZRANGE BYLEX bound: "[" (inclusive) or "(" (exclusive) and the bytes. */
function lexBound(kind: "[" | "(", bytes: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(kind), bytes]);
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
