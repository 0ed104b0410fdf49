// One subscriber's stream: a snapshot or a catch-up read from the log, then
// the live entries its log's feed offers, through a bounded queue of frames.
import { Code } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { TimestampSchema, type Timestamp } from "@bufbuild/protobuf/wkt";
import { logV1, streamV1 } from "@annals/proto";
import { encodingOf, pushResponses, ResponseGroup, rpcError, shareEncoding, type PushableResponses, type ResponseSink } from "@annals/runtime";
import { EventNames } from "./event-name.js";
import type { LogReader } from "./log-reader.js";
import type { StreamMetrics } from "./stream-metrics.js";

/** One entry as a subscriber sees it: the fields of a streamV1.Event. */
export interface EventValue {
  entry: logV1.Entry;
  name: string;
  snapshot: boolean;
}

/** A SubscribeResponse as the session makes it (an init shape of streamV1.SubscribeResponse). */
export interface Frame {
  frame:
    | { case: "event"; value: EventValue }
    | { case: "events"; value: { events: EventValue[] } }
    | { case: "caughtUp"; value: { seq: bigint } }
    | { case: "heartbeat"; value: { lastSeq: bigint; headSeq: bigint; headTime?: Timestamp } };
}

/** A frame waiting to be sent, with the event it carries; `live` when the event came from the feed (not a read). */
type Queued = { readonly frame: Frame; readonly event?: EventValue; readonly live?: true };

/** The log's head as a feed last heard of it. */
export interface HeadPosition {
  seq: bigint;
  /** The head entry's wall time in µs since the epoch; undefined until known. */
  wallTimeUs: bigint | undefined;
}

export interface SessionSettings {
  /** Frames a subscriber may have waiting before it counts as too slow. */
  bufferFrames: number;
  /** Idle time after which a heartbeat is sent, in ms. */
  keepaliveMs: number;
  /** Most entries read backwards when looking for a snapshot's matching entries. */
  snapshotScanLimit: number;
}

export interface SessionRequest {
  logId: string;
  /** Valid patterns (see patternProblem), 1 or more. */
  patterns: string[];
  /** Resume after this seq (0: from the first stored entry); undefined: snapshot first. */
  afterSeq: bigint | undefined;
  snapshotLimit: number;
  /** Most events in one `events` frame; 0: one `event` frame per event. */
  maxEventsPerFrame: number;
}

/** What the session needs of its log's feed. */
export interface FeedLink {
  /** Files the session for live entries and resolves with the seq the feed has delivered up to. */
  join(session: Session): Promise<bigint>;
  /** The last seq the feed has received. */
  readonly position: bigint;
  /** The log's head as the feed last heard of it (from an entry or an upstream heartbeat). */
  readonly head: HeadPosition;
  leave(session: Session): void;
}

/**
 * Most frames handed over in one group. A group leaves the session's queue at
 * once and waits in the transport's buffer, where the slow-consumer check
 * (bufferFrames) does not count it: a small group keeps that check as it was.
 */
const MAX_FRAMES_PER_GROUP = 64;

function eventFrame(event: EventValue): Frame {
  return { frame: { case: "event", value: event } };
}

/** SubscribeResponse.events (field 4, length-delimited). */
const EVENTS_FIELD_TAG = (4 << 3) | 2;

/**
 * The encoding of a SubscribeResponse whose EventBatch holds the events of
 * `eventFrames`, the encodings of SubscribeResponses with one `event` each.
 */
export function batchFrameEncoding(eventFrames: readonly Uint8Array[]): Buffer {
  let length = 0;
  for (const part of eventFrames) length += part.length;
  const header = [EVENTS_FIELD_TAG];
  for (let rest = length; ; rest = Math.floor(rest / 128)) {
    if (rest < 128) {
      header.push(rest);
      break;
    }
    header.push((rest % 128) | 128);
  }
  return Buffer.concat([Buffer.from(header), ...eventFrames], header.length + length);
}

function timestampFromMicros(us: bigint): Timestamp {
  return create(TimestampSchema, { seconds: us / 1_000_000n, nanos: Number(us % 1_000_000n) * 1000 });
}

