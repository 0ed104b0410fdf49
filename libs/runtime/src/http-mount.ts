import type { IncomingMessage, ServerResponse } from "node:http";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createConnectRouter, createContextValues } from "@connectrpc/connect";
import { createAsyncIterable, encodeEnvelope, readAllBytes, type UniversalServerResponse } from "@connectrpc/connect/protocol";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import {
  compressionBrotli,
  compressionGzip,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import { createCorsPolicy } from "./cors.js";
import { UndecodableRequest } from "./request-check.js";
import type { AccessRule, Principal } from "./auth.js";
import { listenerKey, type CallInfo } from "./call-context.js";
import type { Telemetry } from "./telemetry.js";

/**
 * A plain HTTP route served next to the Connect handlers on the HTTP port
 * (the stream service's SSE endpoint, the log's tiles). The pipeline wraps
 * it as it wraps an RPC (pipeline.ts): request id, span, metrics, one log
 * line, the access rule checked against a bearer token (Authorization, or
 * `token=` in the query, which EventSource needs), and a refusal answered as
 * JSON with the code's HTTP status (route-errors.ts), also for what
 * `handle` throws before it has written.
 */
export interface HttpRoute {
  /** HTTP method, e.g. "GET". */
  readonly method: string;
  /** Name in spans, metrics (`rpc.method`, with `rpc.service` "http") and logs, e.g. "GET /v1/logs/{log}/events". */
  readonly name: string;
  /** Who may call: a role, "authenticated" or "public". */
  readonly access: AccessRule;
  /** Whether this route serves the given path (without query). */
  matches(path: string): boolean;
  handle(request: IncomingMessage, response: ServerResponse, context: RouteContext): void | Promise<void>;
}

/** What the pipeline hands a route. */
export interface RouteContext {
  /** The caller; undefined on a public route. */
  readonly principal: Principal | undefined;
  readonly info: CallInfo;
  /** Aborted when the client goes away or the server drains: a long response (SSE) ends then. */
  readonly signal: AbortSignal;
  /** Aborted when the server drains (after the drain delay): a stream says so before it ends. */
  readonly draining: AbortSignal;
}

export interface HttpHandlerOptions {
  services: ReadonlyArray<{ service: DescService; impl: Record<string, (...args: never[]) => unknown> }>;
  /** Routes, each with its handler already wrapped by the pipeline. */
  routes: ReadonlyArray<{ route: HttpRoute; handle(request: IncomingMessage, response: ServerResponse): Promise<void> }>;
  telemetry: Telemetry;
  /** Largest request message accepted, in bytes. */
  maxMessageBytes: number;
  /** Called with errors of plain routes, which have no other way to report them. */
  onRouteError(error: unknown): void;
  /** Called for a request whose body did not decode, already answered INVALID_ARGUMENT. */
  onUndecodable(service: DescService, method: DescMethod, error: ConnectError): void;
  /** Browser origins allowed to call the port (CORS); empty: none. */
  corsOrigins?: readonly string[];
}

/**
 * The HTTP listener's request handler: `/metrics`, plain routes, and the
 * Connect protocol and gRPC-Web for every service (plain gRPC needs HTTP/2
 * and is served on the gRPC port instead).
 *
 * The Connect handlers are mounted as connect-node's adapter would mount
 * them, with two differences: JSON requests with unknown fields or enum
 * names are refused (a misspelt `"condition"` must not turn a conditional
 * write into a plain one), and a binary body that does not decode is
 * answered INVALID_ARGUMENT, as on the gRPC port, where connect-es answers
 * INTERNAL (its binary parser's failure is not told apart from a server
 * fault; see decodeFailure below).
 */
export function createHttpHandler(options: HttpHandlerOptions) {
  const router = createConnectRouter({
    connect: true,
    grpcWeb: true,
    grpc: false,
    readMaxBytes: options.maxMessageBytes,
    acceptCompression: [compressionGzip, compressionBrotli],
    jsonOptions: { ignoreUnknownFields: false },
  });
  for (const { service, impl } of options.services) router.service(service, impl as never);
  const handlers = new Map(router.handlers.map((handler) => [handler.requestPath, handler]));
  const cors = createCorsPolicy(options.corsOrigins ?? []);
  return (request: IncomingMessage, response: ServerResponse) => {
    if (cors.handle(request, response)) return;
    const path = (request.url ?? "/").split("?", 1)[0] ?? "/";
    if (request.method === "GET" && path === "/metrics") {
      options.telemetry.handleMetrics(request, response);
      return;
    }
    const route = options.routes.find(({ route: candidate }) => candidate.method === request.method && candidate.matches(path));
    if (route) {
      route.handle(request, response).catch((error: unknown) => {
        options.onRouteError(error);
        if (!response.headersSent) response.writeHead(500, { "content-type": "application/json" });
        response.end(JSON.stringify({ error: "internal error" }));
      });
      return;
    }
    const handler = handlers.get(path);
    if (!handler) {
      response.writeHead(404);
      response.end();
      return;
    }
    const values = createContextValues().set(listenerKey, { listener: "http", peer: request.socket?.remoteAddress ?? "unknown" });
    handler(universalRequestFromNodeRequest(request, response, undefined, values))
      .then((universal) => refuseUndecodable(universal, request.method === "GET", (error) => options.onUndecodable(handler.service, handler.method, error)))
      .then((universal) => universalResponseToNodeResponse(universal, response))
      .catch((error: unknown) => {
        if (ConnectError.from(error).code !== Code.Aborted) options.onRouteError(error);
      });
  };
}

/** The message connect-es gives a binary request body that does not decode (with Code.Internal). */
const PARSE_BINARY = "parse binary: ";

/** The client's fault, said the same way as on the gRPC port (UndecodableRequest). */
function decodeFailure(message: string): ConnectError {
  return new UndecodableRequest(new Error(message.slice(PARSE_BINARY.length))).toError();
}

/**
 * Turns connect-es's INTERNAL "parse binary: …" into INVALID_ARGUMENT: in a
 * Connect unary response (HTTP 500 with a JSON error body), and in the
 * end-of-stream frame of Connect streaming and gRPC-Web responses. Every
 * other response passes through untouched.
 */
async function refuseUndecodable(
  universal: UniversalServerResponse,
  isGet: boolean,
  onUndecodable: (error: ConnectError) => void,
): Promise<UniversalServerResponse> {
  const contentType = universal.header?.get("content-type") ?? "";
  if (universal.status === 500 && contentType.startsWith("application/json") && universal.body) {
    const body = await readAllBytes(universal.body, Number.MAX_SAFE_INTEGER);
    const parsed = JSON.parse(new TextDecoder().decode(body)) as { code?: string; message?: string };
    // A Connect GET whose `message` parameter does not decode (bad base64, say) fails
    // before any handler runs, as a bare "internal error"; the pipeline never says
    // exactly that (its INTERNAL names the request id).
    const badQuery = isGet && parsed.code === "internal" && parsed.message === "internal error";
    if (!badQuery && (parsed.code !== "internal" || !parsed.message?.startsWith(PARSE_BINARY))) {
      return { ...universal, body: createAsyncIterable([body]) };
    }
    const error = badQuery ? new UndecodableRequest(new Error("the message query parameter is malformed")).toError() : decodeFailure(parsed.message!);
    onUndecodable(error);
    const json = new TextEncoder().encode(JSON.stringify({ code: codeToString(error.code), message: error.rawMessage }));
    const header = new Headers(universal.header);
    header.set("content-length", String(json.byteLength));
    return { ...universal, status: 400, header, body: createAsyncIterable([json]) };
  }
  const grpcWeb = contentType.startsWith("application/grpc-web");
  if ((grpcWeb || contentType.startsWith("application/connect+")) && universal.body) {
    return { ...universal, body: rewriteEndFrame(universal.body, grpcWeb, onUndecodable) };
  }
  return universal;
}

/** Envelope flags of the frame that ends a stream: gRPC-Web trailers, Connect end-stream. */
const GRPC_WEB_TRAILER = 0x80;
const CONNECT_END_STREAM = 0x02;

async function* rewriteEndFrame(
  frames: AsyncIterable<Uint8Array>,
  grpcWeb: boolean,
  onUndecodable: (error: ConnectError) => void,
): AsyncGenerator<Uint8Array> {
  for await (const frame of frames) {
    const flags = frame[0] ?? 0;
    const isEnd = frame.byteLength >= 5 && (flags & (grpcWeb ? GRPC_WEB_TRAILER : CONNECT_END_STREAM)) !== 0 && (flags & 0x01) === 0;
    const rewritten = isEnd ? (grpcWeb ? rewriteGrpcWebTrailer(frame, onUndecodable) : rewriteConnectEnd(frame, onUndecodable)) : null;
    yield rewritten ?? frame;
  }
}

function rewriteGrpcWebTrailer(frame: Uint8Array, onUndecodable: (error: ConnectError) => void): Uint8Array | null {
  const text = new TextDecoder().decode(frame.subarray(5));
  const status = /^grpc-status: *(\d+)\r?$/im.exec(text)?.[1];
  const message = decodeURIComponent(/^grpc-message: *(.*?)\r?$/im.exec(text)?.[1] ?? "");
  if (status !== String(Code.Internal) || !message.startsWith(PARSE_BINARY)) return null;
  const error = decodeFailure(message);
  onUndecodable(error);
  const trailer = setTrailerStatus(new Headers(), error);
  let lines = "";
  trailer.forEach((value, key) => (lines += `${key}: ${value}\r\n`));
  return encodeEnvelope(flagsOf(frame), new TextEncoder().encode(lines));
}

function rewriteConnectEnd(frame: Uint8Array, onUndecodable: (error: ConnectError) => void): Uint8Array | null {
  const end = JSON.parse(new TextDecoder().decode(frame.subarray(5))) as { error?: { code?: string; message?: string }; metadata?: unknown };
  if (end.error?.code !== "internal" || !end.error.message?.startsWith(PARSE_BINARY)) return null;
  const error = decodeFailure(end.error.message);
  onUndecodable(error);
  const json = JSON.stringify({ ...end, error: { code: codeToString(error.code), message: error.rawMessage } });
  return encodeEnvelope(flagsOf(frame), new TextEncoder().encode(json));
}

function flagsOf(frame: Uint8Array): number {
  return frame[0] ?? 0;
}
