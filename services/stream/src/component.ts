import type { LogClient } from "@annals/client";
import type { ComponentContext, ServiceComponent } from "@annals/runtime";
import { DEFAULT_STREAM_SETTINGS } from "./config.js";
import { StreamHub, type HubSettings } from "./hub.js";
import { streamRegistration } from "./service.js";
import { sseRoute } from "./sse.js";
import { StreamMetrics } from "./stream-metrics.js";

export const STREAM_SERVICE_NAME = "annals-stream";

export interface StreamComponentOptions {
  /**
   * The log service: in the node, its own, called in-process
   * (ComponentContext.local); standalone, a client of ANNALS_LOG_URL.
   */
  log: LogClient;
  settings?: HubSettings;
}

/** Builds the stream service: the fan-out hub, the gRPC handlers and the SSE route. */
export async function createStreamComponent(options: StreamComponentOptions, context: ComponentContext): Promise<ServiceComponent> {
  const log = () => options.log;
  const logger = context.logger.child({ component: "stream" });
  const hub = new StreamHub(log, options.settings ?? DEFAULT_STREAM_SETTINGS, new StreamMetrics(context.meter), logger);
  return {
    name: "stream",
    registrations: [streamRegistration({ hub, log })],
    httpRoutes: [sseRoute(hub)],
    close: async () => hub.close(),
  };
}
