import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { DescFile } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import healthCheck from "grpc-health-check";
import { allFiles } from "@annals/proto";
import { createAuthenticator, type AuthOptions } from "./auth.js";
import { watchCertificateFiles, type CertificateFiles } from "./certificate-files.js";
import { isLoopbackHost } from "./config.js";
import { diagRegistration } from "./diag-service.js";
import { addReflection } from "./reflection.js";
import { decodeGuardedServer, grpcHandlers, grpcServiceDefinition } from "./grpc-mount.js";
import { createHttpHandler, type HttpRoute } from "./http-mount.js";
import type { InProcessTransport } from "./in-process.js";
import { createLogger, type Logger } from "./logger.js";
import { createPipeline, type ErrorMapper } from "./pipeline.js";
import { sleep } from "./retry.js";
import type { ServiceRegistration } from "./service.js";
import { createTelemetry, type Telemetry } from "./telemetry.js";

/** TLS for the gRPC port; with `clientCaFile` every client must present a certificate (mTLS). */
export interface TlsOptions {
  /** PEM certificate chain of this server. */
  certFile: string;
  /** PEM private key of this server. */
  keyFile: string;
  /** PEM CA bundle that client certificates must chain to; enables mTLS. */
  clientCaFile?: string;
  /**
   * How often the three files are read again, in ms; a new valid set is used
   * for new connections, open ones keep theirs. Default 10000.
   */
  reloadIntervalMs?: number;
}

export interface ServerOptions {
  /** Process name in logs and telemetry, e.g. "annals-log". */
  name: string;
  services: readonly ServiceRegistration[];
  /** Bind address for both listeners. Default 127.0.0.1. */
  host?: string;
  /** gRPC port (h2c or TLS); 0 picks a free one. */
  grpcPort: number;
  /** A plain-text port serving only grpc.health.v1 (probes cannot speak TLS); 0 picks a free one; unset: none. */
  healthPort?: number;
  /** HTTP port (Connect, gRPC-Web, SSE, /metrics); 0 picks a free one. */
  httpPort: number;
  /**
   * A plain HTTP port serving only /metrics, which the HTTP port then no
   * longer serves (keeps the metrics off a public port); 0 picks a free one;
   * unset: /metrics is on the HTTP port.
   */
  metricsPort?: number;
  auth: AuthOptions;
  tls?: TlsOptions | undefined;
  /** Largest message accepted or sent, in bytes. Default 4 MiB. */
  maxMessageBytes?: number;
  /** After SIGTERM, how long calls may take to finish before they are cut, in ms. Default 10000. */
  shutdownGraceMs?: number;
  /**
   * After SIGTERM, how long to keep serving with health NOT_SERVING before
   * refusing new calls, in ms, so load balancers stop routing here first. Default 0.
   */
  drainDelayMs?: number;
  /** Browser origins (`https://app.example`, or `*`) allowed to call the HTTP port across origins; default none. */
  corsOrigins?: readonly string[];
  /** Plain HTTP routes on the HTTP port. */
  httpRoutes?: readonly HttpRoute[];
  errorMapper?: ErrorMapper;
  /** Run after the listeners have closed, in order (close pools, stop loops). */
  onShutdown?: ReadonlyArray<() => Promise<void> | void>;
  /** Aborted when shutdown starts (before the drain delay): background work stops taking new work. */
  stopping?: AbortController;
  /** A logger to use; otherwise one is made at `logLevel` (default info). */
  logger?: Logger;
  logLevel?: string;
  /**
   * Telemetry to use (the caller then shuts it down); otherwise one is made,
   * exporting spans over OTLP when `otlpTraces`, and shut down (its spans
   * flushed) at the end of the server's shutdown.
   */
  telemetry?: Telemetry;
  otlpTraces?: boolean;
  /** Mounted with the wrapped services once they are built: this process's own services, in-process. */
  inProcess?: InProcessTransport;
  /** Mount annals.diag.v1.DiagService (any authenticated caller). Default true. */
  diag?: boolean;
  /** Extra descriptors for reflection (the generated files are always included). */
  files?: readonly DescFile[];
}

