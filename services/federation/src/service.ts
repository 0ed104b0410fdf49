import { Code, ConnectError } from "@connectrpc/connect";
import type { LogClient } from "@annals/client";
import type { Database } from "@annals/db";
import { federationV1 } from "@annals/proto";
import {
  ADMIN_ROLE,
  PUBLIC,
  callInfo,
  callPrincipal,
  decodePageToken,
  defineService,
  encodePageToken,
  errorReason,
  invalidArgument,
  notFound,
  pagePositionInteger,
  resourceExhausted,
  rpcError,
  type CallInfo,
  type ServiceRegistration,
} from "@annals/runtime";
import { logIdProblem } from "@annals/logs";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { listAudit, type RefusalAudit } from "./audit.js";
import type { NodeIdentity } from "./identity.js";
import { authenticatePeer, claimedPeer } from "./peer-token.js";
import { UPDATABLE_FIELDS, checkPeer, getPeer, insertPeer, listPeerPage, peerMessage, removePeer, servesLog, updatePeer } from "./peers.js";
import { MAX_ENTRIES_PER_FRAME, pullFrames } from "./pull.js";
import type { FederationMetrics } from "./federation-metrics.js";
import { compareReplications, type Replicator } from "./replicator.js";
import type { WireSubscribe } from "./wire-entries.js";

/** Roles of the federation service. */
export const FEDERATION_READ = "federation.read";

export interface FederationServiceDeps {
  db: Database;
  identity: NodeIdentity;
  /** The local log service, with the federation service's own token. */
  log: () => LogClient;
  /** Subscribe of the same log service with `entries` frames left undecoded, for Pull to pass on (undefined: Pull decodes them). */
  subscribe: WireSubscribe | undefined;
  /** Pull calls one peer may start per minute. */
  pullsPerMinute: number;
  replicator: Replicator;
  metrics: FederationMetrics;
  /** Where Pull refusals are audited, aggregated and capped. */
  refusals: RefusalAudit;
  /** Whether Pull requires a client certificate naming the peer (the gRPC port runs mTLS). */
  requirePeerCertificate: boolean;
  /** The witness's verifier key (vkey, type 0x04), which GetNodeInfo tells. */
  witnessVerifierKey: string;
  /** How often an idle Pull stream sends a heartbeat (with the log's checkpoint when asked), in ms. */
  heartbeatMs: number;
}

/** The page sizes of ListPeers, GetReplicationStatus and ListAuditRecords (AIP-158): 1 to this; 0 means DEFAULT_PAGE_SIZE. */
const MAX_PAGE_SIZE = 1000;
const DEFAULT_PAGE_SIZE = 100;

function pageSize(requested: number): number {
  if (requested === 0) return DEFAULT_PAGE_SIZE;
  if (requested < 0 || requested > MAX_PAGE_SIZE) throw invalidArgument("page_size", `is ${requested}; it must be from 1 to ${MAX_PAGE_SIZE} (0 means ${DEFAULT_PAGE_SIZE})`);
  return requested;
}

