import type { IncomingMessage, ServerResponse } from "node:http";
import type { Meter, Tracer } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { AlwaysOffSampler, BatchSpanProcessor, ParentBasedSampler, type SpanProcessor } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { observeEventLoop } from "./event-loop-metrics.js";

export interface TelemetryOptions {
  /** `service.name` of every span and metric. */
  serviceName: string;
  /** Service version, for the resource. */
  serviceVersion?: string;
  /**
   * Export spans over OTLP/HTTP. Only set when the standard `OTEL_EXPORTER_OTLP_*`
   * environment names an endpoint: without one annals sends nothing anywhere.
   */
  otlpTraces?: boolean;
  /** Extra span processors (tests use an in-memory exporter). */
  spanProcessors?: SpanProcessor[];
}

/**
 * Traces and metrics for one process. Metrics are served in the Prometheus
 * text format by the HTTP listener at `/metrics`; spans are exported over
 * OTLP when configured. The W3C `traceparent` header carries the trace across
 * service calls (pipeline.ts extracts it; in-process.ts and libs/client's transport inject it).
 */
export interface Telemetry {
  readonly meter: Meter;
  readonly tracer: Tracer;
  readonly propagator: W3CTraceContextPropagator;
  /** Serves `/metrics`. */
  handleMetrics(request: IncomingMessage, response: ServerResponse): void;
  /** Exports the spans still buffered and stops; the server calls it last on shutdown. */
  shutdown(): Promise<void>;
}

/**
 * The telemetry of one server: its own metrics registry and tracer, which
 * the server hands to the components it serves (ComponentContext), so that
 * nothing depends on globals or on the order things are built in (the
 * all-in-one node's four services share their server's). The first one made
 * also installs OpenTelemetry's context manager (AsyncLocalStorage: the
 * active span follows async calls from a handler into the clients it uses)
 * and the W3C propagator; later ones find them installed.
 */
export function createTelemetry(options: TelemetryOptions): Telemetry {
  const resource = resourceFromAttributes({
    "service.name": options.serviceName,
    "service.version": options.serviceVersion ?? "0.1.0",
  });
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const meterProvider = new MeterProvider({ resource, readers: [exporter] });

  const spanProcessors: SpanProcessor[] = [...(options.spanProcessors ?? [])];
  if (options.otlpTraces) spanProcessors.push(new BatchSpanProcessor(new OTLPTraceExporter()));
  // With nowhere to send spans, recording them is wasted work; root spans are
  // then not sampled (they still get ids, so traceparent still propagates),
  // while a caller's sampled trace is still followed.
  const sampler = spanProcessors.length > 0 ? undefined : new ParentBasedSampler({ root: new AlwaysOffSampler() });
  const tracerProvider = new NodeTracerProvider({ resource, spanProcessors, ...(sampler ? { sampler } : {}) });
  // register() installs the AsyncLocalStorage context manager, so the active
  // span follows async calls from a handler into the clients it uses.
  tracerProvider.register();

  const meter = meterProvider.getMeter("annals");
  const stopObservingEventLoop = observeEventLoop(meter);
  let shutdown: Promise<void> | undefined;
  return {
    meter,
    tracer: tracerProvider.getTracer("annals"),
    propagator: new W3CTraceContextPropagator(),
    handleMetrics: (request, response) => exporter.getMetricsRequestHandler(request, response),
    // A span processor's shutdown exports what it still holds (BatchSpanProcessor flushes).
    shutdown: () => {
      stopObservingEventLoop();
      return (shutdown ??= Promise.allSettled([meterProvider.shutdown(), tracerProvider.shutdown()]).then(() => undefined));
    },
  };
}
