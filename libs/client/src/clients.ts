import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { diagV1, federationV1, healthV1, kvV1, logV1, streamV1 } from "@annals/proto";
import { createAnnalsTransport, type TransportOptions } from "./transport.js";

export type LogClient = Client<typeof logV1.LogService>;
export type KvClient = Client<typeof kvV1.KvService>;
export type FederationClient = Client<typeof federationV1.FederationService>;
export type StreamClient = Client<typeof streamV1.StreamService>;
export type DiagClient = Client<typeof diagV1.DiagService>;
export type HealthClient = Client<typeof healthV1.Health>;

/** Typed clients for every annals service reachable on one gRPC port. */
export interface AnnalsClients {
  log: LogClient;
  kv: KvClient;
  federation: FederationClient;
  stream: StreamClient;
  diag: DiagClient;
  health: HealthClient;
}

/**
 * Clients for an annals process (a node, or one service; calling a service
 * the process does not run fails with UNIMPLEMENTED), sharing one transport
 * with the defaults of createAnnalsTransport.
 */
export function createAnnalsClients(options: TransportOptions | { transport: Transport }): AnnalsClients {
  const transport = "transport" in options ? options.transport : createAnnalsTransport(options);
  return {
    log: createClient(logV1.LogService, transport),
    kv: createClient(kvV1.KvService, transport),
    federation: createClient(federationV1.FederationService, transport),
    stream: createClient(streamV1.StreamService, transport),
    diag: createClient(diagV1.DiagService, transport),
    health: createClient(healthV1.Health, transport),
  };
}
