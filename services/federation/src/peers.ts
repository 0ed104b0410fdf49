// The peer registry (table federation.peers) and the rules a peer must meet.
import { Code } from "@connectrpc/connect";
import { importJWK, type JWK } from "jose";
import type { Database, Queryable } from "@annals/db";
import { federationV1 } from "@annals/proto";
import { invalidArgument, rpcError } from "@annals/runtime";
import { logIdProblem } from "@annals/logs";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { algorithmOf, mirrorLogId, nodeIdProblem } from "./identity.js";
import { logVerifierKeyProblem } from "./log-key.js";

export type PeerStatus = "active" | "disabled";

/** A registered peer, as the registry stores it. */
export interface PeerRecord {
  nodeId: string;
  url: string;
  publicJwk: JWK;
  servedLogs: string[];
  mirroredLogs: string[];
  status: PeerStatus;
  /** The signed-note verifier key of the peer's checkpoints; "" when none is registered (log-key.ts). */
  logVerifierKey: string;
  createdAt: Date;
  updatedAt: Date;
}

interface PeerRow {
  node_id: string;
  url: string;
  public_key: JWK;
  served_logs: string[];
  mirrored_logs: string[];
  status: PeerStatus;
  log_verifier_key: string;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = "node_id, url, public_key, served_logs, mirrored_logs, status, log_verifier_key, created_at, updated_at";

const fromRow = (row: PeerRow): PeerRecord => ({
  nodeId: row.node_id,
  url: row.url,
  publicJwk: row.public_key,
  servedLogs: row.served_logs,
  mirroredLogs: row.mirrored_logs,
  status: row.status,
  logVerifierKey: row.log_verifier_key,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

export function peerMessage(peer: PeerRecord): MessageInitShape<typeof federationV1.PeerSchema> {
  return {
    nodeId: peer.nodeId,
    url: peer.url,
    publicKeyJwk: JSON.stringify(peer.publicJwk),
    servedLogs: peer.servedLogs,
    mirroredLogs: peer.mirroredLogs,
    status: peer.status === "active" ? federationV1.PeerStatus.ACTIVE : federationV1.PeerStatus.DISABLED,
    logVerifierKey: peer.logVerifierKey,
    createTime: timestampFromDate(peer.createdAt),
    updateTime: timestampFromDate(peer.updatedAt),
  };
}

export async function getPeer(db: Queryable, nodeId: string): Promise<PeerRecord | undefined> {
  const { rows } = await db.query<PeerRow>(`select ${COLUMNS} from federation.peers where node_id = $1`, [nodeId]);
  return rows[0] ? fromRow(rows[0]) : undefined;
}

export async function listPeers(db: Queryable): Promise<PeerRecord[]> {
  const { rows } = await db.query<PeerRow>(`select ${COLUMNS} from federation.peers order by node_id`);
  return rows.map(fromRow);
}

/** Up to `limit` peers by node id, after the node id `after` (the page token's position); `more` when others follow. */
export async function listPeerPage(db: Queryable, options: { after: string; limit: number }): Promise<{ peers: PeerRecord[]; more: boolean }> {
  const { rows } = await db.query<PeerRow>(`select ${COLUMNS} from federation.peers where node_id > $1 order by node_id limit $2`, [options.after, options.limit + 1]);
  return { peers: rows.slice(0, options.limit).map(fromRow), more: rows.length > options.limit };
}

/** Inserts a peer; ALREADY_EXISTS when its node id is registered. */
export async function insertPeer(db: Queryable, peer: Omit<PeerRecord, "createdAt" | "updatedAt">): Promise<PeerRecord> {
  const { rows } = await db.query<PeerRow>(
    `insert into federation.peers (node_id, url, public_key, served_logs, mirrored_logs, status, log_verifier_key)
     values ($1, $2, $3::jsonb, $4::text[], $5::text[], $6, $7) on conflict (node_id) do nothing returning ${COLUMNS}`,
    [peer.nodeId, peer.url, JSON.stringify(peer.publicJwk), peer.servedLogs, peer.mirroredLogs, peer.status, peer.logVerifierKey],
  );
  if (!rows[0]) {
    throw rpcError(Code.AlreadyExists, `peer "${peer.nodeId}" is already registered; change it with UpdatePeer`, {
      reason: "PEER_EXISTS",
      metadata: { node_id: peer.nodeId },
    });
  }
  return fromRow(rows[0]);
}

/** Replaces a peer's changeable fields; undefined when it is not registered. */
export async function updatePeer(db: Database, peer: Omit<PeerRecord, "createdAt" | "updatedAt">): Promise<PeerRecord | undefined> {
  const { rows } = await db.query<PeerRow>(
    `update federation.peers set url = $2, public_key = $3::jsonb, served_logs = $4::text[], mirrored_logs = $5::text[], status = $6,
       log_verifier_key = $7, updated_at = now()
     where node_id = $1 returning ${COLUMNS}`,
    [peer.nodeId, peer.url, JSON.stringify(peer.publicJwk), peer.servedLogs, peer.mirroredLogs, peer.status, peer.logVerifierKey],
  );
  return rows[0] ? fromRow(rows[0]) : undefined;
}

export async function removePeer(db: Queryable, nodeId: string): Promise<boolean> {
  return (await db.query("delete from federation.peers where node_id = $1", [nodeId])).rowCount > 0;
}

/** The fields UpdatePeer may change, by their proto names. */
export const UPDATABLE_FIELDS = ["url", "public_key_jwk", "served_logs", "mirrored_logs", "status", "log_verifier_key"] as const;

/** Checks a peer message field by field; INVALID_ARGUMENT names the first bad one (under `prefix`). */
export async function checkPeer(
  peer: federationV1.Peer,
  selfNodeId: string,
  prefix = "peer",
): Promise<Omit<PeerRecord, "createdAt" | "updatedAt">> {
  const idProblem = nodeIdProblem(peer.nodeId);
  if (idProblem) throw invalidArgument(`${prefix}.node_id`, idProblem);
  if (peer.nodeId === selfNodeId) throw invalidArgument(`${prefix}.node_id`, "is this node's own id");
  let url: URL;
  try {
    url = new URL(peer.url);
  } catch {
    throw invalidArgument(`${prefix}.url`, "must be the peer's gRPC endpoint, e.g. https://annals.eu-1.acme.example:50051");
  }
  if (!["http:", "https:"].includes(url.protocol) || !url.hostname || url.pathname !== "/" || url.search || url.hash) {
    throw invalidArgument(`${prefix}.url`, "must be an http:// or https:// origin with no path, e.g. https://annals.eu-1.acme.example:50051");
  }
  const publicJwk = await checkPublicKey(peer.publicKeyJwk, `${prefix}.public_key_jwk`);
  peer.servedLogs.forEach((pattern, i) => {
    const problem = pattern === "*" ? null : logIdProblem(pattern.endsWith("/*") ? pattern.slice(0, -2) : pattern);
    if (problem) throw invalidArgument(`${prefix}.served_logs[${i}]`, `${problem} (or use prefix/* or *)`);
  });
  peer.mirroredLogs.forEach((logId, i) => {
    const problem = logIdProblem(logId);
    if (problem) throw invalidArgument(`${prefix}.mirrored_logs[${i}]`, `${problem} (a log name, no pattern)`);
    const mirror = mirrorLogId(peer.nodeId, logId);
    const mirrorProblem = logIdProblem(mirror);
    if (mirrorProblem) throw invalidArgument(`${prefix}.mirrored_logs[${i}]`, `gives the mirror name "${mirror}", which ${mirrorProblem}`);
  });
  if (peer.status !== federationV1.PeerStatus.UNSPECIFIED && !federationV1.PeerStatus[peer.status]) {
    throw invalidArgument(`${prefix}.status`, "is not one of the values this server knows");
  }
  const logVerifierKey = peer.logVerifierKey.trim();
  if (logVerifierKey !== "") {
    const problem = logVerifierKeyProblem(logVerifierKey, peer.nodeId);
    if (problem) throw invalidArgument(`${prefix}.log_verifier_key`, problem);
  }
  return {
    nodeId: peer.nodeId,
    url: url.origin,
    publicJwk,
    servedLogs: [...new Set(peer.servedLogs)],
    mirroredLogs: [...new Set(peer.mirroredLogs)],
    status: peer.status === federationV1.PeerStatus.DISABLED ? "disabled" : "active",
    logVerifierKey,
  };
}

async function checkPublicKey(text: string, field: string): Promise<JWK> {
  let jwk: JWK;
  try {
    jwk = JSON.parse(text) as JWK;
  } catch {
    throw invalidArgument(field, "must be a JWK as JSON text (what GetNodeInfo returns as public_key_jwk)");
  }
  if (typeof jwk !== "object" || jwk === null || Array.isArray(jwk)) throw invalidArgument(field, "must be a JSON object (a JWK)");
  if ("d" in jwk) throw invalidArgument(field, "holds a private key; register only the public key");
  try {
    await importJWK(jwk, algorithmOf(jwk));
  } catch (error) {
    throw invalidArgument(field, `is not a usable public key: ${(error as Error).message}`);
  }
  return jwk;
}

/** Whether a peer may pull a log: one of its served_logs names it (`orders`, `eu/*`, `*`). */
export function servesLog(peer: PeerRecord, logId: string): boolean {
  return peer.servedLogs.some((pattern) => pattern === "*" || pattern === logId || (pattern.endsWith("/*") && logId.startsWith(pattern.slice(0, -1))));
}