export interface RunningServer {
  readonly host: string;
  readonly grpcPort: number;
  readonly httpPort: number;
  /** The health-only port, when one was asked for. */
  readonly healthPort: number | undefined;
  /** The metrics-only port, when one was asked for. */
  readonly metricsPort: number | undefined;
  readonly logger: Logger;
  readonly telemetry: Telemetry;
  /** Marks one service (or "" for the whole server) SERVING or NOT_SERVING. */
  setServing(service: string, serving: boolean): void;
  /** Calls in progress on both listeners. */
  readonly inFlight: number;
  /** Graceful shutdown; resolves when everything is closed. Safe to call twice. */
  shutdown(reason?: string): Promise<void>;
}

/**
 * Starts the two listeners of an annals process on one set of handlers:
 * a grpc-js server (gRPC, health, reflection) and an HTTP/1.1 server
 * (Connect, gRPC-Web, /metrics, plain routes). Health is NOT_SERVING until
 * both listen, and again from the first moment of shutdown.
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const host = options.host ?? "127.0.0.1";
  const logger = options.logger ?? createLogger({ name: options.name, ...(options.logLevel ? { level: options.logLevel } : {}) });
  if (options.auth.mode === "off" && !isLoopbackHost(host)) {
    throw new Error(`auth is off, which is only allowed on a loopback address, but the bind address is ${host}`);
  }
  const telemetry = options.telemetry ?? createTelemetry({ serviceName: options.name, otlpTraces: options.otlpTraces ?? false });
  const maxMessageBytes = options.maxMessageBytes ?? 4 * 1024 * 1024;
  const shutdownGraceMs = options.shutdownGraceMs ?? 10_000;
  const drainDelayMs = options.drainDelayMs ?? 0;
  const draining = new AbortController();
  const pipeline = createPipeline({
    authenticator: createAuthenticator(options.auth),
    logger,
    telemetry,
    draining: draining.signal,
    ...(options.errorMapper ? { errorMapper: options.errorMapper } : {}),
  });

  const registrations = options.diag === false ? [...options.services] : [...options.services, diagRegistration];
  const mounted = registrations.map((registration) => ({
    service: registration.service,
    impl: pipeline.wrap(registration),
  }));
  const serviceNames = registrations.map((registration) => registration.service.typeName);
  options.inProcess?.attach(mounted, maxMessageBytes);

  const health = new healthCheck.HealthImplementation(
    Object.fromEntries([["", "NOT_SERVING"], ...serviceNames.map((name) => [name, "NOT_SERVING"])]),
  );
  const grpcServer = new grpc.Server({
    "grpc.max_receive_message_length": maxMessageBytes,
    "grpc.max_send_message_length": maxMessageBytes,
    "grpc.keepalive_permit_without_calls": 1,
    "grpc.keepalive_time_ms": 60_000,
  });
  for (const { service, impl } of mounted) {
    grpcServer.addService(grpcServiceDefinition(service), grpcHandlers(service, impl));
  }
  health.addToServer(decodeGuardedServer(grpcServer));
  addReflection(decodeGuardedServer(grpcServer) as grpc.Server, [...allFiles, ...(options.files ?? [])], serviceNames);

  const certificates = options.tls
    ? await watchCertificateFiles({
        certFile: options.tls.certFile,
        keyFile: options.tls.keyFile,
        ...(options.tls.clientCaFile ? { caFile: options.tls.clientCaFile } : {}),
        ...(options.tls.reloadIntervalMs ? { reloadIntervalMs: options.tls.reloadIntervalMs } : {}),
        role: "server",
        logger,
        meter: telemetry.meter,
      })
    : undefined;
  const credentials = certificates ? reloadingServerCredentials(certificates) : grpc.ServerCredentials.createInsecure();
  const grpcPort = await new Promise<number>((resolve, reject) => {
    grpcServer.bindAsync(`${host.includes(":") ? `[${host}]` : host}:${options.grpcPort}`, credentials, (error, port) =>
      error ? reject(new Error(`cannot listen for gRPC on ${host}:${options.grpcPort}: ${error.message}`, { cause: error })) : resolve(port),
    );
  });

  // Health alone, in plain text, for probes that cannot speak TLS (Kubernetes' gRPC probes).
  let healthServer: grpc.Server | undefined;
  let healthPort: number | undefined;
  if (options.healthPort !== undefined) {
    const server = (healthServer = new grpc.Server());
    health.addToServer(decodeGuardedServer(server));
    healthPort = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`${host.includes(":") ? `[${host}]` : host}:${options.healthPort}`, grpc.ServerCredentials.createInsecure(), (error, port) =>
        error ? reject(new Error(`cannot listen for health on ${host}:${options.healthPort}: ${error.message}`, { cause: error })) : resolve(port),
      );
    });
  }

  const httpHandler = createHttpHandler({
    services: mounted,
    routes: (options.httpRoutes ?? []).map((route) => ({ route, handle: pipeline.wrapRoute(route) })),
    telemetry,
    maxMessageBytes,
    onRouteError: (error) => logger.error({ err: error }, "HTTP route failed"),
    onUndecodable: (service, method, error) => pipeline.refused(service, method, "http", error),
    corsOrigins: options.corsOrigins ?? [],
  });
  const isMetrics = (request: IncomingMessage) => (request.url ?? "/").split("?", 1)[0] === "/metrics";
  // With a metrics port, /metrics is answered there only (metrics-port.test.ts).
  const httpServer: HttpServer = createHttpServer(
    options.metricsPort === undefined
      ? httpHandler
      : (request, response) => (isMetrics(request) ? response.writeHead(404, { "content-type": "text/plain" }).end("not found\n") : httpHandler(request, response)),
  );
  const httpPort = await new Promise<number>((resolve, reject) => {
    httpServer.once("error", (error) =>
      reject(new Error(`cannot listen for HTTP on ${host}:${options.httpPort}: ${error.message}`, { cause: error })),
    );
    httpServer.listen(options.httpPort, host, () => resolve((httpServer.address() as AddressInfo).port));
  });

  let metricsServer: HttpServer | undefined;
  let metricsPort: number | undefined;
  if (options.metricsPort !== undefined) {
    const server = (metricsServer = createHttpServer((request, response) =>
      request.method === "GET" && isMetrics(request) ? telemetry.handleMetrics(request, response) : response.writeHead(404, { "content-type": "text/plain" }).end("not found\n"),
    ));
    metricsPort = await new Promise<number>((resolve, reject) => {
      server.once("error", (error) => reject(new Error(`cannot listen for metrics on ${host}:${options.metricsPort}: ${error.message}`, { cause: error })));
      server.listen(options.metricsPort, host, () => resolve((server.address() as AddressInfo).port));
    });
  }

  const setServing = (service: string, serving: boolean) => health.setStatus(service, serving ? "SERVING" : "NOT_SERVING");
  for (const name of ["", ...serviceNames]) setServing(name, true);
  logger.info(
    { host, grpcPort, httpPort, ...(healthPort === undefined ? {} : { healthPort }), ...(metricsPort === undefined ? {} : { metricsPort }), services: serviceNames, auth: options.auth.mode, tls: options.tls ? (options.tls.clientCaFile ? "mtls" : "tls") : "off" },
    "listening",
  );
  if (options.auth.mode === "off") {
    const warning = `AUTH IS OFF: every caller on ${host} has every role. This is only allowed on a loopback address; set ANNALS_AUTH_JWT_SECRET or ANNALS_AUTH_JWKS_FILE to turn it on.`;
    logger.warn({ auth: "off" }, warning);
    process.stderr.write(`\n*** ${warning} ***\n\n`);
  }

  let shuttingDown: Promise<void> | undefined;
  const shutdown = (reason = "shutdown requested") =>
    (shuttingDown ??= (async () => {
      const started = Date.now();
      logger.info({ reason, inFlight: pipeline.inFlight, graceMs: shutdownGraceMs }, "shutting down");
      options.stopping?.abort();
      for (const name of ["", ...serviceNames]) setServing(name, false);
      if (drainDelayMs > 0) await sleep(drainDelayMs);
      // Open streams end with UNAVAILABLE so clients reconnect elsewhere; unary calls may finish.
      draining.abort();
      const grpcClosed = new Promise<void>((resolve) => grpcServer.tryShutdown(() => resolve()));
      healthServer?.forceShutdown();
      metricsServer?.close();
      metricsServer?.closeAllConnections();
      const httpClosed = new Promise<void>((resolve) => httpServer.close(() => resolve()));
      httpServer.closeIdleConnections();
      const idleSweep = setInterval(() => httpServer.closeIdleConnections(), 100);
      const remaining = Math.max(0, shutdownGraceMs - (Date.now() - started));
      const closed = new AbortController();
      const inTime = await Promise.race([Promise.all([grpcClosed, httpClosed]).then(() => true), sleep(remaining, closed.signal).then(() => closed.signal.aborted)]);
      closed.abort();
      clearInterval(idleSweep);
      if (!inTime) {
        logger.warn({ inFlight: pipeline.inFlight }, "grace period over; cutting the remaining calls");
        grpcServer.forceShutdown();
        httpServer.closeAllConnections();
      }
      certificates?.close();
      for (const hook of options.onShutdown ?? []) {
        try {
          await hook();
        } catch (error) {
          logger.error({ err: error }, "shutdown hook failed");
        }
      }
      logger.info({ ms: Date.now() - started }, "shut down");
      // Last, so that the spans of the calls that just finished (and of the shutdown hooks) are exported.
      if (!options.telemetry) await telemetry.shutdown();
    })());

  return {
    host,
    grpcPort,
    httpPort,
    healthPort,
    metricsPort,
    logger,
    telemetry,
    get inFlight() {
      return pipeline.inFlight;
    },
    setServing,
    shutdown,
  };
}

/**
 * Server credentials whose certificate, key and client CA follow the files:
 * grpc-js calls setSecureContext on its listener with every set the provider
 * publishes, which changes what new TLS handshakes get and leaves open
 * connections (and their calls) alone. grpc-js marks certificate providers
 * experimental; they are what its xDS support uses for the same purpose.
 */
