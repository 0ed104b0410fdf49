// Ergonomic helpers on top of the KV service's atomic RPCs: a cache read that
// computes a missing value once for all concurrent callers, once-only
// execution under an idempotency key, webhook de-duplication and rate limits.
import { Code, ConnectError } from "@connectrpc/connect";
import { kvV1 } from "@annals/proto";
import type { KvClient } from "./clients.js";
import { sleep } from "@annals/runtime/retry";

/** A key as text (UTF-8) or bytes. */
export type KvKey = string | Uint8Array;

/** How a helper stores a value of type T as bytes. */
export interface Codec<T> {
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

/** JSON as UTF-8: the default codec. */
export const jsonCodec: Codec<unknown> = {
  encode: (value) => new TextEncoder().encode(JSON.stringify(value)),
  decode: (bytes) => JSON.parse(new TextDecoder().decode(bytes)),
};

const keyBytes = (key: KvKey) => (typeof key === "string" ? new TextEncoder().encode(key) : key);
/** Polls start at this delay and double up to MAX_POLL_MS. */
const FIRST_POLL_MS = 10;
const MAX_POLL_MS = 200;

export interface GuardedGetOptions<T> {
  /** How long the computed value stays cached, in ms; 0 keeps it without expiry. */
  ttlMs: number;
  /**
   * How long one caller may compute before another takes over, in ms
   * (default 10000). Waiting callers wait at most this long for a value.
   */
  lockTtlMs?: number;
  /** Default: JSON. */
  codec?: Codec<T>;
}

/**
 * Reads a cached value; when it is missing, exactly one caller (the holder
 * of a lock on the key) computes and stores it while the others wait for
 * it. A waiter whose holder's lock expires (the holder died or overran)
 * takes the lock itself. The lock is released by its owner only, with its
 * owner token, so a slow holder never releases a lock another caller took.
 */
export async function guardedGet<T>(kv: KvClient, key: KvKey, compute: () => Promise<T>, options: GuardedGetOptions<T>): Promise<T> {
  const k = keyBytes(key);
  const codec = options.codec ?? (jsonCodec as Codec<T>);
  const lockTtlMs = BigInt(options.lockTtlMs ?? 10_000);
  let pollMs = FIRST_POLL_MS;
  for (;;) {
    const cached = await kv.get({ key: k });
    if (cached.found) return codec.decode(cached.value);
    const lock = await kv.acquireLock({ key: k, ttlMs: lockTtlMs });
    if (lock.acquired) {
      try {
        // The previous holder may have stored the value between our Get and our lock.
        const stored = await kv.get({ key: k });
        if (stored.found) return codec.decode(stored.value);
        const value = await compute();
        await kv.set({ key: k, value: codec.encode(value), ttlMs: BigInt(options.ttlMs) });
        return value;
      } finally {
        await kv.releaseLock({ key: k, token: lock.token }).catch(() => {});
      }
    }
    await sleep(Math.min(pollMs, Math.max(1, Number(lock.retryAfterMs))));
    pollMs = Math.min(pollMs * 2, MAX_POLL_MS);
  }
}

export interface IdempotentOptions<T> {
  /** The idempotency key, e.g. the Idempotency-Key header. */
  key: KvKey;
  /** A digest of the request: the same key with another fingerprint is refused (ALREADY_EXISTS, reason IDEMPOTENCY_KEY_CONFLICT). */
  fingerprint: string;
  /** How long the claim, then the stored response, are kept, in ms. */
  ttlMs: number;
  /** Most time to wait for another caller's run of the same key, in ms; default ttlMs. */
  maxWaitMs?: number;
  /** Default: JSON. */
  codec?: Codec<T>;
}

export interface IdempotentResult<T> {
  status: number;
  body: T;
  /** True when the response is a stored one, not computed by this call. */
  replayed: boolean;
}

/**
 * Runs `compute` once per idempotency key: the first caller runs it and
 * stores its response with its status; callers meanwhile wait for it, and
 * later callers get the stored response, marked as replayed. If `compute`
 * throws, the claim is given up so that a retry may run it again.
 */
export async function idempotentExecute<T>(
  kv: KvClient,
  options: IdempotentOptions<T>,
  compute: () => Promise<{ status: number; body: T }>,
): Promise<IdempotentResult<T>> {
  const key = keyBytes(options.key);
  const codec = options.codec ?? (jsonCodec as Codec<T>);
  const ttlMs = BigInt(options.ttlMs);
  const deadline = Date.now() + (options.maxWaitMs ?? options.ttlMs);
  let pollMs = FIRST_POLL_MS;
  for (;;) {
    const begin = await kv.beginIdempotent({ key, fingerprint: options.fingerprint, ttlMs });
    if (begin.state === kvV1.IdempotencyState.COMPLETED) {
      const stored = begin.response!;
      return { status: stored.status, body: codec.decode(stored.body), replayed: true };
    }
    if (begin.state === kvV1.IdempotencyState.NEW) {
      let response: { status: number; body: T };
      try {
        response = await compute();
      } catch (error) {
        await kv.abortIdempotent({ key, token: begin.token }).catch(() => {});
        throw error;
      }
      await kv.completeIdempotent({ key, token: begin.token, response: { status: response.status, body: codec.encode(response.body) } });
      return { ...response, replayed: false };
    }
    if (Date.now() >= deadline) {
      throw new ConnectError("another caller is still running the request under this idempotency key; retry later", Code.Aborted);
    }
    await sleep(Math.min(pollMs, Math.max(1, Number(begin.retryAfterMs)), Math.max(1, deadline - Date.now())));
    pollMs = Math.min(pollMs * 2, MAX_POLL_MS);
  }
}

/**
 * Whether an event (a webhook delivery id) was processed before; if not, it
 * is marked as processed for `ttlMs`, in the same atomic step.
 */
export async function alreadyProcessed(kv: KvClient, eventId: KvKey, ttlMs: number): Promise<boolean> {
  return (await kv.alreadyProcessed({ eventId: keyBytes(eventId), ttlMs: BigInt(ttlMs) })).alreadyProcessed;
}

export interface RateLimitOptions {
  /** Uses allowed per window. */
  limit: number;
  windowMs: number;
  /** Default "sliding": never more than `limit` uses in any window_ms. */
  algorithm?: "fixed" | "sliding" | "gcra";
  /** Uses this call consumes; default 1. */
  cost?: number;
}

export interface RateLimitDecision {
  allowed: boolean;
  count: number;
  limit: number;
  remaining: number;
  /** When refused: ms until a use of this cost would be allowed. */
  retryAfterMs: number;
  resetAfterMs: number;
}

const ALGORITHMS = {
  fixed: kvV1.RateLimitAlgorithm.FIXED_WINDOW,
  sliding: kvV1.RateLimitAlgorithm.SLIDING_WINDOW,
  gcra: kvV1.RateLimitAlgorithm.GCRA,
} as const;

/** Counts one use of `key` against a limit, atomically on the server. */
export async function rateLimit(kv: KvClient, key: KvKey, options: RateLimitOptions): Promise<RateLimitDecision> {
  const decision = await kv.rateLimit({
    key: keyBytes(key),
    limit: BigInt(options.limit),
    windowMs: BigInt(options.windowMs),
    algorithm: ALGORITHMS[options.algorithm ?? "sliding"],
    cost: BigInt(options.cost ?? 1),
  });
  return {
    allowed: decision.allowed,
    count: Number(decision.count),
    limit: Number(decision.limit),
    remaining: Number(decision.remaining),
    retryAfterMs: Number(decision.retryAfterMs),
    resetAfterMs: Number(decision.resetAfterMs),
  };
}
