import { readDatabaseConfig, type DatabaseOptions } from "@annals/db";
import type { JsonWebKey } from "node:crypto";
import {
  ConfigError,
  readEd25519KeyFile,
  readNodeId,
  readInteger,
  readServerConfig,
  type Env,
  type ServerConfig,
} from "@annals/runtime";
import { DEFAULT_LOG_LIMITS, type LogLimits } from "./entry-input.js";
import { DEFAULT_GROUP_COMMIT, type GroupCommitOptions } from "./append-batcher.js";
import { DEFAULT_CHECKPOINT_INTERVAL_MS } from "./checkpointer.js";
import { parseWitnessPolicy, type WitnessPolicy } from "./witness-policy.js";
import { DEFAULT_WITNESS_TIMEOUT_MS } from "./witness-publisher.js";

/** Everything the standalone log service reads from its environment. */
export interface LogServiceConfig {
  server: ServerConfig;
  database: DatabaseOptions;
  log: LogOptions;
}

/** The log service's own settings, shared by the standalone service and the node. */
export interface LogOptions {
  limits: LogLimits;
  groupCommit: GroupCommitOptions;
  /** ANNALS_NODE_ID: names the node's checkpoints. */
  nodeId: string;
  /** ANNALS_LOG_SIGNING_KEY_FILE, read and checked: an Ed25519 private JWK. */
  signingKey: JsonWebKey | undefined;
  /** ANNALS_LOG_CHECKPOINT_INTERVAL_MS. */
  checkpointIntervalMs: number;
  /** ANNALS_LOG_WITNESSES: the witnesses of the node's checkpoints and how many must cosign; undefined: none (checkpoints are published as signed). */
  witnesses: WitnessPolicy | undefined;
  /** ANNALS_LOG_WITNESS_TIMEOUT_MS: how long one request to a witness may take. Default 5000. */
  witnessTimeoutMs: number;
}

/** Default ports of the standalone log service (the all-in-one node has its own). */
export const LOG_GRPC_PORT = 50061;
export const LOG_HTTP_PORT = 8061;

/** Reads and validates the configuration; throws ConfigError naming the variable. */
export function readLogServiceConfig(env: Env): LogServiceConfig {
  return {
    server: readServerConfig(env, { grpcPort: LOG_GRPC_PORT, httpPort: LOG_HTTP_PORT, allowAuthOff: false }),
    database: readDatabaseConfig(env, ".annals-data/log"),
    log: readLogOptions(env),
  };
}

/** ANNALS_LOG_* settings; the node reads them too. */
export function readLogOptions(env: Env): LogOptions {
  return {
    limits: {
      maxPayloadBytes: readInteger(env, "ANNALS_LOG_MAX_PAYLOAD_BYTES", DEFAULT_LOG_LIMITS.maxPayloadBytes, { min: 64, max: 16 * 1024 * 1024 }),
      maxMetadataBytes: readInteger(env, "ANNALS_LOG_MAX_METADATA_BYTES", DEFAULT_LOG_LIMITS.maxMetadataBytes, { min: 0, max: 1024 * 1024 }),
      maxBatchEntries: readInteger(env, "ANNALS_LOG_MAX_BATCH_ENTRIES", DEFAULT_LOG_LIMITS.maxBatchEntries, { min: 1, max: 100_000 }),
      maxSubscriptionsPerSubject: readInteger(env, "ANNALS_LOG_MAX_SUBSCRIPTIONS_PER_SUBJECT", DEFAULT_LOG_LIMITS.maxSubscriptionsPerSubject, {
        min: 1,
        max: 1_000_000,
      }),
    },
    groupCommit: {
      maxEntries: readInteger(env, "ANNALS_LOG_GROUP_COMMIT_MAX_ENTRIES", DEFAULT_GROUP_COMMIT.maxEntries, { min: 1, max: 100_000 }),
      maxWaitMs: readInteger(env, "ANNALS_LOG_GROUP_COMMIT_WAIT_MS", DEFAULT_GROUP_COMMIT.maxWaitMs, { min: 0, max: 1000 }),
    },
    nodeId: readNodeId(env),
    signingKey: readEd25519KeyFile(env, "ANNALS_LOG_SIGNING_KEY_FILE"),
    checkpointIntervalMs: readInteger(env, "ANNALS_LOG_CHECKPOINT_INTERVAL_MS", DEFAULT_CHECKPOINT_INTERVAL_MS, { min: 10, max: 1000 }),
    witnesses: readWitnessPolicy(env),
    witnessTimeoutMs: readInteger(env, "ANNALS_LOG_WITNESS_TIMEOUT_MS", DEFAULT_WITNESS_TIMEOUT_MS, { min: 100, max: 120_000 }),
  };
}

/** ANNALS_LOG_WITNESSES: `k=<K>; <witness vkey> <submission prefix URL>; …` (witness-policy.ts). */
function readWitnessPolicy(env: Env): WitnessPolicy | undefined {
  const name = "ANNALS_LOG_WITNESSES";
  const text = env[name];
  if (text === undefined || text.trim() === "") return undefined;
  try {
    return parseWitnessPolicy(text);
  } catch (cause) {
    throw new ConfigError(name, `expected "k=<K>; <witness vkey> <URL>; …" (${(cause as Error).message})`, { cause });
  }
}
