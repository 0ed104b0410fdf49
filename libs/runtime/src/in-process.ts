// Calls between the services of one process (the node's stream and federation
// services calling its log service) go through the same wrapped handlers as
// calls from outside, without a socket: no port to know, no TLS to dial, no
// token to configure. The caller is the internal principal (auth.ts), which
// no listener can produce: it is set here, on the context values that only
// this transport hands to the handlers.
import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createConnectRouter, createContextValues, type Interceptor, type Transport } from "@connectrpc/connect";
import { createUniversalHandlerClient, type UniversalHandler } from "@connectrpc/connect/protocol";
import { createTransport } from "@connectrpc/connect/protocol-connect";
import { context as otelContext, propagation } from "@opentelemetry/api";
import { listenerKey } from "./call-context.js";

type WrappedImpl = Record<string, (...args: never[]) => unknown>;

/** A transport to this process's own services; usable once the server has attached them. */
export interface InProcessTransport {
  readonly transport: Transport;
  /** Mounts the wrapped services (the server calls this once it has built its pipeline). */
  attach(services: ReadonlyArray<{ service: DescService; impl: WrappedImpl }>, maxMessageBytes: number): void;
}

const IN_PROCESS_PEER = "in-process";

/**
 * A Connect transport whose requests go straight to the handlers the server
 * attaches; calls made before that fail with UNAVAILABLE. Messages are still
 * encoded and decoded (the handlers get the same checked messages as on the
 * listeners), and the size limit is the server's.
 */
export function createInProcessTransport(interceptors: Interceptor[] = []): InProcessTransport {
  let inner: Transport | undefined;
  const attached = () => {
    if (!inner) throw new ConnectError("the in-process services are not mounted yet (the server has not started)", Code.Unavailable);
    return inner;
  };
  const transport: Transport = {
    unary: (method, signal, timeoutMs, header, message, contextValues) => attached().unary(method, signal, timeoutMs, header, message, contextValues),
    stream: (method, signal, timeoutMs, header, input, contextValues) => attached().stream(method, signal, timeoutMs, header, input, contextValues),
  };
  return {
    transport,
    attach(services, maxMessageBytes) {
      const router = createConnectRouter({ connect: true, grpc: false, grpcWeb: false, readMaxBytes: maxMessageBytes, writeMaxBytes: maxMessageBytes });
      for (const { service, impl } of services) router.service(service, impl as never);
      // Each handler sees the in-process listener, which the pipeline maps to the internal principal.
      const handlers = router.handlers.map(
        (handler): UniversalHandler =>
          Object.assign(
            (request: Parameters<UniversalHandler>[0]) =>
              handler({ ...request, contextValues: createContextValues().set(listenerKey, { listener: "internal", peer: IN_PROCESS_PEER }) }),
            handler,
          ),
      );
      inner = createTransport({
        httpClient: createUniversalHandlerClient(handlers),
        baseUrl: "http://in-process",
        useBinaryFormat: true,
        interceptors: [traceInterceptor, protocolHeadersInterceptor, ...interceptors],
        acceptCompression: [],
        sendCompression: null,
        compressMinBytes: Number.MAX_SAFE_INTEGER,
        readMaxBytes: maxMessageBytes,
        writeMaxBytes: maxMessageBytes,
      });
    },
  };
}

/** Carries the active trace into the call, so the callee's span is a child of the caller's. */
const traceInterceptor: Interceptor = (next) => (request) => {
  propagation.inject(otelContext.active(), request.header, { set: (carrier, key, value) => carrier.set(key, value) });
  return next(request);
};

/** Response headers of the Connect protocol itself, which an error's metadata must not carry on. */
const PROTOCOL_HEADER = /^(content-|connect-|accept-encoding$|x-request-id$|date$)/;

/**
 * An error of the callee keeps its code, message, details and its own
 * metadata, but not the Connect protocol's response headers: a handler that
 * passes the error on (Publish passes Append's refusals) would otherwise send
 * `content-type` and the like as trailers, which HTTP/2 refuses.
 */
const protocolHeadersInterceptor: Interceptor = (next) => async (request) => {
  try {
    return await next(request);
  } catch (error) {
    if (!(error instanceof ConnectError)) throw error;
    const metadata = new Headers();
    error.metadata.forEach((value, key) => {
      if (!PROTOCOL_HEADER.test(key)) metadata.append(key, value);
    });
    const cleaned = new ConnectError(error.rawMessage, error.code, metadata, undefined, error.cause);
    cleaned.details = error.details;
    throw cleaned;
  }
};
