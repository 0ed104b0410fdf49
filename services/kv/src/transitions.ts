// The atomic helpers as pure state transitions: each takes the stored state
// and the backend's clock and says what to answer and what to store. The
// backend applies one transition atomically (KvBackend.transact), so the
// algorithms are written once for every backend and tested with a fake clock.
import { randomBytes } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { rpcError } from "@annals/runtime";
import type { Stored, Transition } from "./backend.js";

const encode = (state: object) => Buffer.from(JSON.stringify(state));
const decode = <T>(stored: Stored | undefined): T | undefined => (stored ? (JSON.parse(Buffer.from(stored.value).toString()) as T) : undefined);

/** An owner token: 128 random bits. */
export function newToken(): string {
  return randomBytes(16).toString("base64url");
}

// ---- Rate limits ----

export type RateAlgorithm = "fixed" | "sliding" | "gcra";

export interface RateLimitParams {
  limit: number;
  windowMs: number;
  /** 1 ≤ cost ≤ limit. */
  cost: number;
}

export interface RateLimitOutcome {
  allowed: boolean;
  count: number;
  limit: number;
  remaining: number;
  retryAfterMs: number;
  resetAfterMs: number;
}

/** Sub-windows per window of the sliding algorithm. */
export const SLIDING_BUCKETS = 20;

export function decideRateLimit(algorithm: RateAlgorithm, params: RateLimitParams) {
  switch (algorithm) {
    case "fixed":
      return (current: Stored | undefined, nowMs: number) => fixedWindow(current, nowMs, params);
    case "sliding":
      return (current: Stored | undefined, nowMs: number) => slidingWindow(current, nowMs, params);
    case "gcra":
      return (current: Stored | undefined, nowMs: number) => gcra(current, nowMs, params);
  }
}

/**
 * One counter per window [n·window, (n+1)·window), stored with the window's
 * end as its expiry, so a counter can never outlive its window.
 */
function fixedWindow(current: Stored | undefined, nowMs: number, { limit, windowMs, cost }: RateLimitParams): Transition<RateLimitOutcome> {
  const window = Math.floor(nowMs / windowMs);
  const windowEnd = (window + 1) * windowMs;
  const state = decode<{ window: number; count: number }>(current);
  const count = state?.window === window ? state.count : 0;
  const resetAfterMs = windowEnd - nowMs;
  if (count + cost > limit) {
    return { result: { allowed: false, count, limit, remaining: Math.max(0, limit - count), retryAfterMs: resetAfterMs, resetAfterMs } };
  }
  const counted = count + cost;
  return {
    result: { allowed: true, count: counted, limit, remaining: limit - counted, retryAfterMs: 0, resetAfterMs },
    write: { value: encode({ window, count: counted }), expiresAtMs: windowEnd },
  };
}

/**
 * Counts in sub-windows ("buckets") of window/SLIDING_BUCKETS ms. A use at
 * time t is allowed only if the uses in every bucket that overlaps
 * (t − window, t], plus this one, fit in the limit. The oldest bucket counts
 * whole even where it starts before t − window, so the count can only be
 * too high, never too low: no interval of one window ever holds more than
 * `limit` allowed uses, and a use may be refused up to one bucket early.
 */
function slidingWindow(current: Stored | undefined, nowMs: number, { limit, windowMs, cost }: RateLimitParams): Transition<RateLimitOutcome> {
  const bucketMs = Math.max(1, Math.floor(windowMs / SLIDING_BUCKETS));
  const bucketOf = (t: number) => Math.floor(t / bucketMs);
  /** The first time at which bucket b no longer overlaps the window ending then. */
  const leavesAt = (b: number) => (b + 1) * bucketMs + windowMs - 1;
  const oldest = bucketOf(nowMs - windowMs + 1);
  // Stored as [bucket, uses] pairs, oldest first; buckets that left the window are dropped.
  const buckets = (decode<[number, number][]>(current) ?? []).filter(([bucket]) => bucket >= oldest);
  const count = buckets.reduce((sum, [, uses]) => sum + uses, 0);
  if (count + cost > limit) {
    // Wait until enough of the oldest buckets have left the window.
    let left = count;
    let retryAt = nowMs;
    for (const [bucket, uses] of buckets) {
      left -= uses;
      retryAt = leavesAt(bucket);
      if (left + cost <= limit) break;
    }
    const resetAfterMs = leavesAt(buckets.at(-1)![0]) - nowMs;
    return { result: { allowed: false, count, limit, remaining: Math.max(0, limit - count), retryAfterMs: retryAt - nowMs, resetAfterMs } };
  }
  const now = bucketOf(nowMs);
  const last = buckets.at(-1);
  if (last?.[0] === now) last[1] += cost;
  else buckets.push([now, cost]);
  const counted = count + cost;
  const resetAt = leavesAt(now);
  return {
    result: { allowed: true, count: counted, limit, remaining: limit - counted, retryAfterMs: 0, resetAfterMs: resetAt - nowMs },
    write: { value: encode(buckets), expiresAtMs: resetAt },
  };
}

