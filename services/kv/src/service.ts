import type { HandlerContext } from "@connectrpc/connect";
import { Code } from "@connectrpc/connect";
import { kvV1 } from "@annals/proto";
import { ADMIN_ROLE, callPrincipal, claimList, defineService, invalidArgument, rpcError, type ServiceRegistration } from "@annals/runtime";
import { hasPrefix, type KvBackend, type SetCondition } from "./backend.js";
import {
  decideAbortIdempotent,
  decideAcquireLock,
  decideAlreadyProcessed,
  decideBeginIdempotent,
  decideCompleteIdempotent,
  decideRateLimit,
  decideRefreshLock,
  decideReleaseLock,
  type RateAlgorithm,
} from "./transitions.js";
import type { KvMetrics } from "./kv-metrics.js";

/** Roles of the KV service. */
export const KV_READ = "kv.read";
export const KV_WRITE = "kv.write";

export const MAX_KEY_BYTES = 1024;
/** Keys per MGet, MSet and DeleteMany. */
export const MAX_BATCH_KEYS = 1000;
export const DEFAULT_SCAN_LIMIT = 1000;
export const MAX_SCAN_LIMIT = 10_000;
/** The longest TTL accepted: 100 years, far inside every backend's range. */
export const MAX_TTL_MS = 100 * 365 * 24 * 3600 * 1000;
/** The longest idempotency fingerprint and lock token accepted. */
const MAX_TOKEN_LENGTH = 256;

export interface KvLimits {
  /** The largest value accepted, in bytes. */
  maxValueBytes: number;
}

export const DEFAULT_KV_LIMITS: KvLimits = { maxValueBytes: 1024 * 1024 };

export interface KvServiceDeps {
  backend: KvBackend;
  limits: KvLimits;
  metrics: KvMetrics;
}

const CONDITIONS: Record<kvV1.SetCondition, SetCondition> = {
  [kvV1.SetCondition.UNSPECIFIED]: "always",
  [kvV1.SetCondition.IF_ABSENT]: "ifAbsent",
  [kvV1.SetCondition.IF_PRESENT]: "ifPresent",
};

const ALGORITHMS: Record<kvV1.RateLimitAlgorithm, RateAlgorithm> = {
  [kvV1.RateLimitAlgorithm.UNSPECIFIED]: "sliding",
  [kvV1.RateLimitAlgorithm.FIXED_WINDOW]: "fixed",
  [kvV1.RateLimitAlgorithm.SLIDING_WINDOW]: "sliding",
  [kvV1.RateLimitAlgorithm.GCRA]: "gcra",
};

const IDEMPOTENCY_STATES = {
  new: kvV1.IdempotencyState.NEW,
  in_progress: kvV1.IdempotencyState.IN_PROGRESS,
  completed: kvV1.IdempotencyState.COMPLETED,
} as const;

