// One subscriber's stream: a snapshot or a catch-up read from the log, then
// the live entries its log's feed offers, through a bounded queue of frames.
import { logV1, type streamV1 } from "@annals/proto";
import { resourceExhausted, shareEncoding } from "@annals/runtime";
import { KindFilter } from "@annals/topics";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { LogReader } from "./log-reader.js";
import type { StreamMetrics } from "./stream-metrics.js";

export type Frame = MessageInitShape<typeof streamV1.SubscribeResponseSchema>;
/** A frame waiting to be sent; with the seq of the entry it carries, and that entry's wall time when it came live. */
type Queued = { frame: Frame; seq?: bigint; liveWallTimeUs?: bigint };
type EventFrame = Extract<NonNullable<Frame["frame"]>, { case: "event" }>["value"];


export interface SessionSettings {
  /** Frames a subscriber may have waiting before it counts as too slow. */
  bufferFrames: number;
  /** Idle time after which a keepalive is sent, in ms. */
  keepaliveMs: number;
  /** Most entries read backwards when looking for a snapshot's matching entries. */
  snapshotScanLimit: number;
}

export interface SessionRequest {
  logId: string;
  /** Valid patterns (see patternProblem), 1 or more. */
  patterns: string[];
  /** Resume after this seq; undefined: snapshot first. */
  resumeAfterSeq: bigint | undefined;
  snapshotLimit: number;
}

/** What the session needs of its log's feed. */
export interface FeedLink {
  /** Files the session for live entries and resolves with the seq the feed has delivered up to. */
  join(session: Session): Promise<bigint>;
  /** The last seq the feed has received. */
  readonly position: bigint;
  leave(session: Session): void;
}

/** An Event frame for an entry as one subscriber sees it. */
function eventFrame(entry: logV1.Entry, name: string, snapshot: boolean): Frame {
  const value: EventFrame = {
    seq: entry.seq,
    topic: entry.kind,
    event: name,
    wallTimeUs: entry.wallTimeUs,
    snapshot,
    uuid: entry.uuid,
    ...(entry.payload ? { payload: entry.payload } : {}),
  };
  return { frame: { case: "event", value } };
}

/**
 * The live frames of one entry, one per event name, shared by every
 * subscriber that gets the entry, so that each is encoded once for all.
 */
export class EntryFrames {
  private readonly byName = new Map<string, Frame>();

  constructor(readonly entry: logV1.Entry) {}

  frame(name: string): Frame {
    let frame = this.byName.get(name);
    if (!frame) this.byName.set(name, (frame = shareEncoding(eventFrame(this.entry, name, false))));
    return frame;
  }
}

/** The topic minus the literal tokens the pattern starts with (at least the last token stays). */
export function eventName(pattern: string, topic: string): string {
  const patternTokens = pattern.split(".");
  const topicTokens = topic.split(".");
  let literal = 0;
  while (literal < patternTokens.length && patternTokens[literal] !== "*" && patternTokens[literal] !== ">") literal++;
  return topicTokens.slice(Math.min(literal, topicTokens.length - 1)).join(".");
}

