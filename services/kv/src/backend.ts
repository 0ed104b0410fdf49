// The one interface the KV service's handlers code against, whichever store
// holds the data (postgres-backend.ts, memory-backend.ts, redis-backend.ts),
// and the semantics the backends that are not Redis implement in TypeScript.
import { Code } from "@connectrpc/connect";
import { invalidArgument, rpcError } from "@annals/runtime";

export type BackendName = "postgres" | "memory" | "redis";

/** A value with its expiry: ms since the epoch on the backend's clock, or null for none. */
export interface Stored {
  value: Uint8Array;
  expiresAtMs: number | null;
}

export type SetCondition = "always" | "ifAbsent" | "ifPresent";

export interface SetOptions {
  /** Time to live in ms; 0: no expiry (and any old TTL is cleared unless keepTtl). */
  ttlMs: number;
  condition: SetCondition;
  keepTtl: boolean;
  /** Report the previous value (Redis SET … GET). */
  returnPrevious: boolean;
}

export interface SetOutcome {
  written: boolean;
  /** The value before the call; undefined when absent or not asked for. */
  previous: Uint8Array | undefined;
}

export interface ScanEntry {
  key: Uint8Array;
  value?: Uint8Array;
}

export interface ScanPage {
  entries: ScanEntry[];
  /** Empty when the scan is complete. */
  nextCursor: Uint8Array;
}

/**
 * Where the atomic helpers keep their state, apart from the keys clients
 * read and write: `lock` "a" and the plain key "a" never collide.
 */
export type StateSpace = "rate" | "lock" | "idempotency" | "seen";

/** What a state transition decided: its result, and how the stored state changes. */
export interface Transition<R> {
  result: R;
  /** The new state with its absolute expiry, or "delete"; omitted: unchanged. */
  write?: Stored | "delete";
}

/**
 * Decides a transition from the current state (undefined when absent or
 * expired) and the backend's clock. Pure and synchronous: a backend may run
 * it more than once when it retries after a conflict.
 */
export type Decide<R> = (current: Stored | undefined, nowMs: number) => Transition<R>;

/**
 * A KV store. Keys and values are bytes; TTLs are ms and expired keys are
 * absent on every read. Callers validate input (key sizes, TTL signs,
 * duplicates in batches) before calling.
 */
export interface KvBackend {
  readonly name: BackendName;
  /** What the backend supports, as GetInfo reports it. */
  readonly supports: { readonly ttl: boolean; readonly scan: boolean; readonly batch: boolean };
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  /** Values in the order of `keys`. */
  mget(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]>;
  exists(key: Uint8Array): Promise<boolean>;
  set(key: Uint8Array, value: Uint8Array, options: SetOptions): Promise<SetOutcome>;
  /** Writes every pair in one atomic step; `entries` has distinct keys. */
  mset(entries: readonly (readonly [Uint8Array, Uint8Array])[], ttlMs: number): Promise<void>;
  /** Deletes distinct keys; returns how many were present. */
  delete(keys: readonly Uint8Array[]): Promise<number>;
  /** Remaining ms; -2 missing, -1 no expiry (Redis PTTL). */
  ttl(key: Uint8Array): Promise<number>;
  /** Sets the TTL of a present key (ttlMs ≤ 0 deletes it); false when absent. */
  expire(key: Uint8Array, ttlMs: number): Promise<boolean>;
  /** Redis INCRBY: throws notAnInteger() or incrementOverflows(). */
  incrBy(key: Uint8Array, delta: bigint): Promise<bigint>;
  /** Keys with `prefix`, after `cursor` (empty: from the start), at most `limit`. */
  scan(prefix: Uint8Array, cursor: Uint8Array, limit: number, includeValues: boolean): Promise<ScanPage>;
  /** Runs `decide` on one helper state and applies its write atomically. */
  transact<R>(space: StateSpace, key: Uint8Array, decide: Decide<R>): Promise<R>;
  /** Deletes expired keys now (the postgres and memory backends also do it on a timer); returns how many. */
  sweep(): Promise<number>;
  close(): Promise<void>;
}

