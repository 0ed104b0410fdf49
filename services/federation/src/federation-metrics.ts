import { Code } from "@connectrpc/connect";
import type { Meter, Counter } from "@opentelemetry/api";
import type { federationV1 } from "@annals/proto";

type Status = federationV1.ReplicationStatus;

/** The federation service's instruments (exported on /metrics and over OTLP by the runtime). */
export class FederationMetrics {
  private readonly received: Counter;
  private readonly rejected: Counter;
  private readonly refused: Counter;
  private readonly forks: Counter;

  /** `statuses` is read at each collection for the lag gauges. */
  constructor(meter: Meter, statuses: () => Status[]) {
    this.received = meter.createCounter("annals.federation.entries.received", { description: "Entries pulled from peers, verified and stored in mirrors" });
    this.rejected = meter.createCounter("annals.federation.entries.rejected", { description: "Replications stopped by an entry that failed verification" });
    this.refused = meter.createCounter("annals.federation.pulls.refused", { description: "Pull calls refused (token, grant, rate limit), by reason" });
    this.forks = meter.createCounter("annals.federation.forks", { description: "Replications stopped because the peer's signed checkpoints showed a forked history, per peer and log" });
    // Exported from the start (at 0), so that alerts on them have a series before the first event.
    this.rejected.add(0);
    this.refused.add(0);
    this.forks.add(0);
    meter
      .createObservableGauge("annals.federation.lag.entries", { description: "Entries the peer has that the mirror does not, per peer and log" })
      .addCallback((result) => {
        for (const status of statuses()) result.observe(Number(status.lagEntries), { peer: status.nodeId, log: status.logId });
      });
    meter
      .createObservableGauge("annals.federation.lag.seconds", { description: "Wall time between the peer's head entry and the mirror's newest entry while it lags (lag_ms), per peer and log", unit: "s" })
      .addCallback((result) => {
        for (const status of statuses()) result.observe(Number(status.lagMs) / 1000, { peer: status.nodeId, log: status.logId });
      });
    meter
      .createObservableGauge("annals.federation.integrity_errors", { description: "Replications stopped by an integrity error (1) or not (0), per peer and log" })
      .addCallback((result) => {
        for (const status of statuses()) result.observe(status.lastErrorCode === (Code.DataLoss as number) ? 1 : 0, { peer: status.nodeId, log: status.logId });
      });
  }

  entriesReceived(peer: string, count: number): void {
    this.received.add(count, { peer });
  }

  entryRejected(peer: string): void {
    this.rejected.add(1, { peer });
  }

  forkDetected(peer: string, log: string): void {
    this.forks.add(1, { peer, log });
  }

  pullRefused(reason: string): void {
    this.refused.add(1, { reason });
  }
}
