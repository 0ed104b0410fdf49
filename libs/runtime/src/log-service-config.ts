import { ConfigError, readFilePath, readString, readUrl, type Env } from "./config.js";

/**
 * How a standalone service reaches the log service (the stream and
 * federation services; the node calls its own in-process instead).
 */
export interface LogServiceConfig {
  /** ANNALS_LOG_URL: the log service's gRPC port, `http://` or `https://`. */
  baseUrl: string;
  /** ANNALS_LOG_TOKEN: bearer token for the calls. */
  token: string | undefined;
  /**
   * ANNALS_LOG_TLS_CA_FILE (the CA its certificate chains to; unset: the
   * system's), ANNALS_LOG_TLS_CERT_FILE and ANNALS_LOG_TLS_KEY_FILE (a
   * client certificate, when its port runs mTLS). Unset with an https URL: TLS
   * with the system's CAs and no client certificate.
   */
  tls: { caFile?: string; certFile?: string; keyFile?: string } | undefined;
}

export const DEFAULT_LOG_URL = "http://127.0.0.1:50061";

/** Reads ANNALS_LOG_URL, ANNALS_LOG_TOKEN and ANNALS_LOG_TLS_*; throws ConfigError naming the variable. */
export function readLogServiceConfig(env: Env): LogServiceConfig {
  const url = readUrl(env, "ANNALS_LOG_URL", ["http:", "https:"]) ?? new URL(DEFAULT_LOG_URL);
  const caFile = readFilePath(env, "ANNALS_LOG_TLS_CA_FILE");
  const certFile = readFilePath(env, "ANNALS_LOG_TLS_CERT_FILE");
  const keyFile = readFilePath(env, "ANNALS_LOG_TLS_KEY_FILE");
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new ConfigError(certFile ? "ANNALS_LOG_TLS_KEY_FILE" : "ANNALS_LOG_TLS_CERT_FILE", "is required with the other one (a client certificate needs its key)");
  }
  const anyTls = caFile ?? certFile;
  if (anyTls !== undefined && url.protocol !== "https:") {
    throw new ConfigError("ANNALS_LOG_URL", `must be an https URL when ANNALS_LOG_TLS_* files are set, got ${url.origin}`);
  }
  return {
    baseUrl: url.origin,
    token: readString(env, "ANNALS_LOG_TOKEN"),
    tls: anyTls === undefined ? undefined : { ...(caFile ? { caFile } : {}), ...(certFile ? { certFile } : {}), ...(keyFile ? { keyFile } : {}) },
  };
}
