// The fan-out: one upstream LogService.Subscribe per log (a feed), shared by
// every local subscriber of that log, started with the first and stopped
// with the last; entries reach subscribers through a subject tree of their
// patterns. The hub also enforces the stream caps.
import { Code, ConnectError } from "@connectrpc/connect";
import type { LogClient } from "@annals/client";
import type { logV1 } from "@annals/proto";
import { Backoff, isTransient, resourceExhausted, rpcError, sleep, unavailable, type Logger, type Principal } from "@annals/runtime";
import { SubjectTree } from "@annals/topics";
import { LogReader } from "./log-reader.js";
import { EntryFrames, Session, type FeedLink, type HeadPosition, type SessionRequest, type SessionSettings } from "./session.js";
import type { StreamMetrics } from "./stream-metrics.js";

/** Reconnects of a feed: first delay, doubled up to the cap, with jitter; reset by a message. */
const RECONNECT_FIRST_MS = 100;
const RECONNECT_MAX_MS = 5000;
/** Heartbeats asked of the log service, so that a dead upstream is noticed by the transport. */
const UPSTREAM_HEARTBEAT_MS = 5000n;
/** Most entries per upstream frame: batches cost the log service and this feed less per entry. */
const UPSTREAM_ENTRIES_PER_FRAME = 1000;
/** What a refused stream is told to wait before trying again. */
const CAP_RETRY_MS = 5000;

export interface HubSettings extends SessionSettings {
  /** Streams one user (token subject) may have open at once. */
  maxStreamsPerUser: number;
  /** Streams this process serves at once. */
  maxStreams: number;
  /** Log reads (snapshot and catch-up pages) this process makes at once. */
  catchUpReads: number;
}

class LogFeed implements FeedLink {
  private readonly tree = new SubjectTree<Session>();
  private readonly sessions = new Set<Session>();
  private readonly stopped = new AbortController();
  private started: Promise<void>;
  /** The last seq received (or the head when the feed started). */
  position = 0n;
  readonly head: HeadPosition = { seq: 0n, wallTimeUs: undefined };

  constructor(
    private readonly logId: string,
    private readonly log: LogClient,
    private readonly metrics: StreamMetrics,
    private readonly logger: Logger,
    /** Entries per upstream frame. */
    private readonly entriesPerFrame: number,
    private readonly onIdle: () => void,
  ) {
    let markStarted!: () => void;
    let markFailed!: (error: Error) => void;
    this.started = new Promise<void>((resolve, reject) => {
      markStarted = resolve;
      markFailed = reject;
    });
    this.started.catch(() => {});
    void this.run(markStarted, markFailed);
  }

  async join(session: Session): Promise<bigint> {
    this.sessions.add(session);
    for (const pattern of session.patterns) this.tree.add(pattern, session);
    await this.started;
    return this.position;
  }

  /** Ends every stream of this feed with `error` and stops it. */
  stop(error: Error): void {
    this.stopped.abort();
    for (const session of [...this.sessions]) session.fail(error);
  }

  leave(session: Session): void {
    if (!this.sessions.delete(session)) return;
    for (const pattern of session.patterns) this.tree.remove(pattern, session);
    if (this.sessions.size === 0) {
      this.stopped.abort();
      this.onIdle();
    }
  }

  private async run(markStarted: () => void, markFailed: (error: Error) => void): Promise<void> {
    const signal = this.stopped.signal;
    const backoff = new Backoff({ firstMs: RECONNECT_FIRST_MS, maxMs: RECONNECT_MAX_MS });
    let started = false;
    while (!signal.aborted) {
      try {
        if (!started) {
          this.position = await this.startSeq();
          this.head.seq = this.position;
          started = true;
          markStarted();
        }
        const stream = this.log.subscribe(
          { logId: this.logId, afterSeq: this.position, heartbeatIntervalMs: UPSTREAM_HEARTBEAT_MS, maxEntriesPerFrame: this.entriesPerFrame },
          { signal },
        );
        for await (const { frame } of stream) {
          backoff.reset();
          if (frame.case === "entries") for (const entry of frame.value.entries) this.deliver(entry);
          else if (frame.case === "entry") this.deliver(frame.value);
          else if (frame.case === "heartbeat") this.heardOfHead(frame.value);
        }
      } catch (error) {
        if (signal.aborted) return;
        const failure = ConnectError.from(error);
        if (!isTransient(failure.code)) {
          // Nothing a retry can fix (the log was compacted past this feed, the token was refused): end every stream with it.
          this.logger.warn({ log: this.logId, code: Code[failure.code], err: failure }, "stream feed stopped");
          markFailed(failure);
          for (const session of [...this.sessions]) session.fail(failure);
          return;
        }
        this.metrics.upstreamReconnect();
        this.logger.info({ log: this.logId, code: Code[failure.code] }, "log service unreachable; the feed reconnects");
      }
      await sleep(backoff.next(), signal);
    }
  }

