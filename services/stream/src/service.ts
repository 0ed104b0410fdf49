import { streamV1 } from "@annals/proto";
import type { LogClient } from "@annals/client";
import { logIdProblem, requireLogAccess } from "@annals/logs";
import { callPrincipal, defineService, groupedResponses, invalidArgument, pushResponses, type Principal, type PushableResponses, type ServiceRegistration } from "@annals/runtime";
import { patternProblem } from "@annals/topics";
import type { StreamHub } from "./hub.js";
import type { Frame, SessionRequest } from "./session.js";

/** Roles of the stream service. */
export const STREAM_VIEW = "stream.view";
export const STREAM_PUBLISH = "log.write";

export const MAX_PATTERNS = 32;
export const DEFAULT_SNAPSHOT_LIMIT = 50;
export const MAX_SNAPSHOT_LIMIT = 1000;
export const MAX_EVENTS_PER_FRAME = 1000;

export interface StreamServiceDeps {
  hub: StreamHub;
  /** The log service, with the stream service's own token. */
  log: () => LogClient;
}

/** What Subscribe and the SSE endpoint ask for, before it is checked. */
export interface SubscribeInput {
  logId: string;
  kinds: readonly string[];
  afterSeq: bigint | undefined;
  snapshotLimit: number;
  maxEventsPerFrame: number;
}

/** INVALID_ARGUMENT naming `field` unless `min ≤ value ≤ max`. */
function checkRange(field: string, value: number, min: number, max: number): void {
  if (value < min || value > max) throw invalidArgument(field, `must be between ${min} and ${max}`, { limit: String(max) });
}

/**
 * Checks a subscription and the caller's grant for its log; throws
 * INVALID_ARGUMENT naming the field (`kinds[2]`), or PERMISSION_DENIED.
 */
export function checkSubscription(input: SubscribeInput, principal: Principal): SessionRequest {
  const logProblem = logIdProblem(input.logId);
  if (logProblem) throw invalidArgument("log_id", logProblem);
  if (input.kinds.length === 0) throw invalidArgument("kinds", "name at least one kind pattern (`>` for every kind)");
  if (input.kinds.length > MAX_PATTERNS) throw invalidArgument("kinds", `has ${input.kinds.length} patterns; at most ${MAX_PATTERNS} are allowed`, { limit: String(MAX_PATTERNS) });
  input.kinds.forEach((pattern, i) => {
    const problem = patternProblem(pattern);
    if (problem) throw invalidArgument(`kinds[${i}]`, problem);
  });
  if (input.afterSeq !== undefined && input.afterSeq < 0n) throw invalidArgument("after_seq", "must not be negative");
  checkRange("snapshot_limit", input.snapshotLimit, 0, MAX_SNAPSHOT_LIMIT);
  checkRange("max_events_per_frame", input.maxEventsPerFrame, 0, MAX_EVENTS_PER_FRAME);
  requireLogAccess(principal, input.logId);
  return {
    logId: input.logId,
    patterns: [...input.kinds],
    afterSeq: input.afterSeq,
    snapshotLimit: input.snapshotLimit || DEFAULT_SNAPSHOT_LIMIT,
    maxEventsPerFrame: input.maxEventsPerFrame,
  };
}

/** The StreamService registration: who may call what, and the handlers. */
export function streamRegistration(deps: StreamServiceDeps): ServiceRegistration {
  return defineService({
    service: streamV1.StreamService,
    access: { subscribe: STREAM_VIEW, publish: STREAM_PUBLISH },
    impl: {
      subscribe(request, context) {
        const principal = callPrincipal(context);
        const { logId, kinds, afterSeq, snapshotLimit, maxEventsPerFrame } = request;
        const checked = checkSubscription({ logId, kinds, afterSeq, snapshotLimit, maxEventsPerFrame }, principal);
        // The session's frames as they are, those queued together in one group, written by the session itself where
        // the listener offers a sink: no generator of our own around them (one step less per frame).
        const open = () => deps.hub.subscribe(principal, checked).frameGroups(context.signal);
        if (checked.afterSeq === undefined) return groupedResponses(open());
        const resumeAfter = checked.afterSeq;
        const opened = async () => {
          await deps.hub.refusePastHead(checked.logId, resumeAfter, context.signal);
          return open();
        };
        const responses: PushableResponses<Frame> = {
          async *[Symbol.asyncIterator]() {
            yield* await opened();
          },
          async [pushResponses](sink) {
            return (await opened())[pushResponses](sink);
          },
        };
        return groupedResponses(responses);
      },

      async publish(request, context) {
        requireLogAccess(callPrincipal(context), request.logId);
        // The entry and its condition go to Append as they came: the log service alone judges
        // them, and its refusals reach the caller with their code and details (stream-service.test.ts "Publish").
        const { result } = await deps.log().append({ logId: request.logId, entry: request.entry, condition: request.condition }, { signal: context.signal });
        return { result };
      },
    },
  });
}
