import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { DescMessage, DescMethod, DescService, Message } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { context as otelContext, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context } from "@opentelemetry/api";
import type { Logger } from "pino";
import { INTERNAL_PRINCIPAL, PUBLIC, principalKey, requireRole, type AccessRule, type Authenticator, type Principal } from "./auth.js";
import { callInfoKey, listenerKey, type CallInfo, type Listener, type PeerCertificate } from "./call-context.js";
import { clip, MAX_ERROR_TEXT, shuttingDown, unavailable } from "./errors.js";
import type { HttpRoute, RouteContext } from "./http-mount.js";
import { writeRouteError } from "./route-errors.js";
import { checkRequest, UndecodableRequest } from "./request-check.js";
import { isPushable, pushResponses, ResponseGroup, responseSinkKey } from "./response-group.js";
import type { Telemetry } from "./telemetry.js";
import type { ServiceRegistration } from "./service.js";

/** Turns a library error into a gRPC error, or returns undefined to leave it to the default (INTERNAL). */
export type ErrorMapper = (error: unknown) => ConnectError | undefined;

export interface PipelineOptions {
  authenticator: Authenticator;
  logger: Logger;
  telemetry: Telemetry;
  /** Aborted when the server starts to shut down: open streams end with UNAVAILABLE. */
  draining: AbortSignal;
  /** Maps errors of the service's own libraries (e.g. a lost database) to gRPC codes. */
  errorMapper?: ErrorMapper;
}

/**
 * The transport-neutral middleware of every annals RPC, applied by both
 * listeners so that they cannot drift apart: request id, tracing (W3C
 * traceparent in, a server span around the handler), authentication and
 * authorisation, error normalisation, metrics by method and code, one log
 * line per call, and the shutdown of open streams when the server drains.
 */
export interface Pipeline {
  /** Wraps every method of a service; methods without an implementation answer UNIMPLEMENTED. */
  wrap(registration: ServiceRegistration): Record<string, (...args: never[]) => unknown>;
  /** Calls still running (unary and streaming). */
  readonly inFlight: number;
  /**
   * Counts and logs a call that a listener refused before it could reach
   * the handlers (a request body the HTTP listener could not decode).
   */
  refused(service: DescService, method: DescMethod, listener: Listener, error: ConnectError): void;
  /** Wraps a plain HTTP route (HttpRoute) in the same pipeline as the RPCs. */
  wrapRoute(route: HttpRoute): (request: IncomingMessage, response: ServerResponse) => Promise<void>;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** A service implementation's method, whatever its kind. */
type Handler = (input: unknown, context: HandlerContext) => unknown;

interface ActiveCall {
  readonly context: Context;
  finish(error: unknown): ConnectError | undefined;
}

export function createPipeline(options: PipelineOptions): Pipeline {
  const { authenticator, telemetry, draining } = options;
  // The histogram's _count is the number of calls by method and code, so no
  // separate counter is kept: each call costs one record, not two.
  const duration = telemetry.meter.createHistogram("annals.rpc.server.duration.seconds", {
    description: "RPC duration from the start of the call to its status, in seconds; _count counts calls by method and code",
    unit: "s",
    advice: { explicitBucketBoundaries: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60] },
  });
  // Calls in progress, counted in plain numbers and read at scrape time.
  const activeCalls = new Map<string, { attributes: Attributes; value: number }>();
  telemetry.meter
    .createObservableUpDownCounter("annals.rpc.server.active", { description: "RPCs in progress (streams included)" })
    .addCallback((result) => {
      for (const { attributes, value } of activeCalls.values()) result.observe(value, attributes);
    });
  // Attribute objects are made once per method, listener and code, not per call.
  const statusAttributes = new Map<string, Attributes>();
  const attributesWithCode = (key: string, base: Attributes, code: string) => {
    const cacheKey = `${key} ${code}`;
    let attributes = statusAttributes.get(cacheKey);
    if (!attributes) statusAttributes.set(cacheKey, (attributes = { ...base, "rpc.grpc.status_code": code }));
    return attributes;
  };
  let inFlight = 0;
  // One rejection shared by every open stream; marked handled so that it never
  // surfaces as an unhandled rejection when no stream is open.
  const drained = new Promise<never>((_, reject) => {
    const fail = () => reject(shuttingDown());
    if (draining.aborted) fail();
    else draining.addEventListener("abort", fail, { once: true });
  });
  drained.catch(() => undefined);