/** The FederationService registration: who may call what, and the handlers. */
export function federationRegistration(deps: FederationServiceDeps): ServiceRegistration {
  const { db, identity } = deps;
  const pullWindows = new Map<string, { startedMs: number; count: number }>();

  /** A fixed one-minute window per peer; RESOURCE_EXHAUSTED with the wait when it is used up. */
  function countPull(nodeId: string): void {
    const now = Date.now();
    const window = pullWindows.get(nodeId);
    if (!window || now - window.startedMs >= 60_000) {
      pullWindows.set(nodeId, { startedMs: now, count: 1 });
      return;
    }
    if (window.count >= deps.pullsPerMinute) {
      throw resourceExhausted(
        `peer "${nodeId}" started ${window.count} Pull calls this minute, the most allowed; back off and retry`,
        { reason: "PULL_RATE_LIMITED", metadata: { node_id: nodeId } },
        window.startedMs + 60_000 - now,
      );
    }
    window.count++;
  }

  /** Authenticates the pulling peer (token, and certificate under mTLS) and checks its grant; refusals are audited. */
  async function authorisePull(authorization: string | null, caller: CallInfo, logId: string) {
    const certificate = caller.peerCertificate;
    try {
      const peer = await authenticatePeer(db, identity.nodeId, authorization);
      if (certificate || deps.requirePeerCertificate) {
        const uris = certificate?.uris ?? [];
        if (uris.length !== 1 || uris[0] !== peer.nodeId) {
          throw rpcError(
            Code.PermissionDenied,
            `the client certificate must name exactly the peer's node id ${peer.nodeId}; it names ${uris.length === 0 ? "no URI (or none was presented)" : uris.join(", ")}`,
            { reason: "PEER_CERT_MISMATCH", metadata: { node_id: peer.nodeId } },
          );
        }
      }
      if (!servesLog(peer, logId)) {
        throw rpcError(Code.PermissionDenied, `peer "${peer.nodeId}" may not pull log "${logId}" (not in its served_logs)`, {
          reason: "LOG_NOT_SERVED",
          metadata: { node_id: peer.nodeId, log: logId },
        });
      }
      countPull(peer.nodeId);
      return peer;
    } catch (error) {
      const failure = ConnectError.from(error);
      deps.metrics.pullRefused(errorReason(failure) ?? Code[failure.code]);
      if (failure.code !== Code.ResourceExhausted) {
        await deps.refusals.record({
          source: caller.peer,
          nodeId: claimedPeer(authorization),
          logId,
          code: errorReason(failure) ?? Code[failure.code],
          message: failure.rawMessage,
        });
      }
      throw failure;
    }
  }
  return defineService({
    service: federationV1.FederationService,
    access: {
      getNodeInfo: FEDERATION_READ,
      registerPeer: ADMIN_ROLE,
      updatePeer: ADMIN_ROLE,
      removePeer: ADMIN_ROLE,
      getPeer: FEDERATION_READ,
      listPeers: FEDERATION_READ,
      // Peer tokens are signed by the peers' own keys, not by this server's issuer: Pull checks them itself.
      pull: PUBLIC,
      getReplicationStatus: FEDERATION_READ,
      resetReplication: ADMIN_ROLE,
      listAuditRecords: FEDERATION_READ,
      getForkEvidence: FEDERATION_READ,
      quarantineMirror: ADMIN_ROLE,
      reMirror: ADMIN_ROLE,
    },
    impl: {
      async getNodeInfo() {
        // The node's checkpoint key is the log service's; "" when it cannot be reached (nothing to register then).
        const logVerifierKey = await deps
          .log()
          .getVerifierKey({})
          .then((answer) => answer.verifierKey)
          .catch(() => "");
        return { nodeId: identity.nodeId, publicKeyJwk: JSON.stringify(identity.publicJwk), logVerifierKey, witnessVerifierKey: deps.witnessVerifierKey };
      },

      async registerPeer(request) {
        if (!request.peer) throw invalidArgument("peer", "is required");
        const peer = await insertPeer(db, await checkPeer(request.peer, identity.nodeId));
        await deps.replicator.reconcile();
        return { peer: peerMessage(peer) };
      },

      async updatePeer(request) {
        if (!request.peer) throw invalidArgument("peer", "is required");
        const paths = request.updateMask?.paths ?? [];
        if (paths.length === 0) throw invalidArgument("update_mask", `name the fields to change: ${UPDATABLE_FIELDS.join(", ")}`);
        paths.forEach((path, i) => {
          if (!(UPDATABLE_FIELDS as readonly string[]).includes(path)) {
            throw invalidArgument(`update_mask.paths[${i}]`, `"${path}" cannot be changed; use ${UPDATABLE_FIELDS.join(", ")}`);
          }
        });
        const current = await getPeer(db, request.peer.nodeId);
        if (!current) throw notFound("peer", request.peer.nodeId);
        // The stored peer with the masked fields taken from the request, then checked as a whole.
        const merged = peerMessage(current);
        const mask = new Set(paths);
        const next = {
          ...merged,
          ...(mask.has("url") ? { url: request.peer.url } : {}),
          ...(mask.has("public_key_jwk") ? { publicKeyJwk: request.peer.publicKeyJwk } : {}),
          ...(mask.has("served_logs") ? { servedLogs: request.peer.servedLogs } : {}),
          ...(mask.has("mirrored_logs") ? { mirroredLogs: request.peer.mirroredLogs } : {}),
          ...(mask.has("status") ? { status: request.peer.status } : {}),
          ...(mask.has("log_verifier_key") ? { logVerifierKey: request.peer.logVerifierKey } : {}),
        } as federationV1.Peer;
        const updated = await updatePeer(db, await checkPeer(next, identity.nodeId));
        if (!updated) throw notFound("peer", request.peer.nodeId);
        await deps.replicator.reconcile();
        return { peer: peerMessage(updated) };
      },

      async removePeer(request) {
        const removed = await removePeer(db, request.nodeId);
        await deps.replicator.reconcile();
        return { removed };
      },

      async getPeer(request) {
        const peer = await getPeer(db, request.nodeId);
        if (!peer) throw notFound("peer", request.nodeId);
        return { peer: peerMessage(peer) };
      },

      async listPeers(request) {
        const limit = pageSize(request.pageSize);
        const after = request.pageToken === "" ? "" : decodePageToken("page_token", "peers", [], request.pageToken)[0]!;
        const page = await listPeerPage(db, { after, limit });
        const last = page.peers.at(-1);
        return { peers: page.peers.map(peerMessage), nextPageToken: page.more && last ? encodePageToken("peers", [], [last.nodeId]) : "" };
      },

      pull(request, context) {
        const problem = logIdProblem(request.logId);
        if (problem) throw invalidArgument("log_id", problem);
        if (request.afterSeq < 0n) throw invalidArgument("after_seq", "must not be negative (the mirror's head; 0 for an empty mirror)");
        if (request.maxEntriesPerFrame < 0 || request.maxEntriesPerFrame > MAX_ENTRIES_PER_FRAME) {
          throw invalidArgument("max_entries_per_frame", `must be from 1 to ${MAX_ENTRIES_PER_FRAME}, or 0 for one entry per frame`);
        }
        return (async function* () {
          await authorisePull(context.requestHeader.get("authorization"), callInfo(context), request.logId);
          yield* pullFrames(deps.log(), request, context.signal, deps.heartbeatMs, deps.subscribe);
        })();
      },

      async getReplicationStatus(request) {
        const limit = pageSize(request.pageSize);
        // A token belongs to the node_id filter it was made for.
        const scope = [request.nodeId];
        const after = request.pageToken === "" ? undefined : decodePageToken("page_token", "replications", scope, request.pageToken, 2);
        const all = deps.replicator.statuses(request.nodeId);
        const rest = after ? all.filter((status) => compareReplications(status, { nodeId: after[0]!, logId: after[1]! }) > 0) : all;
        const replications = rest.slice(0, limit);
        const last = replications.at(-1);
        return {
          replications,
          nextPageToken: rest.length > limit && last ? encodePageToken("replications", scope, [last.nodeId, last.logId]) : "",
        };
      },

      async resetReplication(request, context) {
        const problem = logIdProblem(request.logId);
        if (problem) throw invalidArgument("log_id", problem);
        const reset = await deps.replicator.reset(request.nodeId, request.logId, callPrincipal(context).subject);
        if (!reset) {
          throw rpcError(Code.FailedPrecondition, `the replication of "${request.logId}" from "${request.nodeId}" has no integrity error to reset`, {
            reason: "NOTHING_TO_RESET",
          });
        }
        return { status: reset };
      },

      async getForkEvidence(request) {
        const logProblem = logIdProblem(request.logId);
        if (logProblem) throw invalidArgument("log_id", logProblem);
        const fork = await deps.replicator.forkEvidence(request.nodeId, request.logId);
        return {
          evidence: fork.evidence,
          forkSeq: fork.forkSeq,
          detail: fork.detail,
          provesMisbehaviour: fork.proves,
          detectTime: timestampFromDate(fork.detectedAt),
        };
      },

      async quarantineMirror(request, context) {
        const logProblem = logIdProblem(request.logId);
        if (logProblem) throw invalidArgument("log_id", logProblem);
        return { status: await deps.replicator.quarantine(request.nodeId, request.logId, callPrincipal(context).subject) };
      },

      async reMirror(request, context) {
        const logProblem = logIdProblem(request.logId);
        if (logProblem) throw invalidArgument("log_id", logProblem);
        return { status: await deps.replicator.reMirror(request.nodeId, request.logId, request.mirrorLogId, callPrincipal(context).subject) };
      },

      async listAuditRecords(request) {
        const limit = pageSize(request.pageSize);
        await deps.refusals.syncCounts();
        const scope = [request.nodeId];
        const before = request.pageToken === "" ? undefined : pagePositionInteger("page_token", decodePageToken("page_token", "audit", scope, request.pageToken)[0]!);
        const page = await listAudit(db, { nodeId: request.nodeId, limit, before });
        return { records: page.records, nextPageToken: page.next === undefined ? "" : encodePageToken("audit", scope, [String(page.next)]) };
      },
    },
  });
}