function reloadingServerCredentials(certificates: CertificateFiles): grpc.ServerCredentials {
  const requireClientCertificate = certificates.current().ca !== undefined;
  const provider: grpc.experimental.CertificateProvider = {
    addIdentityCertificateListener(listener) {
      const material = certificates.current();
      process.nextTick(listener, { certificate: material.cert, privateKey: material.key });
      identityListeners.set(listener, certificates.onChange((next) => listener({ certificate: next.cert, privateKey: next.key })));
    },
    removeIdentityCertificateListener(listener) {
      identityListeners.get(listener)?.();
      identityListeners.delete(listener);
    },
    addCaCertificateListener(listener) {
      const material = certificates.current();
      process.nextTick(listener, material.ca ? { caCertificate: material.ca } : null);
      caListeners.set(listener, certificates.onChange((next) => listener(next.ca ? { caCertificate: next.ca } : null)));
    },
    removeCaCertificateListener(listener) {
      caListeners.get(listener)?.();
      caListeners.delete(listener);
    },
  };
  const identityListeners = new Map<grpc.experimental.IdentityCertificateUpdateListener, () => void>();
  const caListeners = new Map<grpc.experimental.CaCertificateUpdateListener, () => void>();
  // The first parameter is the identity provider and the second the CA
  // provider (null: no client certificates asked for), whatever grpc-js's
  // declaration names them; certificate-files.test.ts "mTLS" pins this.
  return grpc.experimental.createCertificateProviderServerCredentials(provider, requireClientCertificate ? provider : null, requireClientCertificate);
}
