// The serving side of federation: Pull streams a local log to an authorised
// peer after a seq, then follows it live, through the local log service's
// Subscribe, whose frames it forwards as they come.
import { Code, ConnectError } from "@connectrpc/connect";
import type { LogClient } from "@annals/client";
import type { federationV1 } from "@annals/proto";
import { rpcError } from "@annals/runtime";
import type { MessageInitShape } from "@bufbuild/protobuf";

type Frame = MessageInitShape<typeof federationV1.PullResponseSchema>;

/** The most entries the contract lets one `entries` frame of Pull carry (PullRequest.max_entries_per_frame). */
export const MAX_ENTRIES_PER_FRAME = 1000;

/** Heartbeats asked of the log service while the log is idle, in ms. */
const HEARTBEAT_MS = 5000n;

/**
 * The Pull stream of `request.logId` after `request.afterSeq`. Subscribe
 * answers the start as Pull promises (an `anchor` frame first for after_seq 0
 * on a compacted log; OUT_OF_RANGE with SEQ_COMPACTED or SEQ_PAST_HEAD), and
 * sends `entries` frames only when asked with max_entries_per_frame > 0, which
 * is passed on as the puller gave it: a puller that did not ask never gets
 * one (pull.test.ts "without batch frames").
 */
export async function* pullFrames(log: LogClient, request: federationV1.PullRequest, signal: AbortSignal): AsyncGenerator<Frame> {
  const { logId, afterSeq, maxEntriesPerFrame } = request;
  try {
    // Subscribe waits for a log that does not exist yet; a peer must be told it is not here.
    await log.getLog({ logId }, { signal });
  } catch (error) {
    if (ConnectError.from(error).code === Code.NotFound) throw rpcError(Code.NotFound, `log "${logId}" does not exist here`, { reason: "LOG_NOT_FOUND", metadata: { log: logId } });
    throw error;
  }
  for await (const message of log.subscribe({ logId, afterSeq, heartbeatIntervalMs: HEARTBEAT_MS, maxEntriesPerFrame }, { signal })) {
    // Pull's frames are Subscribe's (the same shared messages under the same names).
    if (message.frame.case !== undefined) yield { frame: message.frame };
  }
}
