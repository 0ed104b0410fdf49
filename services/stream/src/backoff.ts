/** Sleeps a random time between half of and the full `ms` (jitter), or until the signal aborts. */
export function sleepWithJitter(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms / 2 + Math.random() * (ms / 2));
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
