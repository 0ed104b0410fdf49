import { readFileSync } from "node:fs";
import type { PeerCertificate } from "node:tls";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { context, propagation } from "@opentelemetry/api";
import { rpcDetails } from "@annals/proto";
import { Backoff, sleep } from "@annals/runtime/retry";

export interface TransportOptions {
  /** The gRPC port of an annals process: `http://host:50051`, or `https://` under TLS. */
  baseUrl: string;
  /** A bearer token, or a function that returns a fresh one for each call. */
  token?: string | (() => string | Promise<string>);
  /** Deadline of unary calls that set none themselves, in ms. Default 10000; 0 for none. Streams have none. */
  unaryTimeoutMs?: number;
  /**
   * Retries of idempotent unary calls (declared NO_SIDE_EFFECTS or IDEMPOTENT)
   * that fail with UNAVAILABLE, with exponential backoff and jitter (@annals/runtime/retry). Default 3.
   */
  maxRetries?: number;
  /** First retry delay in ms, doubled each time, capped at 2000. Default 100. */
  retryBaseDelayMs?: number;
  /**
   * PEM files for TLS: a CA bundle to trust, and a client certificate and key
   * for mTLS. With `serverUri`, the server's certificate must carry exactly
   * one URI subject alternative name, equal to it (a SPIFFE ID), instead of
   * matching the host name. `ca`, `cert` and `key` give PEM contents
   * instead of files (a caller that keeps certificates up to date itself).
   * `serverName` is the host name sent (SNI) and checked in the server's
   * certificate instead of the URL's host (e.g. when calling by IP address
   * or through a tunnel).
   */
  tls?: { caFile?: string; certFile?: string; keyFile?: string; ca?: Buffer; cert?: Buffer; key?: Buffer; serverUri?: string; serverName?: string };
  /** Largest message accepted, in bytes. Default 4 MiB. */
  maxMessageBytes?: number;
  /** Extra interceptors, run after the built-in ones. */
  interceptors?: Interceptor[];
  /**
   * Closes the HTTP/2 connection once it has had no call for this long, in
   * ms (connect-node's default: 15 minutes). For clients used in short
   * bursts (the federation puller's fork probes), whose idle connection to
   * a server that went away would otherwise linger.
   */
  idleConnectionTimeoutMs?: number;
}

/**
 * A connect-es gRPC transport to an annals gRPC port with the defaults every
 * caller wants: bearer auth, W3C trace propagation, a deadline on unary calls
 * and retries of idempotent calls on UNAVAILABLE.
 */
export function createAnnalsTransport(options: TransportOptions): Transport {
  const interceptors: Interceptor[] = [
    traceInterceptor,
    unaryDeadlineInterceptor(options.unaryTimeoutMs ?? 10_000),
    retryInterceptor(options.maxRetries ?? 3, options.retryBaseDelayMs ?? 100),
  ];
  if (options.token !== undefined) interceptors.push(bearerInterceptor(options.token));
  interceptors.push(...(options.interceptors ?? []));
  const tls = options.tls;
  return createGrpcTransport({
    baseUrl: options.baseUrl,
    interceptors,
    readMaxBytes: options.maxMessageBytes ?? 4 * 1024 * 1024,
    ...(options.idleConnectionTimeoutMs !== undefined ? { idleConnectionTimeoutMs: options.idleConnectionTimeoutMs } : {}),
    ...(tls
      ? {
          nodeOptions: {
            ...pem("ca", tls.ca, tls.caFile),
            ...pem("cert", tls.cert, tls.certFile),
            ...pem("key", tls.key, tls.keyFile),
            ...(tls.serverName ? { servername: tls.serverName } : {}),
            ...(tls.serverUri ? { checkServerIdentity: (_host: string, cert: PeerCertificate) => checkUriSan(cert, tls.serverUri!) } : {}),
          },
        }
      : {}),
  });
}

/** `{ [name]: contents }` from the contents given or the file named; nothing when neither is. */
function pem<N extends string>(name: N, contents: Buffer | undefined, file: string | undefined): Partial<Record<N, Buffer>> {
  const value = contents ?? (file ? readFileSync(file) : undefined);
  return value ? ({ [name]: value } as Record<N, Buffer>) : {};
}

/** The URI subject alternative names of a certificate. */
export function uriSans(cert: { subjectaltname?: string }): string[] {
  return (cert.subjectaltname ?? "")
    .split(", ")
    .filter((name) => name.startsWith("URI:"))
    .map((name) => name.slice("URI:".length));
}

function checkUriSan(cert: PeerCertificate, expected: string): Error | undefined {
  const uris = uriSans(cert);
  if (uris.length === 1 && uris[0] === expected) return undefined;
  return new Error(`the server's certificate names ${uris.length === 0 ? "no URI" : uris.join(", ")}, not exactly ${expected}`);
}

function bearerInterceptor(token: NonNullable<TransportOptions["token"]>): Interceptor {
  return (next) => async (request) => {
    const value = typeof token === "string" ? token : await token();
    request.header.set("authorization", `Bearer ${value}`);
    return next(request);
  };
}

/** Carries the active trace into the call (`traceparent`), so spans link across services. */
const traceInterceptor: Interceptor = (next) => (request) => {
  propagation.inject(context.active(), request.header, {
    set: (carrier, key, value) => carrier.set(key, value),
  });
  return next(request);
};

function unaryDeadlineInterceptor(timeoutMs: number): Interceptor {
  return (next) => async (request) => {
    if (request.stream || timeoutMs <= 0 || request.header.has("grpc-timeout")) return next(request);
    request.header.set("grpc-timeout", `${timeoutMs}m`);
    // The abort reason carries the code, so the caller sees DEADLINE_EXCEEDED rather than CANCELED.
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new ConnectError(`deadline of ${timeoutMs} ms exceeded`, Code.DeadlineExceeded)), timeoutMs);
    try {
      return await next({ ...request, signal: AbortSignal.any([request.signal, deadline.signal]) });
    } finally {
      clearTimeout(timer);
    }
  };
}

function retryInterceptor(maxRetries: number, baseDelayMs: number): Interceptor {
  return (next) => async (request) => {
    const idempotency = request.method.idempotency;
    const retryable =
      !request.stream &&
      (idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS || idempotency === MethodOptions_IdempotencyLevel.IDEMPOTENT);
    const backoff = new Backoff({ firstMs: baseDelayMs, maxMs: 2000 });
    for (let attempt = 0; ; attempt++) {
      try {
        return await next(request);
      } catch (error) {
        const connectError = ConnectError.from(error);
        if (!retryable || attempt >= maxRetries || connectError.code !== Code.Unavailable || request.signal.aborted) throw error;
        // Never sooner than the server asked (RetryInfo), even past the cap.
        await sleep(Math.max(backoff.next(), askedDelayMs(connectError)), request.signal);
        if (request.signal.aborted) throw ConnectError.from(request.signal.reason ?? new Error("aborted"), Code.Canceled);
      }
    }
  };
}

/** The retry delay the server asked for in RetryInfo, in ms; 0 when none. */
function askedDelayMs(error: ConnectError): number {
  const info = error.findDetails(rpcDetails.RetryInfoSchema)[0]?.retryDelay;
  return info ? Number(info.seconds) * 1000 + info.nanos / 1e6 : 0;
}