  function normalise(error: unknown, info: CallInfo | undefined, procedure: string): ConnectError {
    if (error instanceof ConnectError) {
      // Errors built elsewhere may echo a huge input; the trailers must stay small.
      if (error.rawMessage.length <= MAX_ERROR_TEXT) return error;
      const clipped = new ConnectError(clip(error.rawMessage), error.code, error.metadata);
      clipped.details = error.details;
      return clipped;
    }
    const mapped = options.errorMapper?.(error);
    if (mapped) return mapped;
    if (error instanceof Error && error.name === "AbortError") {
      return new ConnectError("call cancelled", Code.Canceled);
    }
    // A store that cannot take work now (@annals/db's DatabaseError sets `unavailable`): the client should retry.
    if (error instanceof Error && (error as { unavailable?: unknown }).unavailable === true) {
      (info?.logger ?? options.logger).warn({ err: error, procedure }, "the database is unavailable");
      return unavailable("the database is unavailable or busy; retry with backoff", { reason: "DATABASE_UNAVAILABLE" }, 1000);
    }
    (info?.logger ?? options.logger).error({ err: error, procedure }, "handler failed with an unexpected error");
    return new ConnectError(`internal error (request id ${info?.requestId ?? "unknown"})`, Code.Internal);
  }

  interface CallStart {
    /** Metric and span attributes: the service (`http` for plain routes) and the method (the route's name). */
    service: string;
    method: string;
    procedure: string;
    listener: Listener;
    peer: string;
    peerCertificate?: PeerCertificate | undefined;
    requestHeader: Headers;
    setResponseHeader(name: string, value: string): void;
    spanAttributes: Attributes;
  }

