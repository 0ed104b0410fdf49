// Peer tokens: short-lived JWTs a pulling node signs with its own key, for the
// node it pulls from (the audience), checked there against the key registered
// for the pulling node.
import { Code } from "@connectrpc/connect";
import { SignJWT, decodeJwt, errors as joseErrors, importJWK, jwtVerify } from "jose";
import type { Queryable } from "@annals/db";
import { rpcError } from "@annals/runtime";
import { algorithmOf, type NodeIdentity } from "./identity.js";
import { getPeer, type PeerRecord } from "./peers.js";

/** How long a peer token is valid; a puller signs a fresh one for every connection. */
export const PEER_TOKEN_LIFETIME_SECONDS = 300;

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

/** Who a presented peer token claims to be, unverified: for the audit record of a refusal ("" when it cannot be told). */
export function claimedPeer(authorization: string | null): string {
  const token = bearerToken(authorization);
  return (token && claimedIssuer(token)?.slice(0, 2048)) || "";
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
  const peer = issuer ? await getPeer(db, issuer) : undefined;
  if (!peer) throw refused(`no peer "${issuer ?? "(none)"}" is registered here`, "PEER_UNKNOWN");
  try {
    const key = await importJWK(peer.publicJwk, algorithmOf(peer.publicJwk));
    await jwtVerify(token, key, { issuer: peer.nodeId, audience: selfNodeId, algorithms: [algorithmOf(peer.publicJwk)] });
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
