import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { TimestampSchema, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { Database } from "@annals/db";
import { ResponseGroup } from "@annals/runtime";
import { logV1 } from "@annals/proto";
import type { KindFilter } from "@annals/topics";
import type { AppendNotifier, ArmedWait } from "./append-notifier.js";
import { encodedEntriesFrames, encodedEntryFrame } from "./entry-encoding.js";
import { entryMessage, type EntryLog } from "./entry-mapping.js";
import { seqCompacted, seqPastHead } from "./log-errors.js";
import { getHead, readForward, readForwardForWire, type EntryRow, type EntryWireRow } from "./store.js";
import { payloadBytes } from "./reads.js";
import { tileReader } from "./merkle-tree.js";
import { rightEdgeFromTiles } from "@annals/chain";

/** Rows read per query while catching up. */
const PAGE = 1000;

export interface SubscriptionOptions {
  db: Database;
  notifier: AppendNotifier;
  logId: string;
  /** undefined: start after the current head (the tail); 0: from the first stored entry; else after this seq. */
  afterSeq: bigint | undefined;
  filter: KindFilter;
  heartbeatMs: number;
  /** 0: one `entry` frame per entry; more: up to this many entries per `entries` frame. */
  maxEntriesPerFrame: number;
  /**
   * The client reads protobuf binary (gRPC, gRPC-web or Connect with
   * protobuf, the in-process transport): entry frames are sent pre-encoded
   * (entry-encoding.ts). False for a JSON client, which gets messages.
   */
  binaryWire: boolean;
  signal: AbortSignal;
  /** Called when the stream starts (it may refuse it by throwing); what it returns is called when the stream ends. */
  opened?: () => () => void;
}

/**
 * The Subscribe stream: read by seq from a cursor until a short page says the
 * head was reached, send CaughtUp once, then sleep until an append is
 * announced (or a heartbeat is due) and read again. The wait is armed before
 * each read, so an append committed between the read and the wait still
 * wakes it; and because commit order equals seq order, reading `seq >=
 * cursor` never skips an entry (subscription tests "no gap, no duplicate").
 */
/** What the stream yields: a frame, or for a binary client a group of `entry` frames. */
type Response = logV1.SubscribeResponse | ResponseGroup<logV1.SubscribeResponse>;

export async function* subscription(options: SubscriptionOptions): AsyncGenerator<Response> {
  const closed = options.opened?.();
  try {
    const { db, notifier, logId, filter, signal } = options;
    const head = await getHead(db, logId);
    const log = head ?? { log_id: logId, chain_log_id: null };
    const lastSeq = head?.last_seq ?? 0n;
    const anchorSeq = head?.checkpoint_seq ?? 0n;
    let cursor: bigint;
    if (options.afterSeq === undefined) {
      cursor = lastSeq + 1n;
    } else {
      // A position past the head would silently skip the entries up to it once they are written.
      if (options.afterSeq > lastSeq) throw seqPastHead(logId, "after_seq", options.afterSeq, lastSeq);
      if (options.afterSeq === 0n) {
        cursor = anchorSeq + 1n;
        if (anchorSeq > 0n) {
          // With the tree at the anchor, a reader that starts here (a mirror) grows the same tree.
          const treeEdge = head!.tree_edge === null ? [] : (await rightEdgeFromTiles(anchorSeq, tileReader(db, logId))).hashes;
          yield frame({ case: "anchor", value: { seq: anchorSeq, checksum: head!.checkpoint_checksum, treeEdge: [...treeEdge] } });
        }
      } else {
        cursor = options.afterSeq + 1n;
        refuseCompacted(logId, cursor, anchorSeq);
      }
    }
    let caughtUp = false;
    // The next page is read while this one is sent (its rows are already
    // there when the client has taken this page), armed like any read.
    let pending = readPage(db, notifier, logId, cursor, options.binaryWire);
    try {
      while (!signal.aborted) {
        const { armed } = pending;
        const rows = await pending.rows;
        if (rows.length > 0 && rows[0]!.seq !== cursor) {
          // Compaction removed entries this stream had not delivered yet.
          const latest = await getHead(db, logId);
          refuseCompacted(logId, cursor, latest?.checkpoint_seq ?? rows[0]!.seq - 1n);
        }
        // A full page is not the head: no wait follows it, so its arming is released now.
        const fullPage = rows.length === PAGE;
        if (fullPage) {
          armed.cancel();
          pending = readPage(db, notifier, logId, rows.at(-1)!.seq + 1n, options.binaryWire);
        }
        const matching = rows.filter((row) => filter.matches(row.kind));
        if (rows.length > 0) cursor = rows.at(-1)!.seq + 1n;
        // Not yield*: over a sync generator it adds a promise per frame.
        for (const response of entryFrames(log, matching, options.maxEntriesPerFrame, options.binaryWire)) yield response;
        if (fullPage) continue;
        if (!caughtUp) {
          caughtUp = true;
          yield frame({ case: "caughtUp", value: { seq: cursor - 1n } });
        }
        const woke = await waitForWake(armed.appended, options.heartbeatMs, signal);
        armed.cancel();
        if (woke === "heartbeat") yield await heartbeat(db, logId, cursor - 1n);
        pending = readPage(db, notifier, logId, cursor, options.binaryWire);
      }
    } finally {
      pending.armed.cancel();
    }
  } finally {
    closed?.();
  }
}

/**
 * Rows of a page: as the wire encoder reads them (their JSON as text, never
 * parsed) for a binary client, else as entryMessage maps them.
 */
type PageRow = EntryWireRow | EntryRow;

/** A page read from `fromSeq`, with the wait armed before it (see subscription's comment). */
function readPage(db: Database, notifier: AppendNotifier, logId: string, fromSeq: bigint, binaryWire: boolean): { armed: ArmedWait; rows: Promise<PageRow[]> } {
  const armed = notifier.arm(logId);
  const rows: Promise<PageRow[]> = binaryWire ? readForwardForWire(db, logId, fromSeq, PAGE) : readForward(db, logId, fromSeq, PAGE);
  // A prefetched read may fail before it is awaited, or never be awaited when
  // the stream ends first: it must not count as an unhandled rejection. It
  // still throws where it is awaited.
  rows.catch(() => undefined);
  return { armed, rows };
}

function frame(value: MessageInitShape<typeof logV1.SubscribeResponseSchema>["frame"]): logV1.SubscribeResponse {
  return create(logV1.SubscribeResponseSchema, { frame: value });
}

/**
 * The most payload bytes one `entries` frame carries: with 256 KiB payloads a
 * frame of many entries would pass the 4 MiB message limit of both hops of a
 * federation pull.
 */
const MAX_FRAME_PAYLOAD_BYTES = 1024 * 1024;

/**
 * Most `entry` frames handed to the listener in one step: the gRPC listener
 * writes a group at once and waits for the client once (ResponseGroup).
 */
const ENTRY_FRAMES_PER_GROUP = 64;

/**
 * Entries as `entry` frames (grouped for a binary client), or as `entries` frames when the client asked for
 * batches: at most `perFrame` entries and about MAX_FRAME_PAYLOAD_BYTES of
 * payload each (an entry larger than that goes alone).
 */
function* entryFrames(log: EntryLog, pageRows: readonly PageRow[], perFrame: number, binaryWire: boolean): Generator<Response> {
  if (binaryWire) {
    // readPage read them for the wire.
    const rows = pageRows as readonly EntryWireRow[];
    if (perFrame > 0) return yield* encodedEntriesFrames(log, rows, perFrame, MAX_FRAME_PAYLOAD_BYTES);
    // One step of the pipeline and the listener per group of frames, not per frame (bench log-catchup).
    for (let at = 0; at < rows.length; at += ENTRY_FRAMES_PER_GROUP) {
      yield new ResponseGroup(rows.slice(at, at + ENTRY_FRAMES_PER_GROUP).map((row) => encodedEntryFrame(log, row)));
    }
    return;
  }
  const rows = pageRows as readonly EntryRow[];
  if (perFrame === 0) {
    for (const row of rows) yield frame({ case: "entry", value: entryMessage(log, row) });
    return;
  }
  let batch: logV1.Entry[] = [];
  let bytes = 0;
  for (const row of rows) {
    const rowBytes = payloadBytes(row);
    if (batch.length > 0 && (batch.length === perFrame || bytes + rowBytes > MAX_FRAME_PAYLOAD_BYTES)) {
      yield frame({ case: "entries", value: create(logV1.EntryBatchSchema, { entries: batch }) });
      batch = [];
      bytes = 0;
    }
    batch.push(entryMessage(log, row));
    bytes += rowBytes;
  }
  if (batch.length > 0) yield frame({ case: "entries", value: create(logV1.EntryBatchSchema, { entries: batch }) });
}

async function heartbeat(db: Database, logId: string, lastConsidered: bigint): Promise<logV1.SubscribeResponse> {
  const head = await getHead(db, logId);
  return frame({
    case: "heartbeat",
    value: create(logV1.HeartbeatSchema, {
      lastSeq: lastConsidered,
      headSeq: head?.last_seq ?? 0n,
      headTime: head && head.last_seq > 0n ? timestampFromMicros(head.last_wall_time_us) : undefined,
    }),
  });
}

/** A Timestamp with the full precision of a wall time in µs. */
function timestampFromMicros(us: bigint): Timestamp {
  return create(TimestampSchema, { seconds: us / 1_000_000n, nanos: Number(us % 1_000_000n) * 1000 });
}

function refuseCompacted(logId: string, seq: bigint, anchorSeq: bigint): void {
  if (seq <= anchorSeq) throw seqCompacted(logId, seq, anchorSeq + 1n);
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
