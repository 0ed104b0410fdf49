import { hostname } from "node:os";
import { ConfigError, readString, type Env } from "./config.js";

// A node's identity, shared by the services that name it: federation (peer
// tokens, mirrors) and the log service (the origin of its signed checkpoints).

/** The longest node id: a mirror's log id and a checkpoint's origin embed it. */
export const MAX_NODE_ID_LENGTH = 100;

/** Why a node id is not a SPIFFE-style URI (`spiffe://trust-domain/path`), or null. */
export function nodeIdProblem(nodeId: string): string | null {
  if (nodeId === "") return "is required";
  if (nodeId.length > MAX_NODE_ID_LENGTH) return `is longer than ${MAX_NODE_ID_LENGTH} characters`;
  // Path segments are limited to letters, digits, '.', '_' and '-' so that a mirror log can be named after the node.
  const match = /^spiffe:\/\/([a-z0-9._-]+)(\/[A-Za-z0-9._-]+)+$/.exec(nodeId);
  if (!match) return "must be a SPIFFE ID: spiffe://<trust domain, lower case>/<path of letters, digits, . _ ->, e.g. spiffe://acme.example/annals/eu-1";
  if (nodeId.split("/").slice(3).some((segment) => segment === "." || segment === "..")) return "must not have . or .. path segments";
  return null;
}

/** The node id when ANNALS_NODE_ID is unset: `spiffe://annals.local/node/<hostname>`. */
export function defaultNodeId(): string {
  const host = hostname().toLowerCase().replace(/[^a-z0-9._-]/g, "-") || "localhost";
  return `spiffe://annals.local/node/${host}`;
}

/** ANNALS_NODE_ID, checked; default defaultNodeId(). */
export function readNodeId(env: Env): string {
  const nodeId = readString(env, "ANNALS_NODE_ID", defaultNodeId());
  const problem = nodeIdProblem(nodeId);
  if (problem) throw new ConfigError("ANNALS_NODE_ID", problem);
  return nodeId;
}
