// Reads of the log for snapshots and catch-ups, shared by every subscriber of
// this process: at most `concurrency` at a time, so that many subscribers
// arriving at once (after a reconnect, say) queue here instead of exhausting
// the log service's database connections; retried with backoff while the log
// service is unavailable.
import { Code, ConnectError } from "@connectrpc/connect";
import type { LogClient } from "@annals/client";
import type { logV1 } from "@annals/proto";
import { Backoff, isTransient, retryDelayMs, sleep } from "@annals/runtime";

/** Most entries read per Read call. */
const READ_PAGE = 1000;
const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 5000;

export type Page = Pick<logV1.ReadResponse, "entries" | "nextPageToken">;

export interface PageRequest {
  logId: string;
  fromSeq: bigint;
  direction: logV1.ReadDirection;
  pageToken: string;
}

export class LogReader {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  /** Entries asked per page: halved when a page does not fit in a message, doubled back after each page that did. */
  private pageSize = READ_PAGE;

  constructor(
    private readonly log: () => LogClient,
    private readonly concurrency: number,
  ) {}

  /** One page; a log that does not exist yet reads as empty. Gives up only when `signal` aborts or the error is not transient. */
  page(request: PageRequest, signal: AbortSignal): Promise<Page> {
    return this.retried(() => this.fittingPage(request, signal), { entries: [], nextPageToken: "" }, signal);
  }

  /**
   * A page of as many entries as fit in one message. Read cuts a page by
   * count only, so 1000 entries with large payloads pass the gRPC message
   * limit (RESOURCE_EXHAUSTED without RetryInfo): ask for half as many
   * (stream-service.test.ts "slow consumers": the resume reads 4 KB entries).
   */
  private async fittingPage(request: PageRequest, signal: AbortSignal): Promise<Page> {
    for (;;) {
      const pageSize = this.pageSize;
      try {
        const page = await this.log().read({ ...request, pageSize }, { signal });
        this.pageSize = Math.min(READ_PAGE, pageSize * 2);
        return page;
      } catch (error) {
        const failure = ConnectError.from(error);
        if (pageSize === 1 || failure.code !== Code.ResourceExhausted || retryDelayMs(failure) !== undefined) throw error;
        this.pageSize = Math.max(1, Math.floor(pageSize / 2));
      }
    }
  }

  /** The log's last seq; 0 for a log that does not exist yet. */
  async lastSeq(logId: string, signal: AbortSignal): Promise<bigint> {
    const found = await this.retried(() => this.log().getLog({ logId }, { signal }), null, signal);
    return found?.head?.lastSeq ?? 0n;
  }

  /** A call under the limiter, retried with backoff while the log service is unavailable; `absent` when the log does not exist. */
  private async retried<T, A>(call: () => Promise<T>, absent: A, signal: AbortSignal): Promise<T | A> {
    const backoff = new Backoff({ firstMs: RETRY_FIRST_MS, maxMs: RETRY_MAX_MS });
    for (;;) {
      await this.acquire();
      try {
        return await call();
      } catch (error) {
        const code = ConnectError.from(error).code;
        if (code === Code.NotFound) return absent;
        if (signal.aborted || !isTransient(code)) throw error;
      } finally {
        this.release();
      }
      await sleep(backoff.next(), signal);
    }
  }

  private async acquire(): Promise<void> {
    if (this.active < this.concurrency) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    // The permit passes straight to the next reader.
    if (next) next();
    else this.active--;
  }
}
