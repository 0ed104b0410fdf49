// The serving side of federation: Pull streams a local log to an authorised
// peer after a seq, then follows it live, through the local log service's
// Subscribe, whose frames it forwards as they come. Asked to, it sends the
// log's latest signed checkpoint with every frame (checkpoint-feed.ts).
import { Code, ConnectError } from "@connectrpc/connect";
import type { LogClient } from "@annals/client";
import type { federationV1, logV1 } from "@annals/proto";
import { rpcError } from "@annals/runtime";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { CheckpointFeed } from "./checkpoint-feed.js";
import { wirePullResponse, type WireSubscribe } from "./wire-entries.js";

type Frame = MessageInitShape<typeof federationV1.PullResponseSchema> | federationV1.PullResponse;

/** The most entries the contract lets one `entries` frame of Pull carry (PullRequest.max_entries_per_frame). */
export const MAX_ENTRIES_PER_FRAME = 1000;

/** Heartbeats asked of the log service while the log is idle, in ms, unless ANNALS_FEDERATION_HEARTBEAT_MS says otherwise. */
export const DEFAULT_HEARTBEAT_MS = 5000;

/**
 * The Pull stream of `request.logId` after `request.afterSeq`. Subscribe
 * answers the start as Pull promises (an `anchor` frame first for after_seq 0
 * on a compacted log; OUT_OF_RANGE with SEQ_COMPACTED or SEQ_PAST_HEAD), and
 * sends `entries` frames only when asked with max_entries_per_frame > 0, which
 * is passed on as the puller gave it: a puller that did not ask never gets
 * one (pull.test.ts "without batch frames"). With send_checkpoints, the first
 * frame carries only the latest checkpoint, sent before Subscribe starts, so
 * that a puller whose after_seq is past a truncated log's head still learns
 * the checkpoint that shows it (forks.test.ts "truncation"). With
 * `subscribe` (Subscribe through the transport `log` uses), `entries` frames
 * are passed on as Subscribe encoded them, without decoding their entries
 * (wire-entries.ts): the puller checks every entry, this side never looked
 * into them.
 */
export async function* pullFrames(
  log: LogClient,
  request: federationV1.PullRequest,
  signal: AbortSignal,
  heartbeatMs = DEFAULT_HEARTBEAT_MS,
  subscribe: WireSubscribe = (subscribeRequest, options) => frames(log.subscribe(subscribeRequest, options)),
): AsyncGenerator<Frame> {
  const { logId, afterSeq, maxEntriesPerFrame } = request;
  try {
    // Subscribe waits for a log that does not exist yet; a peer must be told it is not here.
    await log.getLog({ logId }, { signal });
  } catch (error) {
    if (ConnectError.from(error).code === Code.NotFound) throw rpcError(Code.NotFound, `log "${logId}" does not exist here`, { reason: "LOG_NOT_FOUND", metadata: { log: logId } });
    throw error;
  }
  const feed = request.sendCheckpoints ? new CheckpointFeed(log, logId, request.checkpointSize) : undefined;
  let position = afterSeq;
  if (feed) {
    const checkpoint = await feed.next(position, signal, true);
    if (checkpoint) yield { checkpoint };
  }
  for await (const frame of subscribe({ logId, afterSeq, heartbeatIntervalMs: BigInt(heartbeatMs), maxEntriesPerFrame }, { signal })) {
    // Pull's frames are Subscribe's (the same shared messages under the same names).
    if (frame.case === undefined) continue;
    if (frame.case === "entry") position = frame.value.seq;
    else if (frame.case === "entries") position = frame.value.entries.at(-1)?.seq ?? position;
    else if (frame.case === "wireEntries") position = frame.value.lastSeq > 0n ? frame.value.lastSeq : position;
    else if (frame.case === "heartbeat") position = frame.value.lastSeq;
    else if (frame.case === "caughtUp") position = frame.value.seq;
    const checkpoint = feed && frame.case !== "anchor" ? await feed.next(position, signal, frame.case === "heartbeat" || frame.case === "caughtUp") : undefined;
    if (frame.case === "wireEntries") yield wirePullResponse(frame.value.encoded, checkpoint);
    else yield checkpoint ? { frame, checkpoint } : { frame };
  }
}

/** Subscribe's frames as they were decoded. */
async function* frames(responses: AsyncIterable<logV1.SubscribeResponse>) {
  for await (const response of responses) yield response.frame;
}
