import type { Transport } from "@connectrpc/connect";
import type { Meter, Tracer } from "@opentelemetry/api";
import { createLogger, type Logger } from "./logger.js";
import { createInProcessTransport } from "./in-process.js";
import type { ServerConfig } from "./server-config.js";
import { startServer, type RunningServer } from "./server.js";
import type { ServiceComponent } from "./service.js";
import { createTelemetry } from "./telemetry.js";

/** Something a process opened before serving and closes last (a database pool). */
export interface Closable {
  close(): Promise<void>;
}

export interface ServeOptions {
  /** Process name in logs and telemetry, e.g. "annals-log". */
  name: string;
  server: ServerConfig;
  /** Builds the components to serve; runs after `resources` are open. */
  components(context: ComponentContext): Promise<readonly ServiceComponent[]>;
  /** Closed after the components, in order, on shutdown or when starting fails. */
  resources?: readonly Closable[];
}

/**
 * What the server gives the components it builds: they log, measure and
 * trace through it (nothing global), and stop background work on `signal`.
 */
export interface ComponentContext {
  /** The process's logger; a component takes a child (`logger.child({ component: "kv" })`). */
  readonly logger: Logger;
  /** The server's meter: the metrics land in its /metrics. */
  readonly meter: Meter;
  readonly tracer: Tracer;
  /** Aborted when the server starts to shut down. */
  readonly signal: AbortSignal;
  /**
   * A transport to the services of this process, called in-process as the
   * internal principal (in-process.ts): how one component calls another
   * (`createAnnalsClients({ transport: local }).log`). Usable once the server
   * has started (calls before that fail with UNAVAILABLE).
   */
  readonly local: Transport;
}

/**
 * Serves components on one gRPC port and one HTTP port. If building them or
 * starting the listeners fails, the resources are closed before the error
 * propagates, so a failed start leaves no pool open.
 */
export async function serveComponents(options: ServeOptions): Promise<RunningServer> {
  const resources = options.resources ?? [];
  const built: ServiceComponent[] = [];
  const closeAll = async () => {
    for (const component of built) await component.close();
    for (const resource of resources) await resource.close();
  };
  const telemetry = createTelemetry({ serviceName: options.name, otlpTraces: options.server.otlpTraces ?? false });
  const logger = createLogger({ name: options.name, level: options.server.logLevel });
  const inProcess = createInProcessTransport();
  const stopping = new AbortController();
  const context: ComponentContext = { logger, meter: telemetry.meter, tracer: telemetry.tracer, signal: stopping.signal, local: inProcess.transport };
  try {
    built.push(...(await options.components(context)));
    const server = await startServer({
      name: options.name,
      ...options.server,
      telemetry,
      logger,
      stopping,
      inProcess,
      services: built.flatMap((component) => component.registrations),
      httpRoutes: built.flatMap((component) => component.httpRoutes ?? []),
      // The telemetry last: the spans of the last calls and of closing are flushed (OTLP).
      onShutdown: [closeAll, () => telemetry.shutdown()],
    });
    for (const component of built) component.start?.();
    return server;
  } catch (error) {
    await closeAll();
    await telemetry.shutdown();
    throw error;
  }
}