  /** Starts a call: request id, call info, a server span in the caller's trace, metrics; `finish` ends it once. */
  function open(start: CallStart): ActiveCall & { info: CallInfo } {
    const started = performance.now();
    const { procedure } = start;
    const headerId = start.requestHeader.get("x-request-id");
    const requestId = headerId && REQUEST_ID.test(headerId) ? headerId : randomUUID();
    start.setResponseHeader("x-request-id", requestId);
    let callLogger: Logger | undefined;
    const info: CallInfo = {
      requestId,
      listener: start.listener,
      peer: start.peer,
      ...(start.peerCertificate ? { peerCertificate: start.peerCertificate } : {}),
      // A child logger costs more than a no-op call, so it is made on first use.
      get logger() {
        return (callLogger ??= options.logger.child({ requestId, procedure }));
      },
    };

    const parent = telemetry.propagator.extract(ROOT_CONTEXT, start.requestHeader, headerGetter);
    const span = telemetry.tracer.startSpan(
      procedure,
      { kind: SpanKind.SERVER, attributes: { ...start.spanAttributes, "annals.listener": start.listener, "annals.request_id": requestId } },
      parent,
    );
    const spanContext = trace.setSpan(parent, span);
    const activeKey = `${procedure} ${start.listener}`;
    let activeEntry = activeCalls.get(activeKey);
    if (!activeEntry) {
      const attributes = { "rpc.service": start.service, "rpc.method": start.method, listener: start.listener };
      activeCalls.set(activeKey, (activeEntry = { attributes, value: 0 }));
    }
    const activeCall = activeEntry;
    inFlight++;
    activeCall.value++;
    let finished = false;

    const finish = (error: unknown): ConnectError | undefined => {
      if (finished) return undefined;
      finished = true;
      inFlight--;
      activeCall.value--;
      const connectError = error === undefined ? undefined : normalise(error, info, procedure);
      const code = connectError ? Code[connectError.code] : "OK";
      const seconds = (performance.now() - started) / 1000;
      duration.record(seconds, attributesWithCode(activeKey, activeCall.attributes, code));
      if (connectError) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: connectError.rawMessage });
        span.setAttribute("rpc.grpc.status_code", connectError.code);
      }
      span.end();
      const level = !connectError ? "debug" : isServerFault(connectError.code) ? "error" : "info";
      if (options.logger.isLevelEnabled(level)) {
        info.logger[level]({ code, ms: Math.round(seconds * 10000) / 10, peer: info.peer }, "call finished");
      }
      return connectError;
    };
    return { context: spanContext, info, finish };
  }

  /**
   * The caller: the internal principal for in-process calls (in-process.ts;
   * no listener sets "internal"), none for a public method, otherwise the
   * bearer token's, which must satisfy the rule (UNAUTHENTICATED, PERMISSION_DENIED).
   */
  async function principalFor(rule: AccessRule, listener: Listener, authorization: string | null, procedure: string): Promise<Principal | undefined> {
    if (listener === "internal") return INTERNAL_PRINCIPAL;
    if (rule === PUBLIC) return undefined;
    const principal = await authenticator.authenticate(authorization);
    requireRole(principal, rule, procedure);
    return principal;
  }

  async function begin(service: DescService, method: DescMethod, rule: AccessRule, hctx: HandlerContext): Promise<ActiveCall> {
    const procedure = `${service.typeName}/${method.name}`;
    const listener = hctx.values.get(listenerKey);
    const call = open({
      service: service.typeName,
      method: method.name,
      procedure,
      listener: listener.listener,
      peer: listener.peer,
      peerCertificate: listener.peerCertificate,
      requestHeader: hctx.requestHeader,
      setResponseHeader: (name, value) => hctx.responseHeader.set(name, value),
      spanAttributes: { "rpc.system": "grpc", "rpc.service": service.typeName, "rpc.method": method.name },
    });
    hctx.values.set(callInfoKey, call.info);
    try {
      const principal = await principalFor(rule, listener.listener, hctx.requestHeader.get("authorization"), procedure);
      if (principal) hctx.values.set(principalKey, principal);
    } catch (error) {
      throw call.finish(error);
    }
    return call;
  }

  /** A plain HTTP route under the same pipeline: request id, span, metrics, log line, access rule, drain signal. */
  function wrapRoute(route: HttpRoute): (request: IncomingMessage, response: ServerResponse) => Promise<void> {
    return async (request, response) => {
      const requestHeader = new Headers();
      for (const [name, value] of Object.entries(request.headers)) {
        if (typeof value === "string") requestHeader.set(name, value);
      }
      const call = open({
        service: "http",
        method: route.name,
        procedure: route.name,
        listener: "http",
        peer: request.socket?.remoteAddress ?? "unknown",
        requestHeader,
        setResponseHeader: (name, value) => response.setHeader(name, value),
        spanAttributes: { "http.request.method": route.method, "http.route": route.name },
      });
      const gone = new AbortController();
      response.once("close", () => gone.abort());
      try {
        // EventSource cannot set headers, so routes take the token in the query too.
        const token = new URLSearchParams((request.url ?? "").split("?", 2)[1] ?? "").get("token");
        const principal = await principalFor(route.access, "http", token ? `Bearer ${token}` : (request.headers.authorization ?? null), route.name);
        const context: RouteContext = { principal, info: call.info, signal: AbortSignal.any([gone.signal, draining]), draining };
        await otelContext.with(call.context, () => route.handle(request, response, context));
        call.finish(undefined);
      } catch (error) {
        writeRouteError(response, call.finish(error) ?? error);
      }
    };
  }

  function wrapUnary(service: DescService, method: DescMethod, rule: AccessRule, impl: Handler) {
    return async (input: unknown, hctx: HandlerContext) => {
      const call = await begin(service, method, rule, hctx);
      try {
        const request = checkedInput(method, input);
        const output = await otelContext.with(call.context, () => impl(request, hctx));
        call.finish(undefined);
        return output;
      } catch (error) {
        throw call.finish(error) ?? error;
      }
    };
  }

  function wrapStreaming(service: DescService, method: DescMethod, rule: AccessRule, impl: Handler) {
    return async function* (input: unknown, hctx: HandlerContext) {
      const call = await begin(service, method, rule, hctx);
      // The handler sees a signal that also fires when the server drains, so
      // that it stops its own work (subscriptions, timers) at shutdown.
      const signal = AbortSignal.any([hctx.signal, draining]);
      const handlerContext: HandlerContext = Object.create(hctx, { signal: { value: signal } });
      const grpcListener = hctx.values.get(listenerKey).listener === "grpc";
      const cancellation = (): unknown => hctx.signal.reason ?? new ConnectError("the client cancelled the call", Code.Canceled);
      let iterator: AsyncIterator<unknown> | undefined;
      let failure: unknown;
      let ended = false;
      try {
        const request = checkedInput(method, input);
        const iterable = otelContext.with(call.context, () => impl(request, handlerContext)) as AsyncIterable<unknown>;
        // What the handler is waiting for, or the drain, whichever comes first. Not with Promise.race(…, drained):
        // that adds a reaction to the process-wide `drained` per message, kept until shutdown (a fan-out's
        // millions of frames grew the heap and the GC's work without bound).
        let cut: ((error: unknown) => void) | undefined;
        const unlessDrained = <T>(waiting: Promise<T>): Promise<T> =>
          draining.aborted
            ? Promise.race([waiting, drained])
            : new Promise<T>((resolve, reject) => {
                cut = reject;
                waiting.then(resolve, reject);
              });
        const onDrain = () => void drained.catch((error: unknown) => cut?.(error));
        draining.addEventListener("abort", onDrain, { once: true });
        try {
          // Only the gRPC listener offers a sink (grpc-mount.ts writeStream).
          const sink = hctx.values.get(responseSinkKey);
          if (sink && isPushable(iterable)) {
            // The responses write themselves to the listener, with no step per message here.
            await unlessDrained(otelContext.with(call.context, () => iterable[pushResponses](sink)));
            // They stopped because the client left or the server drains (the handler's signal): say which.
            if (draining.aborted) await drained;
            if (hctx.signal.aborted) throw cancellation();
          } else {
            iterator = iterable[Symbol.asyncIterator]();
            const handlerIterator = iterator;
            for (;;) {
              const step = await unlessDrained(otelContext.with(call.context, () => handlerIterator.next()));
              if (step.done) break;
              // Only the gRPC listener writes a group as it is (grpc-mount.ts writeStream).
              if (step.value instanceof ResponseGroup && !grpcListener) yield* step.value.messages;
              else yield step.value;
            }
          }
        } finally {
          cut = undefined;
          draining.removeEventListener("abort", onDrain);
        }
        ended = true;
      } catch (error) {
        // Once draining, whatever the handler threw, the client is told to reconnect.
        failure = draining.aborted ? await drained.catch((drainError: unknown) => drainError) : error;
        ended = true;
      } finally {
        // Ends the handler's generator if we stopped early (drain, client gone);
        // its own finally blocks run, and a failure there is not the client's concern.
        void iterator?.return?.()?.catch(() => undefined);
        // The transport stopped reading us at a yield (the client cancelled): the
        // code below never runs, so the call is counted as finished here.
        if (!ended) call.finish(cancellation());
      }
      if (failure !== undefined) throw call.finish(failure) ?? failure;
      call.finish(undefined);
    };
  }

  return {
    get inFlight() {
      return inFlight;
    },
    refused(service, method, listener, error) {
      const procedure = `${service.typeName}/${method.name}`;
      const attributes = { "rpc.service": service.typeName, "rpc.method": method.name, listener };
      duration.record(0, attributesWithCode(`${procedure} ${listener}`, attributes, Code[error.code]));
      options.logger.info({ procedure, listener, code: Code[error.code], reason: error.rawMessage }, "call refused");
    },
    wrapRoute,
    wrap(registration) {
      const { service, impl, access } = registration;
      const wrapped: Record<string, (...args: never[]) => unknown> = {};
      for (const method of service.methods) {
        const rule = (access as Record<string, AccessRule | undefined>)[method.localName];
        if (rule === undefined) {
          throw new Error(`${service.typeName}/${method.name} has no access rule`);
        }
        const own = (impl as Record<string, Handler | undefined>)[method.localName];
        const handler =
          own?.bind(impl) ??
          (() => {
            throw new ConnectError(`${service.typeName}/${method.name} is not implemented yet`, Code.Unimplemented);
          });
        const streamingHandler =
          own?.bind(impl) ??
          // eslint-disable-next-line require-yield -- a stream that fails before its first message
          async function* () {
            throw new ConnectError(`${service.typeName}/${method.name} is not implemented yet`, Code.Unimplemented);
          };
        wrapped[method.localName] =
          method.methodKind === "unary" || method.methodKind === "client_streaming"
            ? wrapUnary(service, method, rule, handler)
            : wrapStreaming(service, method, rule, streamingHandler);
      }
      return wrapped;
    },
  };
}

