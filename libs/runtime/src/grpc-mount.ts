import { once, type EventEmitter } from "node:events";
import { X509Certificate } from "node:crypto";
import { create, fromBinary, isMessage, toBinary, type DescMessage, type DescMethod, type DescService, type Message } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextValues, type HandlerContext } from "@connectrpc/connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import * as grpc from "@grpc/grpc-js";
import { listenerKey, type PeerCertificate } from "./call-context.js";
import { framedWriter } from "./grpc-framed-writer.js";
import { fromBinaryWithJson } from "./json-field-decoding.js";
import { UndecodableRequest } from "./request-check.js";
import { ResponseGroup, responseSinkKey, type ResponseSink } from "./response-group.js";
import { clip, MAX_ERROR_TEXT } from "./errors.js";

type AnyHandler = (...args: never[]) => unknown;
type WrappedImpl = Record<string, AnyHandler>;

/**
 * Builds the grpc-js service definition of a protobuf-es service: paths,
 * streaming kinds, and protobuf-es binary (de)serialisers.
 */
export function grpcServiceDefinition(service: DescService): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<object, object>> = {};
  for (const method of service.methods) {
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: serializer(method.input),
      // The server reads requests' JSON payloads straight into JSON; a client built on this definition (the
      // benches' grpc-js clients) decodes responses with fromBinary itself, as any protobuf-es client would.
      requestDeserialize: deserializer(method.input, fromBinaryWithJson),
      responseSerialize: serializer(method.output),
      responseDeserialize: deserializer(method.output, fromBinary),
      originalName: method.localName,
    };
  }
  return definition;
}

/**
 * Responses declared immutable by shareEncoding, with their encoding once it
 * is made (before that, the function that makes it, when one was given).
 */
const shared = new WeakMap<object, Buffer | (() => Uint8Array) | undefined>();

/**
 * Declares that a response object will not change and may be written to many
 * streams (a fan-out): the gRPC listener then encodes it once, not once per
 * stream. `encode`, when given, makes the response's protobuf encoding in
 * place of the generic encoder, called at most once and only when the gRPC
 * listener writes it (e.g. one spliced from encodings of its parts, see
 * encodingOf); other listeners encode the object itself. Returns the object.
 */
export function shareEncoding<T extends object>(response: T, encode?: () => Uint8Array): T {
  shared.set(response, encode);
  return response;
}

/** The property holding a response's encoding made by its producer (withEncoding). */
const ENCODING = Symbol("annals.encoding");

/**
 * Attaches the binary encoding its producer already made of a response (the
 * log service's pre-encoded catch-up frames): the gRPC listener writes these
 * bytes instead of encoding the message. They must be what toBinary gives
 * for the message, which the other transports still encode. Returns the
 * object.
 */
export function withEncoding<T extends object>(response: T, bytes: Buffer): T {
  (response as { [ENCODING]?: Buffer })[ENCODING] = bytes;
  return response;
}

/**
 * The protobuf encoding of `response` (a message or its init shape) as the
 * gRPC listener writes it: the one its producer attached (withEncoding), or
 * for a response declared with shareEncoding, made once and kept, so that a
 * larger message can be spliced from the encodings of its parts without
 * encoding them again.
 */
export function encodingOf(response: object, schema: DescMessage): Buffer {
  const preset = (response as { [ENCODING]?: Buffer })[ENCODING];
  if (preset) return preset;
  const cached = shared.get(response);
  if (cached instanceof Buffer) return cached;
  const bytes = typeof cached === "function" ? cached() : toBinary(schema, isMessage(response, schema) ? response : create(schema, response as never));
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (shared.has(response)) shared.set(response, buffer);
  return buffer;
}

function serializer(schema: DescMessage) {
  return (value: object): Buffer => encodingOf(value, schema);
}

/**
 * Bytes that do not decode (truncated, garbage, invalid UTF-8, nested past
 * the recursion limit) become an UndecodableRequest instead of an exception:
 * grpc-js would answer a throwing deserializer with INTERNAL, and the
 * pipeline answers this with INVALID_ARGUMENT, counted as a client error.
 */
function deserializer(schema: DescMessage, decode: (schema: DescMessage, bytes: Uint8Array) => Message) {
  return (bytes: Buffer) => {
    try {
      return decode(schema, bytes);
    } catch (error) {
      return new UndecodableRequest(error);
    }
  };
}

/**
 * The grpc-js server as a library that adds its own service sees it (the
 * health and reflection services): every method's requests that do not
 * decode are answered INVALID_ARGUMENT, as for annals' own services, instead
 * of the INTERNAL grpc-js answers when a deserializer throws.
 */
