import type { DescService } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import type { AccessRule } from "./auth.js";
import type { HttpRoute } from "./http-mount.js";

/**
 * A service as the runtime mounts it: the descriptor, the handlers, and what
 * each method requires of its caller. `access` must name every method, so that
 * adding an RPC without deciding who may call it does not compile.
 */
export interface ServiceRegistration<S extends DescService = DescService> {
  readonly service: S;
  /** Handlers; a method left out answers UNIMPLEMENTED (after auth). */
  readonly impl: Partial<ServiceImpl<S>>;
  /** Per method (by its local name, e.g. `append`): a role, "authenticated" or "public". */
  readonly access: { readonly [K in keyof S["method"]]: AccessRule };
}

/** Declares a service registration with full type checking of `impl` and `access`. */
export function defineService<S extends DescService>(registration: ServiceRegistration<S>): ServiceRegistration {
  return registration;
}

/**
 * What one annals service contributes to a process: its gRPC services, its
 * plain HTTP routes, and what to close on shutdown. A standalone service
 * process serves one component; the all-in-one node serves all four.
 */
export interface ServiceComponent {
  /** Name in logs and telemetry, e.g. "log". */
  readonly name: string;
  readonly registrations: readonly ServiceRegistration[];
  readonly httpRoutes?: readonly HttpRoute[];
  /**
   * Starts background work that calls this process's own services (the
   * node's federation replicator calls its log service in-process); runs once
   * both listeners are up.
   */
  start?(): void;
  /** Stops background work (loops, subscriptions); runs after the listeners have closed. */
  close(): Promise<void>;
}