/**
 * The live frames of one entry, one per event name, shared by every
 * subscriber that gets the entry, so that each is encoded once for all.
 */
export class EntryFrames {
  private readonly byName = new Map<string, Queued>();

  constructor(readonly entry: logV1.Entry) {}

  queued(name: string): Queued {
    let queued = this.byName.get(name);
    if (!queued) {
      const event = { entry: this.entry, name, snapshot: false };
      this.byName.set(name, (queued = { frame: shareEncoding(eventFrame(event)), event, live: true }));
    }
    return queued;
  }
}

/**
 * Sessions with frames to write to their sink: one microtask writes them all,
 * after the feed offered a frame's entries or a catch-up queued its page.
 */
const flushing: Session[] = [];

/**
 * The longest one run of flushQueued writes, in ms, before it lets the event
 * loop turn and goes on in the next: written frames leave only when the loop
 * turns, and the feed, the clients' window updates and the timers wait for
 * it too. A burst (a feed frame of many entries for 1,000 subscribers) took
 * 30–104 ms in one piece (bench stream-fanout, CPU profile). At 50k
 * deliveries/s, slices of 1 and 2 ms gave lower medians than 5 ms in two
 * runs each, and all three lower p99s than none.
 */
export const FLUSH_SLICE_MS = 2;

function flushQueued(): void {
  const started = performance.now();
  let flushed = 0;
  while (flushed < flushing.length) {
    flushing[flushed++]!.flush();
    if (flushed < flushing.length && performance.now() - started > FLUSH_SLICE_MS) {
      flushing.splice(0, flushed);
      setImmediate(flushQueued);
      return;
    }
  }
  flushing.length = 0;
}

export class Session {
  readonly patterns: readonly string[];
  private readonly names: EventNames;
  private phase: "catching-up" | "live" | "ended" = "catching-up";
  /** Live entries offered while catching up, in seq order. */
  private pending: EntryFrames[] = [];
  /** Set when `pending` overflowed: its entries are read from the log instead. */
  private overflowed = false;
  /** Frames waiting to be sent. */
  private readonly out: Queued[] = [];
  private failure: Error | undefined;
  /** The last seq delivered or skipped; later entries only are sent. */
  private lastSeq = 0n;
  private lastFrameAt = Date.now();
  private wake: (() => void) | undefined;
  /** Set while the frames are written to a sink (pushTo) rather than taken by an iterator. */
  private sink: { sink: ResponseSink; waiting: boolean; flushQueued: boolean; settle: () => void } | undefined;
  private roomWake: (() => void) | undefined;
  private readonly heartbeatTimer: NodeJS.Timeout;
  private readonly stopped = new AbortController();

  constructor(
    readonly request: SessionRequest,
    private readonly settings: SessionSettings,
    private readonly reader: LogReader,
    private readonly feed: FeedLink,
    private readonly metrics: StreamMetrics,
    /** Called once when the session ends, however it ends. */
    private readonly onEnd: (session: Session, reason: "closed" | "slow" | "failed") => void,
  ) {
    this.patterns = request.patterns;
    this.names = new EventNames(request.patterns);
    this.heartbeatTimer = setInterval(() => this.heartbeatDue(), Math.max(10, Math.floor(settings.keepaliveMs / 4)));
    this.heartbeatTimer.unref();
    void this.run();
  }

  /** A live entry from the feed whose kind matches one of the patterns. Synchronous: never waits. */
  offer(frames: EntryFrames): void {
    const entry = frames.entry;
    if (this.phase === "catching-up") {
      if (this.overflowed) return;
      if (this.pending.length >= this.settings.bufferFrames) {
        // The log still has them: catch-up reads them again instead of holding them here.
        this.pending = [];
        this.overflowed = true;
        return;
      }
      this.pending.push(frames);
    } else if (this.phase === "live" && entry.seq > this.lastSeq) {
      this.lastSeq = entry.seq;
      this.push(frames.queued(this.names.nameOf(entry.kind) ?? entry.kind));
      if (this.out.length > this.settings.bufferFrames) {
        // ABORTED, not RESOURCE_EXHAUSTED: the client should resume at once, not back off (stream_service.proto, SLOW_CONSUMER).
        const afterSeq = this.lastDelivered();
        this.end(
          rpcError(
            Code.Aborted,
            `this subscriber fell more than ${this.settings.bufferFrames} events behind and was disconnected; resume at once with after_seq ${afterSeq}`,
            { reason: "SLOW_CONSUMER", metadata: { after_seq: String(afterSeq) } },
          ),
          "slow",
        );
      }
    }
  }

