import { streamV1 } from "@annals/proto";
import type { LogClient } from "@annals/client";
import { callPrincipal, defineService, invalidArgument, requireLogAccess, type Principal, type ServiceRegistration } from "@annals/runtime";
import { kindProblem, logIdProblem, patternProblem } from "@annals/topics";
import type { StreamHub } from "./hub.js";
import type { SessionRequest } from "./session.js";

/** Roles of the stream service. */
export const STREAM_VIEW = "stream.view";
export const STREAM_PUBLISH = "log.write";

export const MAX_PATTERNS = 32;
export const DEFAULT_SNAPSHOT_LIMIT = 50;
export const MAX_SNAPSHOT_LIMIT = 1000;

export interface StreamServiceDeps {
  hub: StreamHub;
  /** The log service, with the stream service's own token. */
  log: () => LogClient;
}

/** What Subscribe and the SSE endpoint ask for, before it is checked. */
export interface SubscribeInput {
  logId: string;
  topics: readonly string[];
  resumeAfterSeq: bigint | undefined;
  snapshotLimit: number;
}

/**
 * Checks a subscription and the caller's grant for its log; throws
 * INVALID_ARGUMENT naming the field (`topics[2]`), or PERMISSION_DENIED.
 */
export function checkSubscription(input: SubscribeInput, principal: Principal): SessionRequest {
  const logProblem = logIdProblem(input.logId);
  if (logProblem) throw invalidArgument("log_id", logProblem);
  if (input.topics.length === 0) throw invalidArgument("topics", "name at least one topic pattern (`>` for every topic)");
  if (input.topics.length > MAX_PATTERNS) throw invalidArgument("topics", `has ${input.topics.length} patterns; at most ${MAX_PATTERNS} are allowed`);
  input.topics.forEach((pattern, i) => {
    const problem = patternProblem(pattern);
    if (problem) throw invalidArgument(`topics[${i}]`, problem);
  });
  if (input.resumeAfterSeq !== undefined && input.resumeAfterSeq < 0n) throw invalidArgument("resume_after_seq", "must not be negative");
  if (input.snapshotLimit > MAX_SNAPSHOT_LIMIT) throw invalidArgument("snapshot_limit", `must be at most ${MAX_SNAPSHOT_LIMIT}`);
  requireLogAccess(principal, input.logId);
  return {
    logId: input.logId,
    patterns: [...input.topics],
    resumeAfterSeq: input.resumeAfterSeq,
    snapshotLimit: input.snapshotLimit || DEFAULT_SNAPSHOT_LIMIT,
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
        const { logId, topics, resumeAfterSeq, snapshotLimit } = request;
        const checked = checkSubscription({ logId, topics, resumeAfterSeq, snapshotLimit }, principal);
        // The session's frames as they are: no generator of our own around them (one step less per frame).
        if (checked.resumeAfterSeq === undefined) return deps.hub.subscribe(principal, checked).frames(context.signal);
        return (async function* () {
          await deps.hub.refusePastHead(checked.logId, checked.resumeAfterSeq, context.signal);
          yield* deps.hub.subscribe(principal, checked).frames(context.signal);
        })();
      },

      async publish(request, context) {
        const logProblem = logIdProblem(request.logId);
        if (logProblem) throw invalidArgument("log_id", logProblem);
        const topicProblem = kindProblem(request.topic);
        if (topicProblem) throw invalidArgument("topic", topicProblem);
        requireLogAccess(callPrincipal(context), request.logId);
        const { result } = await deps.log().append(
          {
            logId: request.logId,
            entry: { kind: request.topic, payload: request.payload ?? {}, sourceId: request.sourceId, metadata: request.metadata, reqId: request.reqId },
          },
          { signal: context.signal },
        );
        return { seq: result?.seq ?? 0n, checksum: result?.checksum ?? "", duplicate: result?.duplicate ?? false };
      },
    },
  });
}