/**
 * The request as the handler gets it: a message that did not decode, or that
 * holds what no store can take (request-check.ts), is refused with
 * INVALID_ARGUMENT; in a client stream, at the message that holds it.
 */
function checkedInput(method: DescMethod, input: unknown): unknown {
  if (method.methodKind === "unary" || method.methodKind === "server_streaming") {
    checkMessage(method.input, input);
    return input;
  }
  return checkedMessages(method.input, input as AsyncIterable<unknown>);
}

/** The messages of a client stream, each checked; a refusal names the message as `frame[i]` (0 for the first). */
async function* checkedMessages(desc: DescMessage, messages: AsyncIterable<unknown>): AsyncGenerator<unknown> {
  let index = 0;
  for await (const message of messages) {
    checkMessage(desc, message, `frame[${index++}]`);
    yield message;
  }
}

function checkMessage(desc: DescMessage, message: unknown, at?: string): void {
  if (message instanceof UndecodableRequest) throw message.toError();
  checkRequest(desc, message as Message, at);
}

const headerGetter = {
  get: (carrier: Headers, key: string) => carrier.get(key) ?? undefined,
  keys: (carrier: Headers) => [...carrier.keys()],
};

function isServerFault(code: Code): boolean {
  return code === Code.Internal || code === Code.Unknown || code === Code.DataLoss || code === Code.Unavailable;
}