  /**
   * The frames to send, until the client goes away or the session fails. A
   * plain iterator rather than an async generator: a frame already queued is
   * handed over with no generator step of its own (one per delivery, see
   * bench stream-fanout).
   */
  frames(signal: AbortSignal): AsyncIterableIterator<Frame> {
    return this.iterate(signal, () => this.nextFrame());
  }

  /**
   * The frames to send as `frames` gives them, except that the frames queued
   * when the sender asks for more come together as one ResponseGroup (up to
   * MAX_FRAMES_PER_GROUP): one step for the sender however many there are
   * (bench stream-fanout: a subscriber that takes `event` frames gets what was
   * queued since its last write). Where the listener offers a sink, they are
   * written to it instead, as they are queued (pushTo).
   */
  frameGroups(signal: AbortSignal): AsyncIterableIterator<Frame | ResponseGroup<Frame>> & PushableResponses<Frame> {
    const groups = this.iterate(signal, () => this.nextGroup());
    return Object.assign(groups, { [pushResponses]: (sink: ResponseSink) => this.pushTo(sink, signal) });
  }

  /** The next frame, or the frames queued now as one group. */
  private nextGroup(): Frame | ResponseGroup<Frame> | undefined {
    const first = this.nextFrame();
    if (!first || this.out.length === 0) return first;
    const group = [first];
    for (let frame: Frame | undefined; group.length < MAX_FRAMES_PER_GROUP && (frame = this.nextFrame()); ) group.push(frame);
    return new ResponseGroup(group);
  }

