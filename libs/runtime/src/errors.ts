import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { rpcDetails } from "@annals/proto";

/** The domain of every `google.rpc.ErrorInfo` annals attaches. */
export const ERROR_DOMAIN = "annals.dev";

/** Facts about an error, sent to the client as `google.rpc.ErrorInfo`. */
export interface ErrorFacts {
  /** UPPER_SNAKE_CASE, stable for a given cause. */
  reason: string;
  /** Extra facts (the field, the limit); never secrets. */
  metadata?: Record<string, string>;
}

/** The longest message or detail value an error carries, in characters. */
export const MAX_ERROR_TEXT = 512;

/**
 * Cuts text an error echoes back (a name, a field value) to MAX_ERROR_TEXT
 * characters. Errors travel in HTTP/2 trailers, whose size clients cap (a
 * grpc-js client resets the stream with a protocol error past its limit), so
 * a 64 KiB name echoed in a NOT_FOUND would turn a clear error into INTERNAL.
 */
export function clip(text: string, max = MAX_ERROR_TEXT): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}

function errorInfo(facts: ErrorFacts) {
  const metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(facts.metadata ?? {})) metadata[key] = clip(value);
  return {
    desc: rpcDetails.ErrorInfoSchema,
    value: create(rpcDetails.ErrorInfoSchema, {
      reason: facts.reason,
      domain: ERROR_DOMAIN,
      metadata,
    }),
  };
}

/** An error with a gRPC code and an `ErrorInfo` detail. */
export function rpcError(code: Code, message: string, facts: ErrorFacts): ConnectError {
  return new ConnectError(clip(message), code, undefined, [errorInfo(facts)]);
}

/**
 * INVALID_ARGUMENT naming the field, with `ErrorInfo` and `BadRequest` details.
 * The message starts with the field path so that a person reading grpcurl
 * output sees at once what to fix.
 */
export function invalidArgument(field: string, description: string, metadata?: Record<string, string>): ConnectError {
  const badRequest = {
    desc: rpcDetails.BadRequestSchema,
    value: create(rpcDetails.BadRequestSchema, {
      fieldViolations: [{ field: clip(field), description: clip(description) }],
    }),
  };
  return new ConnectError(clip(`${field}: ${description}`), Code.InvalidArgument, undefined, [
    errorInfo({ reason: "INVALID_ARGUMENT", metadata: { field, ...metadata } }),
    badRequest,
  ]);
}

/** NOT_FOUND for one named thing, e.g. `notFound("log", "orders")`. */
export function notFound(what: string, name: string): ConnectError {
  return rpcError(Code.NotFound, `${what} "${clip(name, 200)}" not found`, {
    reason: `${what.toUpperCase().replace(/[^A-Z0-9]+/g, "_")}_NOT_FOUND`,
    metadata: { [what]: name },
  });
}

/**
 * RESOURCE_EXHAUSTED with `RetryInfo`, so that clients back off for the
 * given delay instead of retrying at once.
 */
export function resourceExhausted(message: string, facts: ErrorFacts, retryAfterMs: number): ConnectError {
  const retry = {
    desc: rpcDetails.RetryInfoSchema,
    value: create(rpcDetails.RetryInfoSchema, {
      retryDelay: durationFromMs(Math.max(0, Math.ceil(retryAfterMs))),
    }),
  };
  return new ConnectError(clip(message), Code.ResourceExhausted, undefined, [errorInfo(facts), retry]);
}

/** UNAVAILABLE with `RetryInfo`: the client should retry with backoff. */
export function unavailable(message: string, facts: ErrorFacts, retryAfterMs?: number): ConnectError {
  const details: ConstructorParameters<typeof ConnectError>[3] = [errorInfo(facts)];
  if (retryAfterMs !== undefined) {
    details.push({
      desc: rpcDetails.RetryInfoSchema,
      value: create(rpcDetails.RetryInfoSchema, { retryDelay: durationFromMs(Math.ceil(retryAfterMs)) }),
    });
  }
  return new ConnectError(clip(message), Code.Unavailable, undefined, details);
}

/** Reads the `RetryInfo` delay of an error, in milliseconds, if it has one. */
export function retryDelayMs(error: ConnectError): number | undefined {
  const [info] = error.findDetails(rpcDetails.RetryInfoSchema);
  if (!info?.retryDelay) return undefined;
  return Number(info.retryDelay.seconds) * 1000 + Math.floor(info.retryDelay.nanos / 1e6);
}

/** Reads the `ErrorInfo` reason of an error, if it has one. */
export function errorReason(error: ConnectError): string | undefined {
  return error.findDetails(rpcDetails.ErrorInfoSchema)[0]?.reason;
}

/** What a stream the server ends because it shuts down tells the client: UNAVAILABLE, reconnect elsewhere. */
export function shuttingDown(): ConnectError {
  return unavailable("server is shutting down; reconnect to another replica", { reason: "SHUTTING_DOWN" });
}
