import { readInteger, readLogServiceConfig, readServerConfig, type Env, type LogServiceConfig, type ServerConfig } from "@annals/runtime";
import type { HubSettings } from "./hub.js";

/** Everything the standalone stream service reads from its environment. */
export interface StreamServiceConfig {
  server: ServerConfig;
  /** The log service the stream service reads and appends to (ANNALS_LOG_URL, a token with log.read and log.write, ANNALS_LOG_TLS_*). */
  logService: LogServiceConfig;
  stream: HubSettings;
}

/** Default ports of the standalone stream service (the all-in-one node has its own). */
export const STREAM_GRPC_PORT = 50064;
export const STREAM_HTTP_PORT = 8064;

export const DEFAULT_STREAM_SETTINGS: HubSettings = {
  keepaliveMs: 15_000,
  bufferFrames: 1000,
  snapshotScanLimit: 10_000,
  maxStreamsPerUser: 32,
  maxStreams: 10_000,
  catchUpReads: 4,
};

/** Reads and validates the configuration; throws ConfigError naming the variable. */
export function readStreamServiceConfig(env: Env): StreamServiceConfig {
  return {
    server: readServerConfig(env, { grpcPort: STREAM_GRPC_PORT, httpPort: STREAM_HTTP_PORT, allowAuthOff: false }),
    logService: readLogServiceConfig(env),
    stream: readStreamSettings(env),
  };
}

/** ANNALS_STREAM_* settings; the node reads them too. */
export function readStreamSettings(env: Env): HubSettings {
  const defaults = DEFAULT_STREAM_SETTINGS;
  return {
    keepaliveMs: readInteger(env, "ANNALS_STREAM_KEEPALIVE_MS", defaults.keepaliveMs, { min: 50, max: 300_000 }),
    bufferFrames: readInteger(env, "ANNALS_STREAM_BUFFER_EVENTS", defaults.bufferFrames, { min: 10, max: 1_000_000 }),
    snapshotScanLimit: readInteger(env, "ANNALS_STREAM_SNAPSHOT_SCAN", defaults.snapshotScanLimit, { min: 1000, max: 1_000_000 }),
    maxStreamsPerUser: readInteger(env, "ANNALS_STREAM_MAX_PER_USER", defaults.maxStreamsPerUser, { min: 1, max: 1_000_000 }),
    maxStreams: readInteger(env, "ANNALS_STREAM_MAX_STREAMS", defaults.maxStreams, { min: 1, max: 10_000_000 }),
    catchUpReads: readInteger(env, "ANNALS_STREAM_CATCHUP_READS", defaults.catchUpReads, { min: 1, max: 1000 }),
  };
}
