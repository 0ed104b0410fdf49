import { createAnnalsClients, type LogClient } from "@annals/client";
import { createAuthenticator, createLogger, type AuthOptions, type ServiceComponent } from "@annals/runtime";
import { DEFAULT_STREAM_SETTINGS } from "./config.js";
import { StreamHub, type HubSettings } from "./hub.js";
import { streamRegistration } from "./service.js";
import { sseRoute } from "./sse.js";
import { StreamMetrics } from "./stream-metrics.js";

export const STREAM_SERVICE_NAME = "annals-stream";

export interface StreamComponentOptions {
  /**
   * The log service's gRPC port, e.g. http://127.0.0.1:50061; a function when
   * it is known only once the process listens (the all-in-one node on port 0).
   */
  logUrl: string | (() => string);
  /** Bearer token for the log service, or a function returning a fresh one. */
  logToken?: string | (() => string | Promise<string>);
  /** How the SSE endpoint checks tokens: the server's own auth settings. */
  auth: AuthOptions;
  settings?: HubSettings;
  /** Level of the component's own log lines (feed reconnects); default "info". */
  logLevel?: string;
}

/** Builds the stream service: the fan-out hub, the gRPC handlers and the SSE route. */
export async function createStreamComponent(options: StreamComponentOptions): Promise<ServiceComponent> {
  let client: LogClient | undefined;
  // Created on first use: the node knows its own port only once it listens.
  const log = () =>
    (client ??= createAnnalsClients({
      baseUrl: typeof options.logUrl === "function" ? options.logUrl() : options.logUrl,
      ...(options.logToken ? { token: options.logToken } : {}),
    }).log);
  const logger = createLogger({ name: STREAM_SERVICE_NAME, level: options.logLevel ?? "info" });
  const hub = new StreamHub(log, options.settings ?? DEFAULT_STREAM_SETTINGS, new StreamMetrics(), logger);
  return {
    name: "stream",
    registrations: [streamRegistration({ hub, log })],
    httpRoutes: [sseRoute(hub, createAuthenticator(options.auth))],
    close: async () => hub.close(),
  };
}
