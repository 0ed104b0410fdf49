import type { JsonWebKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { keyNameProblem } from "@annals/chain";
import { readDatabaseConfig, type DatabaseOptions } from "@annals/db";
import { ConfigError, readDurationMs, readEd25519KeyFile, readFilePath, readInteger, readNodeId, readLogServiceConfig, readServerConfig, readString, readTlsReloadIntervalMs, type Env, type LogServiceConfig, type ServerConfig } from "@annals/runtime";
import { parseWitnessedLogs, type WitnessedLog } from "./witnessed-logs.js";
import { DEFAULT_HEARTBEAT_MS } from "./pull.js";

/** Everything the standalone federation service reads from its environment. */
export interface FederationServiceConfig {
  server: ServerConfig;
  database: DatabaseOptions;
  federation: FederationOptions;
  /** The log service Pull reads the logs through (ANNALS_LOG_URL, a token with log.read and log.replicate, ANNALS_LOG_TLS_*). */
  logService: LogServiceConfig;
}

/** The federation service's own settings, shared by the standalone service and the node. */
export interface FederationOptions {
  /** This node's SPIFFE-style id. */
  nodeId: string;
  /** A JWK file with this node's private signing key; unset: one generated and kept in the database. */
  keyFile: string | undefined;
  /** Pull calls one peer may start per minute. */
  pullsPerMinute: number;
  /**
   * How often an idle Pull stream served here sends a heartbeat, with the
   * log's latest checkpoint when the puller asks for checkpoints, in ms
   * (ANNALS_FEDERATION_HEARTBEAT_MS, 1000–300000, default 5000): the longest a
   * puller waits to see a rewritten history while nothing is appended.
   */
  heartbeatMs: number;
  /** How long audit records are kept, in ms; 0 keeps them forever. Default 90 days. */
  auditRetentionMs: number;
  /**
   * mTLS for pulling (ANNALS_FEDERATION_TLS_*): the CA that peers' server
   * certificates chain to, and this node's client certificate and key. Set,
   * every peer URL must be https and its certificate must name the peer's node id.
   */
  tls: { caFile: string; certFile: string; keyFile: string; reloadIntervalMs?: number } | undefined;
  /** The witness (docs/merkle.md, "Witnesses"); with no logs it refuses every origin (404). */
  witness: WitnessSettings;
}

/** ANNALS_WITNESS_*: which logs this node witnesses, and its cosigning key. */
export interface WitnessSettings {
  /** ANNALS_WITNESS_LOGS: the origins and their log verifier keys. Default none. */
  logs: readonly WitnessedLog[];
  /** ANNALS_WITNESS_NAME: the cosignatures' key name; default the node id without spiffe://. */
  name: string | undefined;
  /** ANNALS_WITNESS_KEY_FILE, read and checked: an Ed25519 private JWK; unset: one generated once and kept in the database. */
  keyJwk: JsonWebKey | undefined;
}

/** How long audit records are kept unless ANNALS_FEDERATION_AUDIT_RETENTION says otherwise: 90 days. */
export const DEFAULT_AUDIT_RETENTION_MS = 90 * 86_400_000;

/** Pull calls one peer may start per minute unless ANNALS_FEDERATION_PULLS_PER_MINUTE says otherwise. */
export const DEFAULT_PULLS_PER_MINUTE = 60;

/** Default ports of the standalone federation service (the all-in-one node has its own). */
export const FEDERATION_GRPC_PORT = 50063;
export const FEDERATION_HTTP_PORT = 8063;

/** Reads and validates the configuration; throws ConfigError naming the variable. */
export function readFederationServiceConfig(env: Env): FederationServiceConfig {
  return {
    server: readServerConfig(env, { grpcPort: FEDERATION_GRPC_PORT, httpPort: FEDERATION_HTTP_PORT, allowAuthOff: false }),
    database: readDatabaseConfig(env, ".annals-data/federation"),
    federation: readFederationOptions(env),
    logService: readLogServiceConfig(env),
  };
}

/** ANNALS_NODE_ID and ANNALS_FEDERATION_KEY_FILE; the node reads them too. */
export function readFederationOptions(env: Env): FederationOptions {
  return {
    nodeId: readNodeId(env),
    keyFile: readKeyFile(env),
    pullsPerMinute: readInteger(env, "ANNALS_FEDERATION_PULLS_PER_MINUTE", DEFAULT_PULLS_PER_MINUTE, { min: 1, max: 1_000_000 }),
    heartbeatMs: readInteger(env, "ANNALS_FEDERATION_HEARTBEAT_MS", DEFAULT_HEARTBEAT_MS, { min: 1000, max: 300_000 }),
    auditRetentionMs: readDurationMs(env, "ANNALS_FEDERATION_AUDIT_RETENTION", DEFAULT_AUDIT_RETENTION_MS),
    tls: readFederationTls(env),
    witness: readWitnessSettings(env),
  };
}

/** ANNALS_FEDERATION_KEY_FILE, checked now: a readable JSON JWK with a private part. */
function readKeyFile(env: Env): string | undefined {
  const name = "ANNALS_FEDERATION_KEY_FILE";
  const path = readFilePath(env, name);
  if (path === undefined) return undefined;
  let jwk: unknown;
  try {
    jwk = JSON.parse(readFileSync(path, "utf8"));
  } catch (cause) {
    throw new ConfigError(name, `file ${path} is not a JSON Web Key (${cause instanceof Error ? cause.message : String(cause)})`, { cause });
  }
  if (typeof jwk !== "object" || jwk === null || typeof (jwk as { d?: unknown }).d !== "string") {
    throw new ConfigError(name, `file ${path} holds no private key (a JWK with a "d" member, Ed25519 or P-256)`);
  }
  return path;
}

function readFederationTls(env: Env): FederationOptions["tls"] {
  const names = ["ANNALS_FEDERATION_TLS_CA_FILE", "ANNALS_FEDERATION_TLS_CERT_FILE", "ANNALS_FEDERATION_TLS_KEY_FILE"] as const;
  const [caFile, certFile, keyFile] = names.map((name) => readFilePath(env, name));
  if (!caFile && !certFile && !keyFile) return undefined;
  const missing = names.find((_, i) => ![caFile, certFile, keyFile][i]);
  if (missing) throw new ConfigError(missing, "is required with the other ANNALS_FEDERATION_TLS_* files (mTLS needs the CA, the certificate and its key)");
  // Read again while the process runs (cert-manager renews them), as the gRPC port's are.
  return { caFile: caFile!, certFile: certFile!, keyFile: keyFile!, reloadIntervalMs: readTlsReloadIntervalMs(env) };
}

function readWitnessSettings(env: Env): WitnessSettings {
  let logs: WitnessedLog[] = [];
  const text = readString(env, "ANNALS_WITNESS_LOGS");
  if (text !== undefined) {
    try {
      logs = parseWitnessedLogs(text);
    } catch (cause) {
      throw new ConfigError("ANNALS_WITNESS_LOGS", `expected "<vkey>" or "<origin> <vkey>" entries separated by ";" (${(cause as Error).message})`, { cause });
    }
  }
  const name = readString(env, "ANNALS_WITNESS_NAME");
  const problem = name === undefined ? null : keyNameProblem(name);
  if (problem) throw new ConfigError("ANNALS_WITNESS_NAME", `a key name ${problem}`);
  return { logs, name, keyJwk: readEd25519KeyFile(env, "ANNALS_WITNESS_KEY_FILE") };
}