/**
 * The generic cell rate algorithm: uses are spaced window/limit ms apart on
 * average, with bursts of up to `limit`. The state is the theoretical arrival
 * time (TAT) of the next use; a use is allowed when, after it, the TAT is at
 * most one window ahead of now.
 */
function gcra(current: Stored | undefined, nowMs: number, { limit, windowMs, cost }: RateLimitParams): Transition<RateLimitOutcome> {
  const interval = windowMs / limit;
  const tat = Math.max(decode<{ tat: number }>(current)?.tat ?? nowMs, nowMs);
  const countAt = (t: number) => Math.ceil((t - nowMs) / interval - 1e-9);
  const nextTat = tat + cost * interval;
  if (nextTat - nowMs > windowMs) {
    const count = countAt(tat);
    return {
      result: {
        allowed: false,
        count,
        limit,
        remaining: Math.max(0, limit - count),
        retryAfterMs: Math.ceil(nextTat - windowMs - nowMs),
        resetAfterMs: Math.ceil(tat - nowMs),
      },
    };
  }
  const count = countAt(nextTat);
  return {
    result: { allowed: true, count, limit, remaining: Math.max(0, limit - count), retryAfterMs: 0, resetAfterMs: Math.ceil(nextTat - nowMs) },
    write: { value: encode({ tat: nextTat }), expiresAtMs: Math.ceil(nextTat) },
  };
}

// ---- Locks ----

interface LockState {
  token: string;
  fencing: number;
  heldUntilMs: number;
}

/**
 * How long a lock's record outlives the lock: long enough that fencing
 * numbers keep counting up through bursts of acquisitions; after that the
 * clock takes over (see decideAcquireLock).
 */
export const LOCK_RECORD_RETENTION_MS = 60_000;

export interface AcquireOutcome {
  acquired: boolean;
  token: string;
  fencing: number;
  retryAfterMs: number;
}

/**
 * Takes the lock if it is free or its holder's TTL passed. The fencing number
 * is the greater of the previous one plus 1 and the clock in ms, so it grows
 * with every acquisition even after the record of the last one expired.
 */
export function decideAcquireLock(ttlMs: number) {
  return (current: Stored | undefined, nowMs: number): Transition<AcquireOutcome> => {
    const state = decode<LockState>(current);
    if (state && state.heldUntilMs > nowMs) {
      return { result: { acquired: false, token: "", fencing: 0, retryAfterMs: state.heldUntilMs - nowMs } };
    }
    const next: LockState = { token: newToken(), fencing: Math.max((state?.fencing ?? 0) + 1, nowMs), heldUntilMs: nowMs + ttlMs };
    return {
      result: { acquired: true, token: next.token, fencing: next.fencing, retryAfterMs: 0 },
      write: { value: encode(next), expiresAtMs: next.heldUntilMs + LOCK_RECORD_RETENTION_MS },
    };
  };
}

/** Releases the lock only while `token` holds it; the record stays for the fencing number. */
export function decideReleaseLock(token: string) {
  return (current: Stored | undefined, nowMs: number): Transition<boolean> => {
    const state = decode<LockState>(current);
    if (!state || state.token !== token || state.heldUntilMs <= nowMs) return { result: false };
    const released: LockState = { ...state, heldUntilMs: nowMs };
    return { result: true, write: { value: encode(released), expiresAtMs: nowMs + LOCK_RECORD_RETENTION_MS } };
  };
}