  /**
   * Writes the frames to `sink` until the client goes away or the session
   * fails. Frames queued in one turn of the event loop (a feed's frame of
   * entries, a page of a catch-up) are written together in the next
   * microtask, while the sink has room; with no step of an iterator, a
   * promise or an async layer of the pipeline per frame (bench stream-fanout).
   */
  private pushTo(sink: ResponseSink, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => this.close();
      signal.addEventListener("abort", onAbort, { once: true });
      const settle = () => {
        signal.removeEventListener("abort", onAbort);
        if (this.failure) reject(this.failure);
        else resolve();
      };
      if (this.phase === "ended") return settle();
      this.sink = { sink, waiting: false, flushQueued: false, settle };
      this.flushSoon();
    });
  }

  private flushSoon(): void {
    const target = this.sink;
    if (!target || target.flushQueued || target.waiting) return;
    target.flushQueued = true;
    if (flushing.push(this) === 1) queueMicrotask(flushQueued);
  }

  /** Writes what is queued while the sink takes it; when it is full, again once it drained. */
  flush(): void {
    const target = this.sink;
    if (!target) return;
    target.flushQueued = false;
    if (target.waiting || this.phase === "ended") return;
    try {
      for (let group; (group = this.nextGroup()); ) {
        if (!target.sink.write(group instanceof ResponseGroup ? group.messages : [group])) {
          target.waiting = true;
          void target.sink.drained().then(() => {
            target.waiting = false;
            this.flush();
          });
          return;
        }
      }
    } catch (error) {
      // A frame over the send limit: the stream ends with that error.
      this.fail(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /** What `take` gives, waiting while it gives nothing, until the client goes away or the session fails. */
  private iterate<T>(signal: AbortSignal, take: () => T | undefined): AsyncIterableIterator<T> {
    const onAbort = () => this.close();
    signal.addEventListener("abort", onAbort, { once: true });
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      signal.removeEventListener("abort", onAbort);
      this.close();
    };
    const done: IteratorReturnResult<undefined> = { value: undefined, done: true };
    const next = async (): Promise<IteratorResult<T>> => {
      for (;;) {
        if (finished) return done;
        const value = take();
        if (value) return { value, done: false };
        if (this.failure) {
          finish();
          throw this.failure;
        }
        if (this.phase === "ended") {
          finish();
          return done;
        }
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
      }
    };
    return {
      next,
      return: () => {
        finish();
        return Promise.resolve(done);
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  /** The next frame to send, taken off the queue (with the events queued behind it, when the subscriber takes batches). */
  private nextFrame(): Frame | undefined {
    const next = this.out.shift();
    if (!next) return undefined;
    const now = (this.lastFrameAt = Date.now());
    this.roomWake?.();
    if (!next.event) return next.frame;
    if (this.request.maxEventsPerFrame === 0 || !this.out[0]?.event) {
      this.metrics.eventsDelivered(1);
      if (next.live) this.metrics.liveEventDelivered(next.event.entry.wallTimeUs, now);
      return next.frame;
    }
    return this.batchAfter(next, now);
  }

  /** Ends the session because the client left. */
  close(): void {
    this.end(undefined, "closed");
  }

  /** Ends the session with an error the client receives (after the frames already queued are dropped). */
  fail(error: Error): void {
    this.end(error, "failed");
  }

  private end(error: Error | undefined, reason: "closed" | "slow" | "failed"): void {
    if (this.phase === "ended") return;
    this.phase = "ended";
    this.failure = error;
    if (error) this.out.length = 0;
    this.pending = [];
    clearInterval(this.heartbeatTimer);
    this.stopped.abort();
    this.feed.leave(this);
    this.onEnd(this, reason);
    this.sink?.settle();
    this.wake?.();
    this.roomWake?.();
  }

  /**
   * An `events` frame of `first` and the events queued right after it, up to
   * the subscriber's maximum. Its encoding is spliced from those of its events'
   * own frames, which a live entry's subscribers share (EntryFrames): an
   * EventBatch's `events` (field 1) are encoded exactly as a SubscribeResponse's
   * `event` (field 1), so nothing is encoded again per subscriber.
   */
  private batchAfter(first: Queued, now: number): Frame {
    const parts = [first];
    while (parts.length < this.request.maxEventsPerFrame && this.out[0]?.event) parts.push(this.out.shift()!);
    this.metrics.eventsDelivered(parts.length);
    for (const queued of parts) if (queued.live) this.metrics.liveEventDelivered(queued.event!.entry.wallTimeUs, now);
    const frame: Frame = { frame: { case: "events", value: { events: parts.map((queued) => queued.event!) } } };
    return shareEncoding(frame, () => batchFrameEncoding(parts.map((queued) => encodingOf(queued.frame, streamV1.SubscribeResponseSchema))));
  }

  private push(queued: Queued): void {
    this.out.push(queued);
    if (this.sink) this.flushSoon();
    else this.wake?.();
  }

  private heartbeatDue(): void {
    if (this.out.length > 0 || Date.now() - this.lastFrameAt < this.settings.keepaliveMs) return;
    // Live with nothing queued, every entry the feed received was sent or filtered out.
    const lastSeq = this.phase === "live" && this.feed.position > this.lastSeq ? this.feed.position : this.lastSeq;
    const head = this.feed.head;
    const headSeq = head.seq > lastSeq ? head.seq : lastSeq;
    const headTime = head.seq === headSeq && head.wallTimeUs !== undefined ? timestampFromMicros(head.wallTimeUs) : undefined;
    this.lastFrameAt = Date.now();
    this.push({ frame: { frame: { case: "heartbeat", value: { lastSeq, headSeq, ...(headTime ? { headTime } : {}) } } } });
  }

  /** The seq to resume after: the one before the first entry still waiting to be sent. */
  private lastDelivered(): bigint {
    const firstWaiting = this.out.find((queued) => queued.event !== undefined)?.event?.entry.seq;
    return firstWaiting === undefined ? this.lastSeq : firstWaiting - 1n;
  }

  private async run(): Promise<void> {
    try {
      let joinedAt = await this.feed.join(this);
      if (this.request.afterSeq === undefined) {
        await this.snapshot(joinedAt);
        this.push({ frame: { frame: { case: "caughtUp", value: { seq: joinedAt } } } });
      } else {
        this.lastSeq = this.request.afterSeq;
        this.push({ frame: { frame: { case: "caughtUp", value: { seq: this.lastSeq } } } });
        await this.catchUp(joinedAt);
      }
      for (;;) {
        // Entries offered while reading overflowed the pending list: read on from the log up to where the feed is now.
        while (this.overflowed && this.phase === "catching-up") {
          this.overflowed = false;
          joinedAt = this.feed.position;
          await this.catchUp(joinedAt);
        }
        if (this.phase !== "catching-up") return;
        // A read queues whole pages: go live once they and the pending entries fit in the buffer, or
        // a subscriber that keeps up would count as slow (stream-service.test.ts "max_events_per_frame").
        if (this.out.length + this.pending.length <= this.settings.bufferFrames) break;
        await this.bufferRoom(this.settings.bufferFrames - this.pending.length + 1);
      }
      this.phase = "live";
      const pending = this.pending;
      this.pending = [];
      for (const frames of pending) this.offer(frames);
    } catch (error) {
      if (this.phase !== "ended") this.fail(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /** The latest matching entries up to `headSeq`, oldest first. */
  private async snapshot(headSeq: bigint): Promise<void> {
    const found: EventValue[] = [];
    let scanned = 0;
    let pageToken = "";
    if (headSeq > 0n && this.request.snapshotLimit > 0) {
      while (found.length < this.request.snapshotLimit && scanned < this.settings.snapshotScanLimit) {
        const page = await this.reader.page({ logId: this.request.logId, fromSeq: headSeq, direction: logV1.ReadDirection.BACKWARD, pageToken }, this.stopped.signal);
        for (const entry of page.entries) {
          scanned++;
          const name = this.names.nameOf(entry.kind);
          if (name !== undefined) found.push({ entry, name, snapshot: true });
          if (found.length === this.request.snapshotLimit) break;
        }
        pageToken = page.nextPageToken;
        if (!pageToken || page.entries.length === 0) break;
      }
    }
    this.lastSeq = headSeq;
    for (const event of found.reverse()) {
      if (this.out.length >= this.settings.bufferFrames) await this.bufferRoom();
      if (this.phase !== "catching-up") return;
      this.push({ frame: eventFrame(event), event });
    }
  }

  /** Every matching entry after lastSeq up to `toSeq`, read from the log. */
  private async catchUp(toSeq: bigint): Promise<void> {
    let pageToken = "";
    // A forward read has no end (a page at the head still carries a token): stop at toSeq or on an empty page.
    while (this.lastSeq < toSeq && this.phase === "catching-up") {
      // after_seq 0 reads from the first stored entry, wherever compaction left it.
      const fromSeq = this.lastSeq === 0n ? 0n : this.lastSeq + 1n;
      const page = await this.reader.page({ logId: this.request.logId, fromSeq, direction: logV1.ReadDirection.FORWARD, pageToken }, this.stopped.signal);
      for (const entry of page.entries) {
        if (entry.seq <= this.lastSeq) continue;
        this.lastSeq = entry.seq;
        const name = this.names.nameOf(entry.kind);
        if (name === undefined) continue;
        if (this.out.length >= this.settings.bufferFrames) await this.bufferRoom();
        if (this.phase !== "catching-up") return;
        const event = { entry, name, snapshot: false };
        this.push({ frame: eventFrame(event), event });
      }
      pageToken = page.nextPageToken;
      if (page.entries.length === 0) break;
    }
  }

  /**
   * Waits while `limit` or more frames are queued (by default a full buffer),
   * or until the session stops catching up. Called only when they are:
   * awaiting would yield even with room, and a page's events are to be
   * queued together so that they can leave in one `events` frame.
   */
  private async bufferRoom(limit = this.settings.bufferFrames): Promise<void> {
    while (this.out.length >= limit && this.phase === "catching-up") {
      await new Promise<void>((resolve) => (this.roomWake = resolve));
      this.roomWake = undefined;
    }
  }
}