export function decodeGuardedServer(server: grpc.Server): Pick<grpc.Server, "addService"> {
  return {
    addService(definition, implementation) {
      const guardedDefinition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
      const guardedImplementation: grpc.UntypedServiceImplementation = {};
      for (const [name, method] of Object.entries(definition as Record<string, grpc.MethodDefinition<unknown, unknown>>)) {
        guardedDefinition[name] = {
          ...method,
          requestDeserialize: (bytes: Buffer) => {
            try {
              return method.requestDeserialize(bytes);
            } catch (error) {
              return new UndecodableRequest(error);
            }
          },
        };
        // grpc-js finds a handler by the method's name or its original (camelCase) name; so does this.
        const handler = implementation[name] ?? (method.originalName === undefined ? undefined : implementation[method.originalName]);
        if (handler) guardedImplementation[name] = guardHandler(method, handler as (...args: unknown[]) => void);
      }
      server.addService(guardedDefinition, guardedImplementation);
    },
  };
}

function guardHandler(method: grpc.MethodDefinition<unknown, unknown>, handler: (...args: unknown[]) => void): grpc.UntypedHandleCall {
  const refusal = (request: UndecodableRequest) => grpcStatus(request.toError());
  if (!method.requestStream) {
    return ((call: { request: unknown; emit(event: string, value: unknown): boolean }, callback?: grpc.sendUnaryData<unknown>) => {
      if (!(call.request instanceof UndecodableRequest)) return handler(call, callback && clippingErrors(callback));
      if (method.responseStream) call.emit("error", refusal(call.request));
      else callback!(refusal(call.request));
    }) as grpc.UntypedHandleCall;
  }
  // Client and bidi streams: the first message that does not decode ends the call.
  return ((call: EventEmitter, callback?: grpc.sendUnaryData<unknown>) => {
    const emit = call.emit.bind(call);
    call.emit = (event: string | symbol, ...args: unknown[]) => {
      const message = args[0];
      if (event !== "data" || !(message instanceof UndecodableRequest)) return emit(event, ...args);
      call.emit = emit;
      if (method.responseStream) emit("error", refusal(message));
      else callback!(refusal(message));
      return true;
    };
    return handler(call, callback);
  }) as grpc.UntypedHandleCall;
}

/**
 * A callback that clips the message of an error status: these services
 * (health, reflection) may echo a request's text, e.g. a 512 KiB service name,
 * and a status message past the client's header limit arrives as INTERNAL.
 */
function clippingErrors(callback: grpc.sendUnaryData<unknown>): grpc.sendUnaryData<unknown> {
  return (error, ...rest) => {
    if (!error) return callback(error, ...rest);
    const details = error.details ?? ("message" in error ? error.message : "");
    if (details.length <= MAX_ERROR_TEXT) return callback(error, ...rest);
    callback({ code: error.code ?? grpc.status.UNKNOWN, details: clip(details), ...(error.metadata ? { metadata: error.metadata } : {}) }, ...rest);
  };
}

/**
 * Adapts the pipeline-wrapped handlers of one service to grpc-js: a
 * HandlerContext per call (headers, deadline, cancellation → AbortSignal,
 * peer and client certificate), backpressure on writes (wait for `drain`),
 * and errors → gRPC status with `grpc-status-details-bin`.
 */
export function grpcHandlers(service: DescService, impl: WrappedImpl): grpc.UntypedServiceImplementation {
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const method of service.methods) {
    const handler = impl[method.localName] as (...args: unknown[]) => unknown;
    switch (method.methodKind) {
      case "unary":
        handlers[method.localName] = ((call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
          const { context, settle } = callContext(service, method, call);
          Promise.resolve()
            .then(() => handler(call.request, context))
            .then(
              (output) => {
                settle();
                sendHeaders(call, context);
                callback(null, output, metadataFromHeaders(context.responseTrailer));
              },
              (error: unknown) => {
                settle();
                callback(grpcStatus(error, context));
              },
            );
        }) as grpc.handleUnaryCall<unknown, unknown>;
        break;
      case "client_streaming":
        handlers[method.localName] = ((call: grpc.ServerReadableStream<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
          const { context, settle } = callContext(service, method, call);
          Promise.resolve()
            .then(() => handler(call.iterator({ destroyOnReturn: false }), context))
            .then(
              (output) => {
                settle();
                sendHeaders(call, context);
                callback(null, output, metadataFromHeaders(context.responseTrailer));
              },
              (error: unknown) => {
                settle();
                callback(grpcStatus(error, context));
              },
            );
        }) as grpc.handleClientStreamingCall<unknown, unknown>;
        break;
      case "server_streaming":
        handlers[method.localName] = ((call: grpc.ServerWritableStream<unknown, unknown>) => {
          const { context, controller, settle } = callContext(service, method, call);
          void writeStream(call, context, controller.signal, settle, () => handler(call.request, context) as AsyncIterable<unknown>);
        }) as grpc.handleServerStreamingCall<unknown, unknown>;
        break;
      case "bidi_streaming":
        handlers[method.localName] = ((call: grpc.ServerDuplexStream<unknown, unknown>) => {
          const { context, controller, settle } = callContext(service, method, call);
          void writeStream(call, context, controller.signal, settle, () => handler(requestMessages(call), context) as AsyncIterable<unknown>);
        }) as grpc.handleBidiStreamingCall<unknown, unknown>;
        break;
    }
  }
  return handlers;
}

