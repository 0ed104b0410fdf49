import { setTimeout as delay } from "node:timers/promises";

/** Sleeps a random time between half of and the full `ms` (jitter), or less when the signal aborts (never rejects). */
export async function sleepWithJitter(ms: number, signal: AbortSignal): Promise<void> {
  await delay(ms / 2 + Math.random() * (ms / 2), undefined, { signal }).catch(() => undefined);
}
