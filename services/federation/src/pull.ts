// The serving side of federation: Pull streams a local log to an authorised
// peer, from a seq, then follows it live, through the local log service.
import { Code, ConnectError } from "@connectrpc/connect";
import type { LogClient } from "@annals/client";
import type { federationV1 } from "@annals/proto";
import { rpcError } from "@annals/runtime";
import type { MessageInitShape } from "@bufbuild/protobuf";

type Frame = MessageInitShape<typeof federationV1.PullResponseSchema>;

/** Heartbeats asked of the log service while the log is idle. */
const HEARTBEAT_MS = 5000;

/**
 * The Pull stream of `logId` from `fromSeq`. When entries before `fromSeq`
 * were compacted away, the stream starts with the checkpoint they left, so
 * the puller can anchor its mirror's chain there.
 */
export async function* pullFrames(log: LogClient, logId: string, fromSeq: bigint, signal: AbortSignal): AsyncGenerator<Frame> {
  let head;
  try {
    head = (await log.getLog({ logId }, { signal })).head;
  } catch (error) {
    if (ConnectError.from(error).code === Code.NotFound) throw rpcError(Code.NotFound, `log "${logId}" does not exist here`, { reason: "LOG_NOT_FOUND", metadata: { log: logId } });
    throw error;
  }
  let start = fromSeq < 1n ? 1n : fromSeq;
  if (head && head.checkpointSeq > 0n && start <= head.checkpointSeq) {
    yield { frame: { case: "checkpoint", value: { seq: head.checkpointSeq, checksum: head.checkpointChecksum } } };
    start = head.checkpointSeq + 1n;
  }
  let headSeq = head?.lastSeq ?? 0n;
  let headWallTimeUs = 0n;
  for await (const message of log.subscribe({ logId, fromSeq: start, heartbeatIntervalMs: HEARTBEAT_MS }, { signal })) {
    if (message.event.case === "entry") {
      const entry = message.event.value;
      if (entry.seq > headSeq) headSeq = entry.seq;
      headWallTimeUs = entry.wallTimeUs;
      yield { frame: { case: "entry", value: entry } };
    } else if (message.event.case === "heartbeat") {
      if (message.event.value.seq > headSeq) headSeq = message.event.value.seq;
      yield { frame: { case: "heartbeat", value: { headSeq, headWallTimeUs } } };
    }
  }
}