  /** The log's last seq, where the feed starts. */
  private async startSeq(): Promise<bigint> {
    try {
      return (await this.log.getLog({ logId: this.logId }, { signal: this.stopped.signal })).head?.lastSeq ?? 0n;
    } catch (error) {
      // A log that does not exist yet starts at 0; its first entry will be seq 1.
      if (ConnectError.from(error).code === Code.NotFound) return 0n;
      throw error;
    }
  }

  private deliver(entry: logV1.Entry): void {
    if (entry.seq <= this.position) return;
    this.position = entry.seq;
    if (entry.seq >= this.head.seq) {
      this.head.seq = entry.seq;
      this.head.wallTimeUs = entry.wallTimeUs;
    }
    const lagMs = Date.now() - Number(entry.wallTimeUs / 1000n);
    const frames = new EntryFrames(entry);
    for (const session of this.tree.match(entry.kind)) session.offer(frames);
    this.metrics.entryFannedOut(lagMs);
  }

  /** An upstream heartbeat: where the log's head is, and when its entry was sequenced. */
  private heardOfHead({ headSeq, headTime }: logV1.Heartbeat): void {
    if (headSeq < this.head.seq) return;
    this.head.seq = headSeq;
    this.head.wallTimeUs = headTime ? headTime.seconds * 1_000_000n + BigInt(Math.floor(headTime.nanos / 1000)) : undefined;
  }
}


export class StreamHub {
  private readonly feeds = new Map<string, LogFeed>();
  private readonly perUser = new Map<string, number>();
  private open = 0;
  private readonly reader: LogReader;

  constructor(
    private readonly log: () => LogClient,
    private readonly settings: HubSettings,
    private readonly metrics: StreamMetrics,
    private readonly logger: Logger,
  ) {
    this.reader = new LogReader(log, settings.catchUpReads);
  }

  /** Opens a stream for a caller, or refuses it with RESOURCE_EXHAUSTED when a cap is reached. */
  subscribe(principal: Principal, request: SessionRequest): Session {
    const user = principal.subject;
    const mine = this.perUser.get(user) ?? 0;
    if (mine >= this.settings.maxStreamsPerUser) {
      throw resourceExhausted(
        `"${user}" already has ${mine} streams open, the most one user may; close one or retry later`,
        { reason: "STREAM_LIMIT_PER_USER", metadata: { limit: String(this.settings.maxStreamsPerUser) } },
        CAP_RETRY_MS,
      );
    }
    if (this.open >= this.settings.maxStreams) {
      throw resourceExhausted(
        `this stream service is serving ${this.open} streams, its limit; retry later (possibly on another replica)`,
        { reason: "STREAM_LIMIT_GLOBAL", metadata: { limit: String(this.settings.maxStreams) } },
        CAP_RETRY_MS,
      );
    }
    this.perUser.set(user, mine + 1);
    this.open++;
    this.metrics.subscriberOpened();
    let feed = this.feeds.get(request.logId);
    if (!feed) {
      // A frame's entries are offered at once: half a buffer at most, so that one frame never fills a subscriber's buffer by itself.
      const entriesPerFrame = Math.max(1, Math.min(UPSTREAM_ENTRIES_PER_FRAME, Math.floor(this.settings.bufferFrames / 2)));
      const created = new LogFeed(request.logId, this.log(), this.metrics, this.logger, entriesPerFrame, () => {
        if (this.feeds.get(request.logId) === created) this.feeds.delete(request.logId);
      });
      this.feeds.set(request.logId, created);
      feed = created;
    }
    return new Session(request, this.settings, this.reader, feed, this.metrics, (_session, reason) => {
      const left = (this.perUser.get(user) ?? 1) - 1;
      if (left === 0) this.perUser.delete(user);
      else this.perUser.set(user, left);
      this.open--;
      this.metrics.subscriberClosed(reason);
    });
  }

  /**
   * OUT_OF_RANGE when a subscriber asks to resume after a seq the log has not
   * reached: taken at its word, every entry up to that seq would be skipped.
   */
  async refusePastHead(logId: string, afterSeq: bigint | undefined, signal: AbortSignal): Promise<void> {
    if (afterSeq === undefined) return;
    const lastSeq = await this.reader.lastSeq(logId, signal);
    if (afterSeq > lastSeq) {
      throw rpcError(Code.OutOfRange, `after_seq ${afterSeq} is past the head of log "${logId}" (last seq ${lastSeq})`, {
        reason: "SEQ_PAST_HEAD",
        metadata: { log: logId, field: "after_seq", last_seq: String(lastSeq) },
      });
    }
  }

  /** Ends every stream with UNAVAILABLE (clients resume elsewhere) and stops the feeds. */
  close(): void {
    const error = unavailable("the stream service is shutting down; resume from your last seq", { reason: "SHUTTING_DOWN" }, 1000);
    for (const feed of [...this.feeds.values()]) feed.stop(error);
    this.feeds.clear();
  }
}
