import type { Meter, Counter, Histogram } from "@opentelemetry/api";

/** The KV service's instruments (exported on /metrics and over OTLP by the runtime). */
export class KvMetrics {
  private readonly operations: Counter;
  private readonly duration: Histogram;
  private readonly swept: Counter;

  constructor(meter: Meter) {
    this.operations = meter.createCounter("annals.kv.operations", { description: "KV calls, by method, backend and outcome" });
    this.duration = meter.createHistogram("annals.kv.operation.duration", {
      description: "Time to serve one KV call, by method and backend",
      unit: "s",
      advice: { explicitBucketBoundaries: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1] },
    });
    this.swept = meter.createCounter("annals.kv.keys.swept", { description: "Expired keys and helper states deleted by the sweeper" });
    this.swept.add(0);
  }

  operation(method: string, backend: string, outcome: "ok" | "error", elapsedMs: number): void {
    this.operations.add(1, { method, backend, outcome });
    this.duration.record(elapsedMs / 1000, { method, backend });
  }

  keysSwept(backend: string, count: number): void {
    if (count > 0) this.swept.add(count, { backend });
  }
}
