/** What a closed-loop load run measured. */
export interface LoadResult {
  calls: number;
  /** Calls made during the warm-up, not in the other figures. */
  warmupCalls: number;
  errors: number;
  callsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

/**
 * Closed-loop load: `concurrency` callers each make one call, wait for it,
 * and make the next, for `durationMs` after a warm-up of `warmupMs`. `call`
 * is told which caller (0 to concurrency − 1) makes it.
 */
export async function runLoad(call: (caller: number) => Promise<unknown>, concurrency: number, durationMs: number, warmupMs: number): Promise<LoadResult> {
  const warmupEnd = performance.now() + warmupMs;
  let warmupCalls = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, caller) => {
      while (performance.now() < warmupEnd) {
        await call(caller);
        warmupCalls++;
      }
    }),
  );
  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now();
  const end = start + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, caller) => {
      while (performance.now() < end) {
        const before = performance.now();
        try {
          await call(caller);
          latencies.push(performance.now() - before);
        } catch {
          errors++;
        }
      }
    }),
  );
  const elapsedSeconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const quantile = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  return { calls: latencies.length, warmupCalls, errors, callsPerSecond: latencies.length / elapsedSeconds, p50Ms: quantile(0.5), p99Ms: quantile(0.99) };
}
