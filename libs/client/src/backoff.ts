import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Exponential backoff with full jitter: a random delay in [0, min(capMs,
 * baseMs · 2^attempt)) ms, `attempt` counting from 0. The one backoff of the
 * client's retries (the transport's UNAVAILABLE retries, appendWithCondition).
 */
export function backoffDelayMs(attempt: number, baseMs: number, capMs: number): number {
  return Math.random() * Math.min(capMs, baseMs * 2 ** attempt);
}

/** Waits `ms`, or rejects with CANCELED as soon as the signal aborts. */
export function abortableSleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const cancelled = () => ConnectError.from(signal?.reason ?? new Error("aborted"), Code.Canceled);
    if (signal?.aborted) {
      reject(cancelled());
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(cancelled());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
