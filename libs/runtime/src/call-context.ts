import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { Logger } from "pino";
import { principalKey, type Principal } from "./auth.js";

/** Which listener a call arrived on; "internal" for calls between the services of one process (in-process.ts). */
export type Listener = "grpc" | "http" | "internal";

/** Facts about the current call that the runtime records for handlers. */
export interface CallInfo {
  /** From the `x-request-id` header, or generated; echoed in the response header. */
  readonly requestId: string;
  readonly listener: Listener;
  /** The client's address, as the transport reports it. */
  readonly peer: string;
  /** The client's verified certificate, on the gRPC port under mTLS. */
  readonly peerCertificate?: PeerCertificate;
  /** A logger bound to this call (request id, procedure). */
  readonly logger: Logger;
}

export const callInfoKey = createContextKey<CallInfo | undefined>(undefined, { description: "annals call info" });

/** Set by a listener before the pipeline runs. */
export const listenerKey = createContextKey<{ listener: Listener; peer: string; peerCertificate?: PeerCertificate }>(
  { listener: "http", peer: "unknown" },
  { description: "annals listener" },
);

/** The verified client certificate of an mTLS call, if any. */
export interface PeerCertificate {
  /** URI subject alternative names, e.g. `spiffe://acme.example/annals/eu-1`. */
  readonly uris: readonly string[];
  /** The certificate in DER form. */
  readonly raw: Buffer;
}

/** The principal of the current call; set by the auth middleware before the handler runs. */
export function callPrincipal(context: HandlerContext): Principal {
  const principal = context.values.get(principalKey);
  if (!principal) throw new Error("no principal on this call: was the handler mounted without the runtime pipeline?");
  return principal;
}

/** The call's facts (request id, logger, peer). */
export function callInfo(context: HandlerContext): CallInfo {
  const info = context.values.get(callInfoKey);
  if (!info) throw new Error("no call info on this call: was the handler mounted without the runtime pipeline?");
  return info;
}