/** The KvService registration: who may call what, and the handlers. */
export function kvRegistration(deps: KvServiceDeps): ServiceRegistration {
  const { backend, limits } = deps;

  /** Validates a key and the caller's grant for it. */
  function keyOf(context: HandlerContext, key: Uint8Array, field = "key"): Uint8Array {
    if (key.length === 0) throw invalidArgument(field, "must not be empty");
    if (key.length > MAX_KEY_BYTES) throw invalidArgument(field, `is ${key.length} bytes; at most ${MAX_KEY_BYTES} are allowed`);
    requireKeyGrant(context, key, field);
    return key;
  }

  function keysOf(context: HandlerContext, keys: readonly Uint8Array[], field = "keys"): Uint8Array[] {
    if (keys.length === 0) throw invalidArgument(field, "must name at least one key");
    if (keys.length > MAX_BATCH_KEYS) throw invalidArgument(field, `has ${keys.length} keys; at most ${MAX_BATCH_KEYS} are allowed`);
    return keys.map((key, i) => keyOf(context, key, `${field}[${i}]`));
  }

  function valueOf(value: Uint8Array, field = "value"): Uint8Array {
    if (value.length > limits.maxValueBytes) {
      throw invalidArgument(field, `is ${value.length} bytes; this server accepts at most ${limits.maxValueBytes}`);
    }
    return value;
  }

  return defineService({
    service: kvV1.KvService,
    access: {
      getInfo: KV_READ,
      get: KV_READ,
      set: KV_WRITE,
      delete: KV_WRITE,
      exists: KV_READ,
      mGet: KV_READ,
      mSet: KV_WRITE,
      deleteMany: KV_WRITE,
      ttl: KV_READ,
      expire: KV_WRITE,
      setNx: KV_WRITE,
      incr: KV_WRITE,
      incrBy: KV_WRITE,
      scan: KV_READ,
      rateLimit: KV_WRITE,
      acquireLock: KV_WRITE,
      releaseLock: KV_WRITE,
      refreshLock: KV_WRITE,
      beginIdempotent: KV_WRITE,
      completeIdempotent: KV_WRITE,
      abortIdempotent: KV_WRITE,
      alreadyProcessed: KV_WRITE,
    },
    impl: measured(deps, {
      async getInfo() {
        return { backend: backend.name, supportsTtl: backend.supports.ttl, supportsScan: backend.supports.scan, supportsBatch: backend.supports.batch, maxValueBytes: BigInt(limits.maxValueBytes) };
      },

      async get(request, context) {
        const value = await backend.get(keyOf(context, request.key));
        return { found: value !== undefined, value };
      },

      async set(request, context) {
        const key = keyOf(context, request.key);
        const ttlMs = ttlOf(request.ttlMs, "ttl_ms", { allowZero: true });
        if (request.keepTtl && ttlMs > 0) throw invalidArgument("keep_ttl", "cannot be combined with ttl_ms (Redis refuses KEEPTTL with PX too)");
        const outcome = await backend.set(key, valueOf(request.value), {
          ttlMs,
          condition: CONDITIONS[request.condition] ?? invalidEnum("condition"),
          keepTtl: request.keepTtl,
          returnPrevious: request.returnPrevious,
        });
        return { written: outcome.written, previousFound: outcome.previous !== undefined, previous: outcome.previous };
      },

      async delete(request, context) {
        return { deleted: (await backend.delete([keyOf(context, request.key)])) > 0 };
      },

      async exists(request, context) {
        return { exists: await backend.exists(keyOf(context, request.key)) };
      },

      async mGet(request, context) {
        const values = await backend.mget(keysOf(context, request.keys));
        return { values: values.map((value) => ({ found: value !== undefined, value })) };
      },

      async mSet(request, context) {
        if (request.entries.length === 0) throw invalidArgument("entries", "must hold at least one pair");
        if (request.entries.length > MAX_BATCH_KEYS) throw invalidArgument("entries", `has ${request.entries.length} pairs; at most ${MAX_BATCH_KEYS} are allowed`);
        const ttlMs = ttlOf(request.ttlMs, "ttl_ms", { allowZero: true });
        // A key given twice takes its last value, as in Redis MSET.
        const pairs = new Map<string, readonly [Uint8Array, Uint8Array]>();
        request.entries.forEach((entry, i) => {
          const key = keyOf(context, entry.key, `entries[${i}].key`);
          pairs.set(Buffer.from(key).toString("latin1"), [key, valueOf(entry.value, `entries[${i}].value`)]);
        });
        await backend.mset([...pairs.values()], ttlMs);
        return {};
      },

      async deleteMany(request, context) {
        return { deletedCount: BigInt(await backend.delete(distinct(keysOf(context, request.keys)))) };
      },

      async ttl(request, context) {
        return { ttlMs: BigInt(await backend.ttl(keyOf(context, request.key))) };
      },

      async expire(request, context) {
        const key = keyOf(context, request.key);
        if (request.ttlMs > BigInt(MAX_TTL_MS)) throw invalidArgument("ttl_ms", `must be at most ${MAX_TTL_MS} (100 years)`);
        // Any non-positive TTL deletes; clamp so that a huge negative one stays a plain number.
        return { applied: await backend.expire(key, request.ttlMs <= 0n ? 0 : Number(request.ttlMs)) };
      },

      async setNx(request, context) {
        const key = keyOf(context, request.key);
        const ttlMs = ttlOf(request.ttlMs, "ttl_ms", { allowZero: true });
        const outcome = await backend.set(key, valueOf(request.value), { ttlMs, condition: "ifAbsent", keepTtl: false, returnPrevious: false });
        return { written: outcome.written };
      },

      async incr(request, context) {
        return { value: await backend.incrBy(keyOf(context, request.key), 1n) };
      },

      async incrBy(request, context) {
        return { value: await backend.incrBy(keyOf(context, request.key), request.delta) };
      },

      async scan(request, context) {
        if (request.prefix.length > MAX_KEY_BYTES) throw invalidArgument("prefix", `is ${request.prefix.length} bytes; at most ${MAX_KEY_BYTES} are allowed`);
        if (request.pageSize < 0 || request.pageSize > MAX_SCAN_LIMIT) throw invalidArgument("page_size", `must be from 0 (${DEFAULT_SCAN_LIMIT}) to ${MAX_SCAN_LIMIT}`);
        if (request.cursor.length > MAX_KEY_BYTES + 32) throw invalidArgument("cursor", "is too long to be a cursor this server handed out");
        requireKeyGrant(context, request.prefix, "prefix");
        const page = await backend.scan(request.prefix, request.cursor, request.pageSize || DEFAULT_SCAN_LIMIT, request.includeValues);
        return page;
      },

      async rateLimit(request, context) {
        const key = keyOf(context, request.key);
        const limit = positive(request.limit, "limit");
        const windowMs = ttlOf(request.windowMs, "window_ms", { allowZero: false });
        const cost = request.cost === 0n ? 1 : positive(request.cost, "cost");
        if (cost > limit) throw invalidArgument("cost", `is ${cost}, more than the limit ${limit}: such a use could never be allowed`);
        const algorithm = ALGORITHMS[request.algorithm] ?? invalidEnum("algorithm");
        const outcome = await backend.transact("rate", key, decideRateLimit(algorithm, { limit, windowMs, cost }));
        return {
          allowed: outcome.allowed,
          count: BigInt(outcome.count),
          limit: BigInt(outcome.limit),
          remaining: BigInt(outcome.remaining),
          retryAfterMs: BigInt(outcome.retryAfterMs),
          resetAfterMs: BigInt(outcome.resetAfterMs),
        };
      },

      async acquireLock(request, context) {
        const key = keyOf(context, request.key);
        const ttlMs = ttlOf(request.ttlMs, "ttl_ms", { allowZero: false });
        const outcome = await backend.transact("lock", key, decideAcquireLock(ttlMs));
        return { acquired: outcome.acquired, token: outcome.token, fencing: BigInt(outcome.fencing), retryAfterMs: BigInt(outcome.retryAfterMs) };
      },

      async releaseLock(request, context) {
        const key = keyOf(context, request.key);
        return { released: await backend.transact("lock", key, decideReleaseLock(tokenOf(request.token))) };
      },

      async refreshLock(request, context) {
        const key = keyOf(context, request.key);
        const ttlMs = ttlOf(request.ttlMs, "ttl_ms", { allowZero: false });
        return { refreshed: await backend.transact("lock", key, decideRefreshLock(tokenOf(request.token), ttlMs)) };
      },

      async beginIdempotent(request, context) {
        const key = keyOf(context, request.key);
        if (request.fingerprint.length > MAX_TOKEN_LENGTH) throw invalidArgument("fingerprint", `must be at most ${MAX_TOKEN_LENGTH} characters (send a digest)`);
        const ttlMs = ttlOf(request.ttlMs, "ttl_ms", { allowZero: false });
        const outcome = await backend.transact("idempotency", key, decideBeginIdempotent(request.fingerprint, ttlMs));
        const state = IDEMPOTENCY_STATES[outcome.state];
        switch (outcome.state) {
          case "new":
            return { state, token: outcome.token };
          case "in_progress":
            return { state, retryAfterMs: BigInt(outcome.retryAfterMs) };
          case "completed":
            return { state, response: { body: outcome.body, status: outcome.status } };
        }
      },

      async completeIdempotent(request, context) {
        const key = keyOf(context, request.key);
        const token = tokenOf(request.token);
        const ttlMs = ttlOf(request.ttlMs, "ttl_ms", { allowZero: true });
        const body = valueOf(request.response?.body ?? new Uint8Array(), "response.body");
        await backend.transact("idempotency", key, decideCompleteIdempotent(token, body, request.response?.status ?? 0, ttlMs));
        return {};
      },

      async abortIdempotent(request, context) {
        const key = keyOf(context, request.key);
        return { aborted: await backend.transact("idempotency", key, decideAbortIdempotent(tokenOf(request.token))) };
      },

      async alreadyProcessed(request, context) {
        const key = keyOf(context, request.eventId, "event_id");
        const ttlMs = ttlOf(request.ttlMs, "ttl_ms", { allowZero: false });
        return { alreadyProcessed: await backend.transact("seen", key, decideAlreadyProcessed(ttlMs)) };
      },
    }),
  });
}

