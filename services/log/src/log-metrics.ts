import type { Meter, Counter, Histogram, UpDownCounter } from "@opentelemetry/api";

/** The log service's instruments (exported on /metrics and over OTLP by the runtime). */
export class LogMetrics {
  private readonly appendDuration: Histogram;
  private readonly groupEntries: Histogram;
  private readonly appended: Counter;
  private readonly subscribers: UpDownCounter;
  private readonly verifyRuns: Counter;

  constructor(meter: Meter) {
    this.appendDuration = meter.createHistogram("annals.log.append.duration", {
      description: "Time from an append request reaching the sequencer to its commit",
      unit: "s",
      advice: { explicitBucketBoundaries: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] },
    });
    this.groupEntries = meter.createHistogram("annals.log.group_commit.entries", {
      description: "Entries written by one append transaction (group commit size)",
      advice: { explicitBucketBoundaries: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024] },
    });
    this.appended = meter.createCounter("annals.log.entries.appended", { description: "Entries sequenced and committed" });
    this.subscribers = meter.createUpDownCounter("annals.log.subscribers", { description: "Open Subscribe streams" });
    this.verifyRuns = meter.createCounter("annals.log.verify.runs", { description: "Verify calls, by result" });
    // Exported from the start (at 0), so that the verify-failure alert has a series before the first failure.
    this.verifyRuns.add(0, { valid: false });
  }

  appendFinished(seconds: number): void {
    this.appendDuration.record(seconds);
  }

  groupCommitted(entries: number): void {
    this.groupEntries.record(entries);
    this.appended.add(entries);
  }

  subscriberOpened(): void {
    this.subscribers.add(1);
  }

  subscriberClosed(): void {
    this.subscribers.add(-1);
  }

  verified(valid: boolean): void {
    this.verifyRuns.add(1, { valid });
  }
}
