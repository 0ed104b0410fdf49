// Peer tokens: short-lived JWTs a pulling node signs with its own key, for the
// node it pulls from (the audience), checked there against the key registered
// for the pulling node.
import { Code } from "@connectrpc/connect";
import { SignJWT, decodeJwt, errors as joseErrors, importJWK, jwtVerify } from "jose";
import type { Queryable } from "@annals/db";
import { rpcError } from "@annals/runtime";
import { algorithmOf, nodeIdProblem, type NodeIdentity } from "./identity.js";
import { getPeer, type PeerRecord } from "./peers.js";

/** How long a peer token is valid; a puller signs a fresh one for every connection. */
export const PEER_TOKEN_LIFETIME_SECONDS = 300;
/** How far two nodes' clocks may differ when a peer token's times are checked. */
const PEER_CLOCK_SKEW_SECONDS = 60;

/** Signs a token for pulling from `audience` (the serving node's id). */
export async function signPeerToken(identity: NodeIdentity, audience: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: algorithmOf(identity.publicJwk) })
    .setIssuer(identity.nodeId)
    .setSubject(identity.nodeId)
    .setAudience(audience)
    .setIssuedAt(now)
    .setExpirationTime(now + PEER_TOKEN_LIFETIME_SECONDS)
    .sign(identity.privateKey);
}

const bearerToken = (authorization: string | null) => /^Bearer\s+(\S+)$/i.exec(authorization ?? "")?.[1];

/** The `iss` a token claims, unverified; undefined when it names none, null when it is not a JWT. */
function claimedIssuer(token: string): string | undefined | null {
  try {
    return decodeJwt(token).iss;
  } catch {
    return null;
  }
}

/** The most of an unverified claimed issuer that is echoed in errors or audited (a node id has at most 100 characters). */
const MAX_ECHOED_ISSUER = 100;

/**
 * Who a presented peer token claims to be, unverified, cut to what a node id
 * can be and to printable text: for the audit record of a refusal and its
 * message ("" when it cannot be told). Anyone can claim anything here.
 */
export function claimedPeer(authorization: string | null): string {
  const token = bearerToken(authorization);
  const issuer = token ? claimedIssuer(token) : undefined;
  return typeof issuer === "string" ? printable(issuer) : "";
}

function printable(text: string): string {
  const cut = [...text].slice(0, MAX_ECHOED_ISSUER).join("");
  const clean = cut.replace(/[^\x20-\x7e]/g, "?");
  return text.length > cut.length ? `${clean}…` : clean;
}

function refused(message: string, reason: string): Error {
  return rpcError(Code.Unauthenticated, message, { reason });
}

/**
 * The registered, active peer that signed `authorization`, or UNAUTHENTICATED
 * (no token, unknown issuer, bad signature, wrong audience, expired) /
 * PERMISSION_DENIED (the peer is disabled).
 */
export async function authenticatePeer(db: Queryable, selfNodeId: string, authorization: string | null): Promise<PeerRecord> {
  const token = bearerToken(authorization);
  if (!token) throw refused("Pull needs a peer token: `authorization: Bearer <jwt signed by the pulling node>`", "PEER_TOKEN_MISSING");
  const issuer = claimedIssuer(token);
  if (issuer === null) throw refused("the peer token is not a JWT", "PEER_TOKEN_INVALID");
  // Only a well-formed node id is looked up: the claim is the caller's word and may hold anything.
  const peer = typeof issuer === "string" && nodeIdProblem(issuer) === null ? await getPeer(db, issuer) : undefined;
  if (!peer) throw refused(`no peer "${typeof issuer === "string" ? printable(issuer) : "(none)"}" is registered here`, "PEER_UNKNOWN");
  try {
    const key = await importJWK(peer.publicJwk, algorithmOf(peer.publicJwk));
    await jwtVerify(token, key, {
      issuer: peer.nodeId,
      audience: selfNodeId,
      algorithms: [algorithmOf(peer.publicJwk)],
      requiredClaims: ["exp", "iat"],
      // A puller signs a fresh token for each connection; an older one is a replay.
      maxTokenAge: PEER_TOKEN_LIFETIME_SECONDS,
      clockTolerance: PEER_CLOCK_SKEW_SECONDS,
    });
  } catch (error) {
    const why =
      error instanceof joseErrors.JWTExpired
        ? "it has expired"
        : error instanceof joseErrors.JWTClaimValidationFailed
          ? `its "${error.claim}" claim is wrong`
          : "its signature does not verify with the key registered for the peer";
    throw refused(`the peer token of "${peer.nodeId}" is refused: ${why}`, "PEER_TOKEN_INVALID");
  }
  if (peer.status !== "active") {
    throw rpcError(Code.PermissionDenied, `peer "${peer.nodeId}" is disabled here`, { reason: "PEER_DISABLED", metadata: { node_id: peer.nodeId } });
  }
  return peer;
}
