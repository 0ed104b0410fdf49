import { Code, type ConnectError } from "@connectrpc/connect";
import { rpcError } from "@annals/runtime";

/** OUT_OF_RANGE for a seq that compaction removed, naming the first available one. */
export function seqCompacted(logId: string, seq: bigint, firstSeq: bigint): ConnectError {
  return rpcError(Code.OutOfRange, `seq ${seq} of log "${logId}" was removed by compaction; the first available seq is ${firstSeq}`, {
    reason: "SEQ_COMPACTED",
    metadata: { log: logId, first_available_seq: String(firstSeq) },
  });
}

/** OUT_OF_RANGE for a seq beyond the log's head. */
export function seqPastHead(logId: string, field: string, seq: bigint, lastSeq: bigint): ConnectError {
  return rpcError(Code.OutOfRange, `${field} ${seq} is past the head of log "${logId}" (last seq ${lastSeq})`, {
    reason: "SEQ_PAST_HEAD",
    metadata: { log: logId, field, last_seq: String(lastSeq) },
  });
}
