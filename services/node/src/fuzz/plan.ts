// The fuzz plan: which call each case makes (method, transport, credentials),
// drawn from the seed alone, so that a case keeps its number whatever the
// case count and reproduces by it. Its bytes are built later (corpus.ts).
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { DEEP_JSON_SWEEP, storesJson } from "./corpus.js";
import { Random } from "./random.js";

/** How a case reaches the server. The first three go to the gRPC port, the rest to the HTTP port. */
export type Transport = "grpc-js" | "h2-raw" | "h2-socket" | "connect-json" | "connect-proto" | "grpc-web" | "http-get";

const GRPC_PORT_TRANSPORTS: readonly Transport[] = ["grpc-js", "h2-raw", "h2-socket"];

export function portOf(transport: Transport): "grpc" | "http" {
  return GRPC_PORT_TRANSPORTS.includes(transport) ? "grpc" : "http";
}

/** Which credentials a case presents: the admin token (most cases), or none or a bad one. */
export type AuthCase = "admin" | "none" | "garbage" | "forged" | "expired" | "no-role";

/** The SSE endpoint of the stream service, fuzzed like an RPC. */
export const SSE_ROUTE = "GET /v1/logs/{log}/events";

export interface CasePlan {
  index: number;
  /** `package.Service/Method`, or SSE_ROUTE. */
  method: string;
  rpc: DescMethod | undefined;
  transport: Transport;
  auth: AuthCase;
  /** Seed of the case's own random stream. */
  seed: number;
  /** For the sweep cases: the input class to send, and its parameter (a nesting depth). */
  sweep?: { inputClass: string; depth: number };
}

export interface PlanOptions {
  seed: number;
  cases: number;
  /** The RPC methods to fuzz (enumerated from the descriptors of the services the target serves). */
  methods: readonly DescMethod[];
  /** Whether the target serves the SSE endpoint. */
  sse: boolean;
  /** SSE cases per round (each method gets one per port). Default 6. */
  sseSlots?: number;
}

/**
 * The cases in rounds: every round sends each method one case on each port
 * (and the SSE route a few), in a shuffled order, so a small case count still
 * covers every RPC on both ports.
 */
export function planCases(options: PlanOptions): CasePlan[] {
  const rng = new Random(options.seed).fork("plan");
  const plans: CasePlan[] = [];
  // First a sweep that random draws would cover only by luck: every method
  // that stores a JSON payload gets it nested around the depths where readers
  // start to fail (issue 14 §2), as Connect JSON and as grpc-js binary.
  for (const rpc of options.methods.filter(storesJson)) {
    for (const depth of DEEP_JSON_SWEEP) {
      for (const transport of ["connect-json", "grpc-js"] as const) {
        if (plans.length >= options.cases) break;
        plans.push({ index: plans.length, method: methodName(rpc), rpc, transport, auth: "admin", seed: rng.uint32(), sweep: { inputClass: "deep-json", depth } });
      }
    }
  }
  const slots: Array<{ method: string; rpc: DescMethod | undefined; port: "grpc" | "http" }> = [];
  for (const rpc of options.methods) {
    for (const port of ["grpc", "http"] as const) slots.push({ method: methodName(rpc), rpc, port });
  }
  if (options.sse) for (let i = 0; i < (options.sseSlots ?? 6); i++) slots.push({ method: SSE_ROUTE, rpc: undefined, port: "http" });
  while (plans.length < options.cases) {
    for (const slot of rng.shuffle(slots)) {
      if (plans.length >= options.cases) break;
      const transport: Transport =
        slot.rpc === undefined
          ? "http-get"
          : slot.port === "grpc"
            ? rng.weighted<Transport>([[14, "grpc-js"], [5, "h2-raw"], [1, "h2-socket"]])
            : rng.weighted<Transport>([[9, "connect-json"], [5, "connect-proto"], [6, "grpc-web"]]);
      const auth = rng.chance(0.88) ? "admin" : rng.pick<AuthCase>(["none", "garbage", "forged", "expired", "no-role"]);
      plans.push({ index: plans.length, method: slot.method, rpc: slot.rpc, transport, auth, seed: rng.uint32() });
    }
  }
  return plans;
}

export function methodName(rpc: DescMethod): string {
  return `${rpc.parent.typeName}/${rpc.name}`;
}

/** Every method of the given services, from their descriptors. */
export function methodsOf(services: readonly DescService[]): DescMethod[] {
  return services.flatMap((service) => service.methods);
}
