import { readFileSync } from "node:fs";
import { DEFAULT_CLOCK_SKEW_MS, type AuthOptions } from "./auth.js";
import { ConfigError, isLoopbackHost, readBoolean, readChoice, readFilePath, readInteger, readPort, readString, type Env } from "./config.js";
import { DEFAULT_TLS_RELOAD_INTERVAL_MS } from "./certificate-files.js";
import type { TlsOptions } from "./server.js";

/** The settings every annals process shares, read from the environment. */
export interface ServerConfig {
  host: string;
  grpcPort: number;
  httpPort: number;
  /** A plain-text gRPC port serving only grpc.health.v1 (for probes when the gRPC port runs TLS); unset: none. */
  healthPort?: number;
  /** A plain HTTP port serving only /metrics (then not served on the HTTP port); unset: /metrics on the HTTP port. */
  metricsPort?: number;
  /** ANNALS_CORS_ORIGINS: browser origins allowed to call the HTTP port; empty: none. */
  corsOrigins: string[];
  auth: AuthOptions;
  tls: TlsOptions | undefined;
  maxMessageBytes: number;
  shutdownGraceMs: number;
  drainDelayMs: number;
  logLevel: string;
  /** Whether spans go to an OTLP endpoint named by the standard OTEL_* variables. */
  otlpTraces: boolean;
}

export interface ServerConfigDefaults {
  grpcPort: number;
  httpPort: number;
  /**
   * Whether auth may default to off when no key is configured and the bind
   * address is loopback (the all-in-one node). Standalone services always
   * require a key.
   */
  allowAuthOff: boolean;
}

/**
 * Reads ANNALS_HOST, ANNALS_PORT, ANNALS_HTTP_PORT, ANNALS_HEALTH_PORT, ANNALS_METRICS_PORT, ANNALS_AUTH*, ANNALS_TLS_* (and
 * ANNALS_TLS_RELOAD_INTERVAL_MS),
 * ANNALS_MAX_MESSAGE_BYTES, ANNALS_SHUTDOWN_*, ANNALS_LOG_LEVEL and OTEL_*.
 * Throws ConfigError naming the variable on any bad value.
 */