export class Session {
  readonly patterns: readonly string[];
  private readonly filters: readonly KindFilter[];
  private phase: "catching-up" | "live" | "ended" = "catching-up";
  /** Live entries offered while catching up, in seq order. */
  private pending: EntryFrames[] = [];
  /** Set when `pending` overflowed: its entries are read from the log instead. */
  private overflowed = false;
  /** Frames waiting to be sent; those that carry an entry with its seq, and its wall time when it came live. */
  private readonly out: Queued[] = [];
  private failure: Error | undefined;
  /** The last seq delivered or skipped; later entries only are sent. */
  private lastSeq = 0n;
  private lastFrameAt = Date.now();
  private wake: (() => void) | undefined;
  private roomWake: (() => void) | undefined;
  private readonly keepalive: NodeJS.Timeout;
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
    this.filters = request.patterns.map((pattern) => new KindFilter([pattern]));
    this.keepalive = setInterval(() => this.keepaliveDue(), Math.max(10, Math.floor(settings.keepaliveMs / 4)));
    this.keepalive.unref();
    void this.run();
  }

  /** A live entry from the feed whose topic matches one of the patterns. Synchronous: never waits. */
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
      this.push({ frame: frames.frame(this.eventNameOf(entry.kind)), seq: entry.seq, liveWallTimeUs: entry.wallTimeUs });
      if (this.out.length > this.settings.bufferFrames) {
        const resumeAfter = this.lastDelivered();
        this.end(
          resourceExhausted(
            `this subscriber fell more than ${this.settings.bufferFrames} events behind and was disconnected; resume after seq ${resumeAfter} to continue`,
            { reason: "SLOW_CONSUMER", metadata: { resume_after_seq: String(resumeAfter) } },
            0,
          ),
          "slow",
        );
      }
    }
  }

  /** The frames to send, until the client goes away or the session fails. */
  async *frames(signal: AbortSignal): AsyncGenerator<Frame> {
    const onAbort = () => this.close();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      for (;;) {
        const next = this.out.shift();
        if (next) {
          this.lastFrameAt = Date.now();
          this.roomWake?.();
          if (next.seq !== undefined) this.metrics.eventDelivered(next.liveWallTimeUs);
          yield next.frame;
          continue;
        }
        if (this.failure) throw this.failure;
        if (this.phase === "ended") return;
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.close();
    }
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
    clearInterval(this.keepalive);
    this.stopped.abort();
    this.feed.leave(this);
    this.onEnd(this, reason);
    this.wake?.();
    this.roomWake?.();
  }

  private push(queued: Queued): void {
    this.out.push(queued);
    this.wake?.();
  }

  private keepaliveDue(): void {
    if (this.out.length > 0 || Date.now() - this.lastFrameAt < this.settings.keepaliveMs) return;
    const seq = this.phase === "live" && this.feed.position > this.lastSeq ? this.feed.position : this.lastSeq;
    this.lastFrameAt = Date.now();
    this.push({ frame: { frame: { case: "keepalive", value: { seq } } } });
  }

  /** The seq to resume after: the one before the first entry still waiting to be sent. */
  private lastDelivered(): bigint {
    const firstWaiting = this.out.find((queued) => queued.seq !== undefined)?.seq;
    return firstWaiting === undefined ? this.lastSeq : firstWaiting - 1n;
  }

  private eventFrame(entry: logV1.Entry, snapshot: boolean): Frame {
    return eventFrame(entry, this.eventNameOf(entry.kind), snapshot);
  }

  /** The event name of a topic under the first of this subscriber's patterns that matches it. */
  private eventNameOf(topic: string): string {
    const index = this.filters.findIndex((filter) => filter.matches(topic));
    return eventName(this.patterns[Math.max(0, index)]!, topic);
  }

  private matches(kind: string): boolean {
    return this.filters.some((filter) => filter.matches(kind));
  }

  private async run(): Promise<void> {
    try {
      let joinedAt = await this.feed.join(this);
      if (this.request.resumeAfterSeq === undefined) {
        await this.snapshot(joinedAt);
        this.push({ frame: { frame: { case: "snapshotDone", value: { seq: joinedAt } } } });
      } else {
        this.lastSeq = this.request.resumeAfterSeq;
        this.push({ frame: { frame: { case: "snapshotDone", value: { seq: this.lastSeq } } } });
        await this.catchUp(joinedAt);
      }
      // Entries offered while reading overflowed the pending list: read on from the log up to where the feed is now.
      while (this.overflowed && this.phase === "catching-up") {
        this.overflowed = false;
        joinedAt = this.feed.position;
        await this.catchUp(joinedAt);
      }
      if (this.phase !== "catching-up") return;
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
    const found: logV1.Entry[] = [];
    let scanned = 0;
    let pageToken = "";
    if (headSeq > 0n && this.request.snapshotLimit > 0) {
      while (found.length < this.request.snapshotLimit && scanned < this.settings.snapshotScanLimit) {
        const page = await this.reader.page({ logId: this.request.logId, fromSeq: headSeq, direction: logV1.ReadDirection.BACKWARD, pageToken }, this.stopped.signal);
        for (const entry of page.entries) {
          scanned++;
          if (this.matches(entry.kind)) found.push(entry);
          if (found.length === this.request.snapshotLimit) break;
        }
        pageToken = page.nextPageToken;
        if (!pageToken || page.entries.length === 0) break;
      }
    }
    this.lastSeq = headSeq;
    for (const entry of found.reverse()) await this.send(this.eventFrame(entry, true), entry.seq);
  }

  /** Every matching entry after lastSeq up to `toSeq`, read from the log. */
  private async catchUp(toSeq: bigint): Promise<void> {
    let pageToken = "";
    while (this.lastSeq < toSeq && this.phase === "catching-up") {
      const page = await this.reader.page(
        { logId: this.request.logId, fromSeq: this.lastSeq + 1n, direction: logV1.ReadDirection.FORWARD, pageToken },
        this.stopped.signal,
      );
      for (const entry of page.entries) {
        if (entry.seq <= this.lastSeq) continue;
        this.lastSeq = entry.seq;
        if (this.matches(entry.kind)) await this.send(this.eventFrame(entry, false), entry.seq);
      }
      pageToken = page.nextPageToken;
      if (page.entries.length === 0) break;
    }
  }

  /** Queues a catch-up frame, waiting while the client has a full buffer of them. */
  private async send(frame: Frame, seq: bigint): Promise<void> {
    while (this.out.length >= this.settings.bufferFrames && this.phase === "catching-up") {
      await new Promise<void>((resolve) => (this.roomWake = resolve));
      this.roomWake = undefined;
    }
    if (this.phase === "catching-up") this.push({ frame, seq });
  }
}
