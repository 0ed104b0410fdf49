import type { IncomingMessage, ServerResponse } from "node:http";
import { cors as connectCors } from "@connectrpc/connect";

// Cross-origin access to the HTTP port for the origins an operator lists
// (ANNALS_CORS_ORIGINS): Connect and gRPC-Web calls from a connect-es web
// client, EventSource on the SSE route, and the tile routes. Off when none
// is listed. Tokens travel in the Authorization header (or the SSE/tile
// `token=` parameter), never in cookies, so no credentials are allowed:
// a page gets nothing its own script could not ask for with its own token.

/** Headers a browser may send: connect-es's, the bearer token, resuming an EventSource, a request id. */
const ALLOWED_HEADERS = [...connectCors.allowedHeaders, "authorization", "last-event-id", "x-request-id"].join(", ");
/** Headers a script may read: the protocols' status and details, the request id, the retry delay. */
const EXPOSED_HEADERS = [...connectCors.exposedHeaders, "x-request-id", "retry-after"].join(", ");
const ALLOWED_METHODS = connectCors.allowedMethods.join(", ");
/** How long a browser may cache a preflight's answer, in seconds. */
const PREFLIGHT_MAX_AGE_S = 7200;

export interface CorsPolicy {
  /**
   * Adds the CORS response headers for an allowed origin; answers a preflight
   * (OPTIONS) itself and returns true then. Requests from other origins get
   * no CORS headers (the browser refuses them) and go on as usual.
   */
  handle(request: IncomingMessage, response: ServerResponse): boolean;
}

/** The CORS policy of the listed origins (exact `scheme://host[:port]`, or `*` for any). */
export function createCorsPolicy(origins: readonly string[]): CorsPolicy {
  const allowed = new Set(origins);
  const anyOrigin = allowed.has("*");
  return {
    handle(request, response) {
      const origin = request.headers.origin;
      if (typeof origin !== "string" || !(anyOrigin || allowed.has(origin))) return false;
      response.setHeader("access-control-allow-origin", anyOrigin ? "*" : origin);
      response.setHeader("vary", "Origin");
      if (request.method !== "OPTIONS") {
        response.setHeader("access-control-expose-headers", EXPOSED_HEADERS);
        return false;
      }
      response.writeHead(204, {
        "access-control-allow-methods": ALLOWED_METHODS,
        "access-control-allow-headers": ALLOWED_HEADERS,
        "access-control-max-age": String(PREFLIGHT_MAX_AGE_S),
      });
      response.end();
      return true;
    },
  };
}