/** Extends the lock to now + ttl only while `token` holds it. */
export function decideRefreshLock(token: string, ttlMs: number) {
  return (current: Stored | undefined, nowMs: number): Transition<boolean> => {
    const state = decode<LockState>(current);
    if (!state || state.token !== token || state.heldUntilMs <= nowMs) return { result: false };
    const refreshed: LockState = { ...state, heldUntilMs: nowMs + ttlMs };
    return { result: true, write: { value: encode(refreshed), expiresAtMs: refreshed.heldUntilMs + LOCK_RECORD_RETENTION_MS } };
  };
}

// ---- Idempotency keys ----

type IdempotencyState =
  | { state: "in_progress"; fingerprint: string; token: string }
  | { state: "completed"; fingerprint: string; token: string; body: string; status: number };

export type BeginOutcome =
  | { state: "new"; token: string }
  | { state: "in_progress"; retryAfterMs: number }
  | { state: "completed"; body: Uint8Array; status: number };

function fingerprintMismatch(): Error {
  return rpcError(
    Code.AlreadyExists,
    "this idempotency key was used with a different request (fingerprint differs); use a new key for a different request",
    { reason: "IDEMPOTENCY_KEY_CONFLICT" },
  );
}

function notTheOwner(action: string): Error {
  return rpcError(
    Code.FailedPrecondition,
    `cannot ${action}: this token does not hold the idempotency key (the claim expired, or another caller holds it)`,
    { reason: "IDEMPOTENCY_NOT_OWNER" },
  );
}

export function decideBeginIdempotent(fingerprint: string, ttlMs: number) {
  return (current: Stored | undefined, nowMs: number): Transition<BeginOutcome> => {
    const state = decode<IdempotencyState>(current);
    if (!state) {
      const token = newToken();
      return {
        result: { state: "new", token },
        write: { value: encode({ state: "in_progress", fingerprint, token }), expiresAtMs: nowMs + ttlMs },
      };
    }
    if (state.fingerprint !== fingerprint) throw fingerprintMismatch();
    if (state.state === "completed") {
      return { result: { state: "completed", body: Buffer.from(state.body, "base64"), status: state.status } };
    }
    return { result: { state: "in_progress", retryAfterMs: Math.max(0, (current!.expiresAtMs ?? nowMs) - nowMs) } };
  };
}

/**
 * Stores the response of a claim held by `token`. Completing again with the
 * same token and response succeeds (a retried call); anything else is refused.
 */
export function decideCompleteIdempotent(token: string, body: Uint8Array, status: number, ttlMs: number) {
  return (current: Stored | undefined, nowMs: number): Transition<void> => {
    const state = decode<IdempotencyState>(current);
    if (!state || state.token !== token) throw notTheOwner("complete");
    const encodedBody = Buffer.from(body).toString("base64");
    if (state.state === "completed") {
      if (state.body === encodedBody && state.status === status) return { result: undefined };
      throw rpcError(Code.FailedPrecondition, "this idempotency key was already completed with a different response", {
        reason: "IDEMPOTENCY_ALREADY_COMPLETED",
      });
    }
    const expiresAtMs = ttlMs > 0 ? nowMs + ttlMs : current!.expiresAtMs;
    return {
      result: undefined,
      write: { value: encode({ ...state, state: "completed", body: encodedBody, status }), expiresAtMs },
    };
  };
}

/** Drops an open claim held by `token`, so that the next caller gets NEW. */
export function decideAbortIdempotent(token: string) {
  return (current: Stored | undefined): Transition<boolean> => {
    const state = decode<IdempotencyState>(current);
    if (!state || state.token !== token || state.state !== "in_progress") return { result: false };
    return { result: true, write: "delete" };
  };
}

// ---- Seen event ids ----

/** True when the id was marked before; otherwise marks it for ttl ms. */
export function decideAlreadyProcessed(ttlMs: number) {
  return (current: Stored | undefined, nowMs: number): Transition<boolean> =>
    current ? { result: true } : { result: false, write: { value: new Uint8Array([1]), expiresAtMs: nowMs + ttlMs } };
}
