export {
  ADMIN_ROLE,
  AUTHENTICATED,
  INTERNAL_PRINCIPAL,
  PUBLIC,
  claimList,
  createAuthenticator,
  isAllowed,
  principalFromClaims,
  principalKey,
  requireRole,
  signDevToken,
} from "./auth.js";
export type { AccessRule, AuthOptions, Authenticator, DevTokenOptions, Principal } from "./auth.js";
export { callInfo, callPrincipal } from "./call-context.js";
export type { CallInfo, Listener, PeerCertificate } from "./call-context.js";
export {
  ConfigError,
  isLoopbackHost,
  readBoolean,
  readChoice,
  readDurationMs,
  readEd25519KeyFile,
  readFilePath,
  readInteger,
  readPort,
  readString,
  readUrl,
} from "./config.js";
export type { Env } from "./config.js";
export {
  ERROR_DOMAIN,
  errorReason,
  invalidArgument,
  notFound,
  resourceExhausted,
  retryDelayMs,
  rpcError,
  shuttingDown,
  unavailable,
} from "./errors.js";
export type { ErrorFacts } from "./errors.js";
export { encodingOf, grpcServiceDefinition, shareEncoding, withEncoding } from "./grpc-mount.js";
export { groupedResponses, pushResponses, ResponseGroup, type PushableResponses, type ResponseSink } from "./response-group.js";
export { requestProblem } from "./request-check.js";
export { decodePageToken, encodePageToken, pagePositionInteger } from "./page-token.js";
export type { RequestProblem } from "./request-check.js";
export type { HttpRoute, RouteContext } from "./http-mount.js";
export { writeRouteError } from "./route-errors.js";
export { diagRegistration } from "./diag-service.js";
export { createLogger } from "./logger.js";
export type { Logger, LoggerOptions } from "./logger.js";
export { runMain } from "./main.js";
export type { ErrorMapper } from "./pipeline.js";
export { readServerConfig, readTlsReloadIntervalMs } from "./server-config.js";
export { MAX_NODE_ID_LENGTH, defaultNodeId, nodeIdProblem, readNodeId } from "./node-id.js";
export { CertificateFilesError, watchCertificateFiles } from "./certificate-files.js";
export type { CertificateFiles, CertificateFilesOptions, CertificateMaterial } from "./certificate-files.js";
export type { ServerConfig, ServerConfigDefaults } from "./server-config.js";
export { startServer } from "./server.js";
export type { RunningServer, ServerOptions, TlsOptions } from "./server.js";
export { defineService } from "./service.js";
export type { ServiceComponent, ServiceRegistration } from "./service.js";
export { createTelemetry } from "./telemetry.js";
export type { Telemetry, TelemetryOptions } from "./telemetry.js";
export { serveComponents } from "./serve.js";
export type { Closable, ComponentContext, ServeOptions } from "./serve.js";
export { createInProcessTransport } from "./in-process.js";
export type { InProcessTransport } from "./in-process.js";
export { DEFAULT_LOG_URL, readLogServiceConfig } from "./log-service-config.js";
export type { LogServiceConfig } from "./log-service-config.js";
export { Backoff, isTransient, jitter, sleep } from "./retry.js";
export type { BackoffSettings } from "./retry.js";