/**
 * The request messages of a bidi call, with backpressure. Not the stream's
 * own async iterator: that one destroys the call when the call emits "error",
 * which is how writeStream turns a handler's failure into the status, so a
 * handler that failed while its client was still sending never sent a status.
 * A cancelled call ends the messages with CANCELED, not as a normal end.
 */
async function* requestMessages(call: grpc.ServerDuplexStream<unknown, unknown>): AsyncGenerator<unknown> {
  const queue: unknown[] = [];
  let end = null as { error?: ConnectError } | null; // set by the listeners below
  let wake: (() => void) | null = null;
  const notify = () => {
    wake?.();
    wake = null;
  };
  const onData = (message: unknown) => {
    queue.push(message);
    if (queue.length >= REQUEST_QUEUE_HIGH) call.pause();
    notify();
  };
  const onEnd = () => {
    end ??= {};
    notify();
  };
  const onCancel = () => {
    end ??= { error: new ConnectError("client cancelled the call", Code.Canceled) };
    notify();
  };
  call.on("data", onData).on("end", onEnd).on("error", onEnd).on("cancelled", onCancel).on("close", onCancel);
  try {
    for (;;) {
      if (queue.length > 0) {
        const message = queue.shift();
        if (queue.length === 0) call.resume();
        yield message;
      } else if (end) {
        if (end.error) throw end.error;
        return;
      } else {
        await new Promise<void>((resolve) => (wake = resolve));
      }
    }
  } finally {
    call.off("data", onData).off("end", onEnd).off("error", onEnd).off("cancelled", onCancel).off("close", onCancel);
  }
}

/** Request messages read ahead of a bidi handler before the call is paused. */
const REQUEST_QUEUE_HIGH = 16;

type AnyServerCall =
  | grpc.ServerUnaryCall<unknown, unknown>
  | grpc.ServerReadableStream<unknown, unknown>
  | grpc.ServerWritableStream<unknown, unknown>
  | grpc.ServerDuplexStream<unknown, unknown>;

/**
 * The handler context of one grpc-js call, built directly rather than with
 * connect's createHandlerContext: that one links abort controllers, arms a
 * deadline timer and copies the headers on every call, which was most of the
 * runtime's own cost per call (bench rpc-overhead). grpc-js already enforces
 * the deadline: it ends the call, which arrives here as "cancelled".
 */
function callContext(service: DescService, method: DescMethod, call: AnyServerCall) {
  const controller = new AbortController();
  const deadline = deadlineMs(call.getDeadline());
  // grpc-js emits "cancelled" whenever the HTTP/2 stream closes, also after a
  // call completed normally; only a close before our status is a cancellation.
  let settled = false;
  (call as EventEmitter).on("cancelled", () => {
    if (settled) return;
    const expired = deadline !== undefined && Date.now() >= deadline;
    controller.abort(
      expired ? new ConnectError("the call's deadline passed", Code.DeadlineExceeded) : new ConnectError("client cancelled the call", Code.Canceled),
    );
  });
  const settle = () => {
    settled = true;
  };
  const values = createContextValues().set(listenerKey, {
    listener: "grpc",
    peer: call.getPeer(),
    ...peerCertificate(call),
  });
  const context: HandlerContext = {
    service,
    method,
    protocolName: "grpc",
    requestMethod: "POST",
    url: `/${service.typeName}/${method.name}`,
    signal: controller.signal,
    timeoutMs: () => (deadline === undefined ? undefined : deadline - Date.now()),
    requestHeader: headersFromMetadata(call.metadata),
    responseHeader: new Headers(),
    responseTrailer: new Headers(),
    values,
  };
  return { context, controller, settle };
}

