// Retrying, in one place: exponential backoff with jitter, a sleep that an
// AbortSignal cuts short, and which gRPC codes are worth retrying. Used by
// the client's retries, the database's LISTEN reconnects, the federation
// puller and the stream feeds. Exported as "@annals/runtime/retry"; it
// imports nothing heavy, so that @annals/db and @annals/client can use it.
import { Code } from "@connectrpc/connect";

export interface BackoffSettings {
  /** The first delay, in ms. */
  firstMs: number;
  /** The longest delay, in ms. */
  maxMs: number;
}

/**
 * "Equal jitter": a random time between half of `ms` and all of it, so that
 * clients cut off together do not come back together, and none comes back
 * at once.
 */
export function jitter(ms: number, random: () => number = Math.random): number {
  return ms / 2 + random() * (ms / 2);
}

/**
 * Delays between attempts: the first is `firstMs` (jittered), each next one
 * doubles, up to `maxMs`; `reset()` starts again (after a success).
 */
export class Backoff {
  private step: number;

  constructor(
    private readonly settings: BackoffSettings,
    private readonly random: () => number = Math.random,
  ) {
    this.step = settings.firstMs;
  }

  /**
   * The delay before the next attempt, in ms: the current step with jitter,
   * but at least `atLeastMs` (what a server asked for in RetryInfo), and at
   * most `maxMs`. The step doubles for the attempt after.
   */
  next(atLeastMs = 0): number {
    const delay = Math.min(this.settings.maxMs, Math.max(atLeastMs, jitter(this.step, this.random)));
    this.step = Math.min(this.step * 2, this.settings.maxMs);
    return delay;
  }

  reset(): void {
    this.step = this.settings.firstMs;
  }
}

/** Waits `ms`, or less when `signal` aborts; never rejects (check `signal.aborted` after). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Whether a call that failed with `code` may succeed if made again later:
 * the server was unreachable, overloaded or shutting down (UNAVAILABLE,
 * RESOURCE_EXHAUSTED), out of time (DEADLINE_EXCEEDED), or gave up on a
 * conflict (ABORTED); and INTERNAL and UNKNOWN, which is how the transports
 * report a connection cut mid-call (an HTTP/2 stream reset, a peer that went
 * away). Everything else (INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED,
 * DATA_LOSS, …) fails the same way again.
 */
export function isTransient(code: Code): boolean {
  return (
    code === Code.Unavailable ||
    code === Code.ResourceExhausted ||
    code === Code.DeadlineExceeded ||
    code === Code.Aborted ||
    code === Code.Internal ||
    code === Code.Unknown
  );
}