export function readServerConfig(env: Env, defaults: ServerConfigDefaults): ServerConfig {
  const host = readString(env, "ANNALS_HOST", "127.0.0.1");
  const grpcPort = readPort(env, "ANNALS_PORT", defaults.grpcPort);
  const httpPort = readPort(env, "ANNALS_HTTP_PORT", defaults.httpPort);
  if (grpcPort !== 0 && grpcPort === httpPort) {
    throw new ConfigError("ANNALS_HTTP_PORT", `must differ from ANNALS_PORT (both are ${grpcPort})`);
  }
  const healthPort = readString(env, "ANNALS_HEALTH_PORT") === undefined ? undefined : readPort(env, "ANNALS_HEALTH_PORT", 0);
  const metricsPort = readString(env, "ANNALS_METRICS_PORT") === undefined ? undefined : readPort(env, "ANNALS_METRICS_PORT", 0);
  if (metricsPort !== undefined && metricsPort !== 0 && (metricsPort === grpcPort || metricsPort === httpPort)) {
    throw new ConfigError("ANNALS_METRICS_PORT", `must differ from ANNALS_PORT and ANNALS_HTTP_PORT (${metricsPort})`);
  }
  return {
    host,
    grpcPort,
    httpPort,
    ...(healthPort === undefined ? {} : { healthPort }),
    ...(metricsPort === undefined ? {} : { metricsPort }),
    corsOrigins: readCorsOrigins(env),
    auth: readAuth(env, host, defaults.allowAuthOff),
    tls: readTls(env),
    maxMessageBytes: readInteger(env, "ANNALS_MAX_MESSAGE_BYTES", 4 * 1024 * 1024, { min: 1024, max: 256 * 1024 * 1024 }),
    shutdownGraceMs: readInteger(env, "ANNALS_SHUTDOWN_GRACE_MS", 10_000, { min: 0, max: 3_600_000 }),
    drainDelayMs: readInteger(env, "ANNALS_SHUTDOWN_DRAIN_DELAY_MS", 0, { min: 0, max: 600_000 }),
    logLevel: readChoice(env, "ANNALS_LOG_LEVEL", ["trace", "debug", "info", "warn", "error", "fatal", "silent"], "info"),
    otlpTraces:
      readString(env, "OTEL_TRACES_EXPORTER") !== "none" &&
      (readString(env, "OTEL_EXPORTER_OTLP_ENDPOINT") !== undefined || readString(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") !== undefined),
  };
}

function readAuth(env: Env, host: string, allowAuthOff: boolean): AuthOptions {
  const secret = readString(env, "ANNALS_AUTH_JWT_SECRET");
  const jwksFile = readString(env, "ANNALS_AUTH_JWKS_FILE");
  const configured = secret !== undefined || jwksFile !== undefined;
  const mode = readChoice(env, "ANNALS_AUTH", ["jwt", "off"], configured || !allowAuthOff ? "jwt" : "off");
  if (mode === "off") {
    if (!allowAuthOff) throw new ConfigError("ANNALS_AUTH", "auth can only be switched off for the all-in-one node");
    if (!isLoopbackHost(host)) {
      throw new ConfigError("ANNALS_AUTH", `auth is off, which is only allowed on a loopback ANNALS_HOST, not ${host}`);
    }
    return { mode: "off" };
  }
  if (!configured) {
    throw new ConfigError("ANNALS_AUTH_JWT_SECRET", "auth is on but no key is configured: set ANNALS_AUTH_JWT_SECRET or ANNALS_AUTH_JWKS_FILE");
  }
  if (secret !== undefined && Buffer.byteLength(secret) < 32) {
    throw new ConfigError("ANNALS_AUTH_JWT_SECRET", "must be at least 32 bytes long");
  }
  let jwks: { keys: unknown[] } | undefined;
  if (jwksFile !== undefined) {
    try {
      const parsed = JSON.parse(readFileSync(jwksFile, "utf8")) as { keys?: unknown };
      if (!Array.isArray(parsed.keys)) throw new Error('no "keys" array');
      jwks = { keys: parsed.keys };
    } catch (cause) {
      throw new ConfigError("ANNALS_AUTH_JWKS_FILE", `cannot read a JWKS document from ${jwksFile}`, { cause });
    }
  }
  const issuer = readString(env, "ANNALS_AUTH_ISSUER");
  const audience = readString(env, "ANNALS_AUTH_AUDIENCE");
  return {
    mode: "jwt",
    ...(jwks ? { jwks } : { secret: secret! }),
    ...(issuer ? { issuer } : {}),
    ...(audience ? { audience } : {}),
    requireExpiry: readBoolean(env, "ANNALS_AUTH_REQUIRE_EXP", true),
    clockSkewMs: readInteger(env, "ANNALS_AUTH_CLOCK_SKEW_MS", DEFAULT_CLOCK_SKEW_MS, { min: 0, max: 600_000 }),
  };
}

function readTls(env: Env): TlsOptions | undefined {
  const certFile = readFilePath(env, "ANNALS_TLS_CERT_FILE");
  const keyFile = readFilePath(env, "ANNALS_TLS_KEY_FILE");
  const clientCaFile = readFilePath(env, "ANNALS_TLS_CLIENT_CA_FILE");
  if (certFile === undefined && keyFile === undefined) {
    if (clientCaFile !== undefined) throw new ConfigError("ANNALS_TLS_CLIENT_CA_FILE", "needs ANNALS_TLS_CERT_FILE and ANNALS_TLS_KEY_FILE");
    return undefined;
  }
  if (certFile === undefined) throw new ConfigError("ANNALS_TLS_CERT_FILE", "is required when ANNALS_TLS_KEY_FILE is set");
  if (keyFile === undefined) throw new ConfigError("ANNALS_TLS_KEY_FILE", "is required when ANNALS_TLS_CERT_FILE is set");
  return { certFile, keyFile, ...(clientCaFile ? { clientCaFile } : {}), reloadIntervalMs: readTlsReloadIntervalMs(env) };
}

/**
 * ANNALS_TLS_RELOAD_INTERVAL_MS: how often certificate, key and CA files are
 * read again (the gRPC port's and the federation puller's), in ms.
 */
export function readTlsReloadIntervalMs(env: Env): number {
  return readInteger(env, "ANNALS_TLS_RELOAD_INTERVAL_MS", DEFAULT_TLS_RELOAD_INTERVAL_MS, { min: 100, max: 3_600_000 });
}

/** ANNALS_CORS_ORIGINS: comma-separated origins (`https://app.example:8443`), or `*` for any; unset: none. */
function readCorsOrigins(env: Env): string[] {
  const value = readString(env, "ANNALS_CORS_ORIGINS");
  if (value === undefined) return [];
  return value.split(",").map((item) => item.trim()).filter((item) => item !== "").map((origin) => {
    if (origin === "*") return origin;
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      throw new ConfigError("ANNALS_CORS_ORIGINS", `expected origins such as https://app.example (comma-separated) or *, got "${origin}"`);
    }
    if (!["http:", "https:"].includes(url.protocol) || url.origin !== origin) {
      throw new ConfigError("ANNALS_CORS_ORIGINS", `"${origin}" is not an origin: scheme://host[:port] with no path or trailing slash`);
    }
    return origin;
  });
}