type Impl = ServiceRegistration<typeof kvV1.KvService>["impl"];

/** Wraps every handler to count it and time it, by method and backend. */
function measured(deps: KvServiceDeps, impl: Required<Impl>): Impl {
  const wrapped: Record<string, unknown> = {};
  for (const [method, handler] of Object.entries(impl) as [string, (request: unknown, context: HandlerContext) => Promise<unknown>][]) {
    wrapped[method] = async (request: unknown, context: HandlerContext) => {
      const started = performance.now();
      try {
        const response = await handler(request, context);
        deps.metrics.operation(method, deps.backend.name, "ok", performance.now() - started);
        return response;
      } catch (error) {
        deps.metrics.operation(method, deps.backend.name, "error", performance.now() - started);
        throw error;
      }
    };
  }
  return wrapped;
}

/** PERMISSION_DENIED unless the token's `kv_prefixes` (if any) cover the key. */
function requireKeyGrant(context: HandlerContext, key: Uint8Array, field = "key"): void {
  const principal = callPrincipal(context);
  const prefixes = claimList(principal, "kv_prefixes");
  if (prefixes === undefined || principal.roles.has(ADMIN_ROLE)) return;
  const granted = prefixes.some((prefix) => hasPrefix(key, Buffer.from(prefix)));
  if (!granted) {
    throw rpcError(Code.PermissionDenied, `the token may only touch keys starting with ${prefixes.map((p) => JSON.stringify(p)).join(", ")}; ${field} does not`, {
      reason: "KEY_NOT_GRANTED",
      metadata: { field },
    });
  }
}

