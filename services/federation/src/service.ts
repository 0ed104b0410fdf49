import { federationV1 } from "@annals/proto";
import type { Database } from "@annals/db";
import { ADMIN_ROLE, defineService, invalidArgument, notFound, type ServiceRegistration } from "@annals/runtime";
import type { NodeIdentity } from "./identity.js";
import { UPDATABLE_FIELDS, checkPeer, getPeer, insertPeer, listPeers, peerMessage, removePeer, updatePeer } from "./peers.js";

/** Roles of the federation service. */
export const FEDERATION_READ = "federation.read";
export const FEDERATION_PEER = "federation.peer";

export interface FederationServiceDeps {
  db: Database;
  identity: NodeIdentity;
}

/**
 * The FederationService registration: the peer registry and node identity.
 * Pull, replication status, reset and the audit trail are not written yet
 * and answer UNIMPLEMENTED (after auth).
 */
export function federationRegistration(deps: FederationServiceDeps): ServiceRegistration {
  const { db, identity } = deps;
  return defineService({
    service: federationV1.FederationService,
    access: {
      getNodeInfo: FEDERATION_READ,
      registerPeer: ADMIN_ROLE,
      updatePeer: ADMIN_ROLE,
      removePeer: ADMIN_ROLE,
      getPeer: FEDERATION_READ,
      listPeers: FEDERATION_READ,
      pull: FEDERATION_PEER,
      getReplicationStatus: FEDERATION_READ,
      resetReplication: ADMIN_ROLE,
      listAuditRecords: FEDERATION_READ,
    },
    impl: {
      async getNodeInfo() {
        return { nodeId: identity.nodeId, publicKeyJwk: JSON.stringify(identity.publicJwk) };
      },

      async registerPeer(request) {
        if (!request.peer) throw invalidArgument("peer", "is required");
        return { peer: peerMessage(await insertPeer(db, await checkPeer(request.peer, identity.nodeId))) };
      },

      async updatePeer(request) {
        if (!request.peer) throw invalidArgument("peer", "is required");
        if (request.updateMask.length === 0) throw invalidArgument("update_mask", `name the fields to change: ${UPDATABLE_FIELDS.join(", ")}`);
        request.updateMask.forEach((field, i) => {
          if (!(UPDATABLE_FIELDS as readonly string[]).includes(field)) throw invalidArgument(`update_mask[${i}]`, `"${field}" cannot be changed; use ${UPDATABLE_FIELDS.join(", ")}`);
        });
        const current = await getPeer(db, request.peer.nodeId);
        if (!current) throw notFound("peer", request.peer.nodeId);
        // The stored peer with the masked fields taken from the request, then checked as a whole.
        const merged = peerMessage(current);
        const mask = new Set(request.updateMask);
        const next = {
          ...merged,
          ...(mask.has("url") ? { url: request.peer.url } : {}),
          ...(mask.has("public_key_jwk") ? { publicKeyJwk: request.peer.publicKeyJwk } : {}),
          ...(mask.has("served_logs") ? { servedLogs: request.peer.servedLogs } : {}),
          ...(mask.has("mirrored_logs") ? { mirroredLogs: request.peer.mirroredLogs } : {}),
          ...(mask.has("status") ? { status: request.peer.status } : {}),
        } as federationV1.Peer;
        const updated = await updatePeer(db, await checkPeer(next, identity.nodeId));
        if (!updated) throw notFound("peer", request.peer.nodeId);
        return { peer: peerMessage(updated) };
      },

      async removePeer(request) {
        return { removed: await removePeer(db, request.nodeId) };
      },

      async getPeer(request) {
        const peer = await getPeer(db, request.nodeId);
        if (!peer) throw notFound("peer", request.nodeId);
        return { peer: peerMessage(peer) };
      },

      async listPeers() {
        return { peers: (await listPeers(db)).map(peerMessage) };
      },
    },
  });
}
