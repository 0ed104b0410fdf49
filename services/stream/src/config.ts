import { readServerConfig, readString, readUrl, type Env, type ServerConfig } from "@annals/runtime";

/** Everything the standalone stream service reads from its environment. */
export interface StreamServiceConfig {
  server: ServerConfig;
  /** The log service's gRPC port, which the stream service subscribes to. */
  logUrl: string;
  /** Bearer token for calls to the log service (a token with log.read and log.write). */
  logToken: string | undefined;
}

/** Default ports of the standalone stream service (the all-in-one node has its own). */
export const STREAM_GRPC_PORT = 50064;
export const STREAM_HTTP_PORT = 8064;

/** Reads and validates the configuration; throws ConfigError naming the variable. */
export function readStreamServiceConfig(env: Env): StreamServiceConfig {
  return {
    server: readServerConfig(env, { grpcPort: STREAM_GRPC_PORT, httpPort: STREAM_HTTP_PORT, allowAuthOff: false }),
    logUrl: (readUrl(env, "ANNALS_LOG_URL", ["http:", "https:"]) ?? new URL("http://127.0.0.1:50061")).origin,
    logToken: readString(env, "ANNALS_LOG_TOKEN"),
  };
}