/** FAILED_PRECONDITION: Incr on a value that is not a decimal 64-bit integer. */
export function notAnInteger(): Error {
  return rpcError(Code.FailedPrecondition, "the value is not a decimal 64-bit integer, so it cannot be incremented", {
    reason: "VALUE_NOT_INTEGER",
  });
}

/** OUT_OF_RANGE: an increment whose result leaves the 64-bit range (it never wraps). */
export function incrementOverflows(): Error {
  return rpcError(Code.OutOfRange, "the increment would take the value outside the signed 64-bit range; nothing was changed", {
    reason: "INCREMENT_OVERFLOW",
  });
}

/** INVALID_ARGUMENT for a cursor that no Scan of this prefix handed out. */
export function badCursor(why: string): Error {
  return invalidArgument("cursor", `not a cursor of a scan of this prefix (${why}); start again with an empty cursor`);
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const REDIS_INTEGER = /^(0|-?[1-9][0-9]*)$/;

/** Parses a value as Redis does for INCR: decimal, no '+', spaces or leading zeros; undefined otherwise. */
export function parseRedisInteger(value: Uint8Array): bigint | undefined {
  if (value.length === 0 || value.length > 20) return undefined;
  const text = Buffer.from(value).toString("latin1");
  if (!REDIS_INTEGER.test(text)) return undefined;
  const parsed = BigInt(text);
  return parsed < INT64_MIN || parsed > INT64_MAX ? undefined : parsed;
}

/** The Incr transition shared by the backends that are not Redis. */
export function decideIncr(current: Stored | undefined, delta: bigint): Transition<bigint> {
  const base = current === undefined ? 0n : parseRedisInteger(current.value);
  if (base === undefined) throw notAnInteger();
  const next = base + delta;
  if (next < INT64_MIN || next > INT64_MAX) throw incrementOverflows();
  return {
    result: next,
    write: { value: Buffer.from(next.toString(), "latin1"), expiresAtMs: current?.expiresAtMs ?? null }
  };
}

/** The Set transition (conditions, KEEPTTL, GET) shared by the backends that are not Redis. */
export function decideSet(current: Stored | undefined, nowMs: number, value: Uint8Array, options: SetOptions): Transition<SetOutcome> {
  const previous = options.returnPrevious ? current?.value : undefined;
  const holds = options.condition === "always" || (options.condition === "ifAbsent") === (current === undefined);
  if (!holds) return { result: { written: false, previous } };
  const expiresAtMs = options.keepTtl ? (current?.expiresAtMs ?? null) : options.ttlMs > 0 ? nowMs + options.ttlMs : null;
  return { result: { written: true, previous }, write: { value, expiresAtMs } };
}

/** Whether a stored value is live at `nowMs`. */
export function isLive(stored: Stored, nowMs: number): boolean {
  return stored.expiresAtMs === null || stored.expiresAtMs > nowMs;
}

/**
 * The smallest byte string greater than every key starting with `prefix`,
 * or undefined when there is none (an empty prefix, or only 0xff bytes):
 * a prefix scan is then the range [prefix, bound).
 */
export function prefixUpperBound(prefix: Uint8Array): Uint8Array | undefined {
  let end = prefix.length;
  while (end > 0 && prefix[end - 1] === 0xff) end--;
  if (end === 0) return undefined;
  const bound = Uint8Array.from(prefix.subarray(0, end));
  bound[end - 1]! += 1;
  return bound;
}

/** Whether `key` starts with `prefix`. */
export function hasPrefix(key: Uint8Array, prefix: Uint8Array): boolean {
  return key.length >= prefix.length && Buffer.from(prefix).equals(key.subarray(0, prefix.length));
}
