import { setTimeout as delay } from "node:timers/promises";
import { diagV1 } from "@annals/proto";
import { AUTHENTICATED } from "./auth.js";
import { invalidArgument } from "./errors.js";
import { defineService } from "./service.js";

/**
 * annals.diag.v1.DiagService, mounted by every process. Any authenticated
 * caller may use it: it reads and stores nothing.
 */
export const diagRegistration = defineService({
  service: diagV1.DiagService,
  access: { ping: AUTHENTICATED, ticks: AUTHENTICATED, upload: AUTHENTICATED, echo: AUTHENTICATED },
  impl: {
    ping(request) {
      return { data: request.data };
    },
    async *ticks(request, context) {
      if (request.intervalMs < 0n || request.intervalMs > 60_000n) throw invalidArgument("interval_ms", "must be from 0 to 60000");
      if (request.count < 0) throw invalidArgument("count", "must not be negative");
      for (let number = 1n; request.count === 0 || number <= BigInt(request.count); number++) {
        if (number > 1n) await delay(Number(request.intervalMs), undefined, { signal: context.signal });
        yield { number };
      }
    },
    async upload(requests) {
      let chunks = 0n;
      let bytes = 0n;
      for await (const request of requests) {
        chunks++;
        bytes += BigInt(request.data.byteLength);
      }
      return { chunks, bytes };
    },
    async *echo(requests) {
      for await (const request of requests) yield { data: request.data };
    },
  },
});