function peerCertificate(call: AnyServerCall): { peerCertificate?: PeerCertificate } {
  const raw = call.getAuthContext()?.sslPeerCertificate?.raw;
  if (!raw) return {};
  const altNames = new X509Certificate(raw).subjectAltName ?? "";
  const uris = altNames
    .split(/,\s*/)
    .filter((name) => name.startsWith("URI:"))
    .map((name) => name.slice(4));
  return { peerCertificate: { uris, raw } };
}

/** The deadline as epoch ms, or undefined when the client set none. */
function deadlineMs(deadline: grpc.Deadline): number | undefined {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(at) ? at : undefined;
}

/**
 * Writes a server stream's responses: framed below grpc-js where it can
 * (grpc-framed-writer.ts), offered to the pipeline as the call's
 * ResponseSink, which responses that can write themselves use; through
 * grpc-js otherwise.
 */
async function writeStream(
  call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>,
  context: HandlerContext,
  cancelled: AbortSignal,
  settle: () => void,
  respond: () => AsyncIterable<unknown>,
): Promise<void> {
  let headersSent = false;
  const schema = context.method.output;
  const framed = framedWriter(call);
  const sink: ResponseSink | undefined = framed && {
    // Once the call has ended (a cancel, a deadline), the framed writer drops what it is given.
    write(messages) {
      if (!headersSent) {
        if (cancelled.aborted) return true;
        headersSent = sendHeaders(call, context);
      }
      return framed.write(messages.map((message) => encodingOf(message, schema)));
    },
    drained: () => framed.drained(cancelled),
  };
  if (sink) context.values.set(responseSinkKey, sink);
  try {
    for await (const response of respond()) {
      if (cancelled.aborted) return;
      // A group's messages all go (its producer bounds it), then the client is waited for once.
      const messages = response instanceof ResponseGroup ? (response.messages as object[]) : [response as object];
      if (sink) {
        if (!sink.write(messages)) await sink.drained();
        continue;
      }
      headersSent ||= sendHeaders(call, context);
      let room = true;
      for (const message of messages) room = call.write(message) && room;
      if (!room) {
        // Backpressure: the client is not reading; wait rather than buffer without bound.
        await once(call, "drain", { signal: cancelled }).catch(() => undefined);
      }
    }
    if (cancelled.aborted) return;
    settle();
    if (!headersSent) sendHeaders(call, context);
    call.end(metadataFromHeaders(context.responseTrailer));
  } catch (error) {
    if (cancelled.aborted) return;
    settle();
    call.emit("error", grpcStatus(error, context));
  }
}

function sendHeaders(call: AnyServerCall, context: HandlerContext): true {
  const metadata = metadataFromHeaders(context.responseHeader);
  if (Object.keys(metadata.getMap()).length > 0) call.sendMetadata(metadata);
  return true;
}

/** A gRPC status object carrying the ConnectError's code, message, metadata and details. */
export function grpcStatus(error: unknown, context?: HandlerContext): Partial<grpc.StatusObject> {
  const connectError = ConnectError.from(error, Code.Internal);
  const metadata = metadataFromHeaders(connectError.metadata);
  if (context) {
    // A failed call's status is trailers-only: response headers travel with it.
    mergeHeaders(metadata, context.responseHeader);
    mergeHeaders(metadata, context.responseTrailer);
  }
  const trailer = setTrailerStatus(new Headers(), connectError);
  const details = trailer.get("grpc-status-details-bin");
  if (details) metadata.set("grpc-status-details-bin", Buffer.from(details, "base64"));
  return { code: connectError.code as number, details: connectError.rawMessage, metadata };
}

const RESERVED = new Set(["content-type", "grpc-status", "grpc-message", "grpc-status-details-bin", "te", "user-agent", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding"]);

function mergeHeaders(metadata: grpc.Metadata, headers: Headers): void {
  headers.forEach((value, key) => {
    if (RESERVED.has(key) || key.startsWith(":")) return;
    if (key.endsWith("-bin")) {
      for (const part of value.split(/,\s*/)) metadata.add(key, Buffer.from(part, "base64"));
    } else {
      metadata.add(key, value);
    }
  });
}

export function metadataFromHeaders(headers: Headers): grpc.Metadata {
  const metadata = new grpc.Metadata();
  mergeHeaders(metadata, headers);
  return metadata;
}

export function headersFromMetadata(metadata: grpc.Metadata): Headers {
  const headers = new Headers();
  for (const [key, values] of Object.entries(metadata.toJSON())) {
    for (const value of values as Array<string | Buffer>) {
      headers.append(key, typeof value === "string" ? value : value.toString("base64"));
    }
  }
  return headers;
}