/** A TTL or window in ms: not negative, 0 only where it means "none", at most MAX_TTL_MS. */
function ttlOf(value: bigint, field: string, { allowZero }: { allowZero: boolean }): number {
  if (value < 0n) throw invalidArgument(field, `must not be negative (got ${value})`);
  if (value === 0n && !allowZero) throw invalidArgument(field, "must be at least 1 ms");
  if (value > BigInt(MAX_TTL_MS)) throw invalidArgument(field, `must be at most ${MAX_TTL_MS} (100 years)`);
  return Number(value);
}

function positive(value: bigint, field: string): number {
  if (value < 1n) throw invalidArgument(field, `must be at least 1 (got ${value})`);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw invalidArgument(field, `must be at most ${Number.MAX_SAFE_INTEGER}`);
  return Number(value);
}

function tokenOf(token: string): string {
  if (token.length === 0) throw invalidArgument("token", "must not be empty (pass the token the claim returned)");
  if (token.length > MAX_TOKEN_LENGTH) throw invalidArgument("token", `must be at most ${MAX_TOKEN_LENGTH} characters`);
  return token;
}

function invalidEnum(field: string): never {
  throw invalidArgument(field, "is not one of the values this server knows");
}

function distinct(keys: Uint8Array[]): Uint8Array[] {
  const seen = new Map(keys.map((key) => [Buffer.from(key).toString("latin1"), key]));
  return [...seen.values()];
}
