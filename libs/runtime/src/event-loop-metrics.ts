import { createHistogram, performance } from "node:perf_hooks";
import type { Meter } from "@opentelemetry/api";

/** How often the loop's delay is sampled, in ms: a timer of this interval, whose lateness is the delay. */
const RESOLUTION_MS = 10;

/**
 * The process's event loop, under the names of OpenTelemetry's Node.js
 * runtime conventions, each over the time since the previous collection (a
 * scrape of /metrics):
 * - nodejs.eventloop.delay.p50, .p99 and .max: how late a 10 ms timer ran, in
 *   seconds (a stall shows at the first collection after the timer ran
 *   again). One long synchronous stretch delays every call and stream the
 *   process serves: a fan-out burst once held the stream service's loop for
 *   30–104 ms (bench stream-fanout), which no CPU figure showed;
 * - nodejs.eventloop.utilization: the share of the time the loop was busy.
 * Returns a function that stops the sampling.
 */
export function observeEventLoop(meter: Meter): () => void {
  // Lateness of each run of a timer, in ns. Not node's monitorEventLoopDelay:
  // its reset also forgets when its timer last ran, so a stall that a scrape
  // is answered right after (before that timer runs again) is never counted.
  const lateness = createHistogram();
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    lateness.record(Math.max(1, Math.round((now - last - RESOLUTION_MS) * 1e6)));
    last = now;
  }, RESOLUTION_MS);
  timer.unref();
  let since = performance.eventLoopUtilization();
  const gauge = (name: string, description: string, unit = "s") => meter.createObservableGauge(name, { description, unit });
  const p50 = gauge("nodejs.eventloop.delay.p50", "Event loop delay, median, since the previous collection");
  const p99 = gauge("nodejs.eventloop.delay.p99", "Event loop delay, 99th percentile, since the previous collection");
  const max = gauge("nodejs.eventloop.delay.max", "Event loop delay, largest, since the previous collection");
  const utilization = gauge("nodejs.eventloop.utilization", "Share of the time the event loop was busy, since the previous collection", "1");
  meter.addBatchObservableCallback(
    (result) => {
      const now = performance.eventLoopUtilization();
      result.observe(utilization, performance.eventLoopUtilization(now, since).utilization);
      since = now;
      if (lateness.count > 0) {
        result.observe(p50, lateness.percentile(50) / 1e9);
        result.observe(p99, lateness.percentile(99) / 1e9);
        result.observe(max, lateness.max / 1e9);
      }
      lateness.reset();
    },
    [p50, p99, max, utilization],
  );
  return () => clearInterval(timer);
}
