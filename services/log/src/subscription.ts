import { create } from "@bufbuild/protobuf";
import type { Database } from "@annals/db";
import { logV1 } from "@annals/proto";
import type { AppendNotifier } from "./append-notifier.js";
import { entryMessage } from "./entry-mapping.js";
import { seqCompacted, seqPastHead } from "./log-errors.js";
import { getHead, readForward } from "./store.js";
import type { KindFilter } from "@annals/topics";

/** Rows read per query while catching up. */
const PAGE = 1000;

export interface SubscriptionOptions {
  db: Database;
  notifier: AppendNotifier;
  logId: string;
  /** undefined: start after the current head (the tail); 0: at the first stored entry. */
  fromSeq: bigint | undefined;
  filter: KindFilter;
  heartbeatMs: number;
  signal: AbortSignal;
}

/**
 * The Subscribe stream: read by seq from a cursor until a short page says the
 * head was reached, send CaughtUp once, then sleep until an append is
 * announced (or a heartbeat is due) and read again. The wait is armed before
 * each read, so an append committed between the read and the wait still
 * wakes it; and because commit order equals seq order, reading `seq >=
 * cursor` never skips an entry (subscription tests "no gap, no duplicate").
 */
export async function* subscription(options: SubscriptionOptions): AsyncGenerator<logV1.SubscribeResponse> {
  const { db, notifier, logId, filter, signal } = options;
  const head = await getHead(db, logId);
  const lastSeq = head?.last_seq ?? 0n;
  let cursor: bigint;
  if (options.fromSeq === undefined) {
    cursor = lastSeq + 1n;
  } else {
    cursor = options.fromSeq === 0n ? (head?.checkpoint_seq ?? 0n) + 1n : options.fromSeq;
    if (head) refuseCompacted(logId, cursor, head.checkpoint_seq);
    // A position past the head would silently skip the entries up to it once they are written.
    if (cursor > lastSeq + 1n) throw seqPastHead(logId, "from_seq", cursor, lastSeq);
  }
  let caughtUp = false;
  while (!signal.aborted) {
    const armed = notifier.arm(logId);
    let rows;
    try {
      rows = await readForward(db, logId, cursor, PAGE);
    } catch (error) {
      armed.cancel();
      throw error;
    }
    if (rows.length > 0 && rows[0]!.seq !== cursor) {
      // Compaction removed entries this stream had not delivered yet.
      armed.cancel();
      const latest = await getHead(db, logId);
      refuseCompacted(logId, cursor, latest?.checkpoint_seq ?? rows[0]!.seq - 1n);
    }
    for (const row of rows) {
      cursor = row.seq + 1n;
      if (filter.matches(row.kind)) yield create(logV1.SubscribeResponseSchema, { event: { case: "entry", value: entryMessage(logId, row) } });
    }
    if (rows.length === PAGE) {
      armed.cancel();
      continue;
    }
    if (!caughtUp) {
      caughtUp = true;
      yield create(logV1.SubscribeResponseSchema, { event: { case: "caughtUp", value: { seq: cursor - 1n } } });
    }
    const woke = await waitForWake(armed.appended, options.heartbeatMs, signal);
    armed.cancel();
    if (woke === "heartbeat") {
      yield create(logV1.SubscribeResponseSchema, { event: { case: "heartbeat", value: { seq: cursor - 1n } } });
    }
  }
}

function refuseCompacted(logId: string, seq: bigint, checkpointSeq: bigint): void {
  if (seq <= checkpointSeq) throw seqCompacted(logId, seq, checkpointSeq + 1n);
}

function waitForWake(appended: Promise<void>, heartbeatMs: number, signal: AbortSignal): Promise<"append" | "heartbeat" | "aborted"> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => finish("heartbeat"), heartbeatMs);
    const onAbort = () => finish("aborted");
    signal.addEventListener("abort", onAbort, { once: true });
    void appended.then(() => finish("append"));
    function finish(outcome: "append" | "heartbeat" | "aborted") {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      resolve(outcome);
    }
  });
}
