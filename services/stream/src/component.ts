import type { ServiceComponent } from "@annals/runtime";
import { streamRegistration } from "./service.js";

export const STREAM_SERVICE_NAME = "annals-stream";

export interface StreamComponentOptions {
  /**
   * The log service's gRPC port, e.g. http://127.0.0.1:50061; a function when
   * it is known only once the process listens (the all-in-one node on port 0).
   */
  logUrl: string | (() => string);
  /** Bearer token for the log service, or a function returning a fresh one. */
  logToken?: string | (() => string | Promise<string>);
}

/**
 * Builds the stream service's handlers; it keeps no state of its own. The
 * log service connection is used by Subscribe and Publish (stream issue).
 */
export async function createStreamComponent(_options: StreamComponentOptions): Promise<ServiceComponent> {
  return {
    name: "stream",
    registrations: [streamRegistration()],
    close: async () => {},
  };
}
