import type { IncomingMessage, ServerResponse } from "node:http";
import { createContextValues, type ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { DescService } from "@bufbuild/protobuf";
import { listenerKey } from "./call-context.js";
import type { Telemetry } from "./telemetry.js";

/**
 * A plain HTTP route served next to the Connect handlers on the HTTP port
 * (the stream service's SSE endpoint is one).
 */
export interface HttpRoute {
  /** HTTP method, e.g. "GET". */
  readonly method: string;
  /** Whether this route serves the given path (without query). */
  matches(path: string): boolean;
  handle(request: IncomingMessage, response: ServerResponse): void | Promise<void>;
}

export interface HttpHandlerOptions {
  services: ReadonlyArray<{ service: DescService; impl: Record<string, (...args: never[]) => unknown> }>;
  routes: readonly HttpRoute[];
  telemetry: Telemetry;
  /** Largest request message accepted, in bytes. */
  maxMessageBytes: number;
  /** Called with errors of plain routes, which have no other way to report them. */
  onRouteError(error: unknown): void;
}

/**
 * The HTTP listener's request handler: `/metrics`, plain routes, and the
 * Connect protocol and gRPC-Web for every service (plain gRPC needs HTTP/2
 * and is served on the gRPC port instead).
 */
export function createHttpHandler(options: HttpHandlerOptions) {
  const connect = connectNodeAdapter({
    routes(router: ConnectRouter) {
      for (const { service, impl } of options.services) router.service(service, impl as never);
    },
    grpc: false,
    grpcWeb: true,
    connect: true,
    readMaxBytes: options.maxMessageBytes,
    contextValues: (request) =>
      createContextValues().set(listenerKey, { listener: "http", peer: request.socket?.remoteAddress ?? "unknown" }),
  });
  return (request: IncomingMessage, response: ServerResponse) => {
    const path = (request.url ?? "/").split("?", 1)[0] ?? "/";
    if (request.method === "GET" && path === "/metrics") {
      options.telemetry.handleMetrics(request, response);
      return;
    }
    const route = options.routes.find((candidate) => candidate.method === request.method && candidate.matches(path));
    if (route) {
      Promise.resolve(route.handle(request, response)).catch((error: unknown) => {
        options.onRouteError(error);
        if (!response.headersSent) response.writeHead(500, { "content-type": "application/json" });
        response.end(JSON.stringify({ error: "internal error" }));
      });
      return;
    }
    connect(request, response);
  };
}
