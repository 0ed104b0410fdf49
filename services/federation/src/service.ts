import { federationV1 } from "@annals/proto";
import { ADMIN_ROLE, defineService, type ServiceRegistration } from "@annals/runtime";

/** Roles of the federation service. */
export const FEDERATION_READ = "federation.read";
export const FEDERATION_PEER = "federation.peer";

/**
 * The FederationService registration: who may call what. Handlers arrive with
 * the federation issue; until then every method answers UNIMPLEMENTED (after auth).
 */
export function federationRegistration(): ServiceRegistration {
  return defineService({
    service: federationV1.FederationService,
    impl: {},
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
  });
}
