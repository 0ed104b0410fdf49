/**
 * The acks of one AppendStream: entries are submitted as they are read (so a
 * stream's entries share group commits) and acknowledged strictly in
 * submission order. At most `window` entries are outstanding; the reader
 * waits for room, so a fast producer cannot grow memory without bound.
 */
export class OrderedAcks<T> {
  private readonly outstanding: Promise<T>[] = [];
  private ended = false;
  private failure: { error: unknown } | null = null;
  private wakeConsumer: (() => void) | null = null;
  private wakeProducer: (() => void) | null = null;

  constructor(private readonly window: number) {}

  /** Resolves when another entry may be submitted. */
  async room(): Promise<void> {
    while (this.outstanding.length >= this.window) await new Promise<void>((resolve) => (this.wakeProducer = resolve));
  }

  push(result: Promise<T>): void {
    result.catch(() => {}); // rejections are delivered in order by the iterator
    this.outstanding.push(result);
    this.wake();
  }

  /** No more entries will come. */
  end(): void {
    this.ended = true;
    this.wake();
  }

  /** The input failed: deliver the acks before it, then this error. */
  fail(error: unknown): void {
    this.failure = { error };
    this.end();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    try {
      for (;;) {
        const next = this.outstanding[0];
        if (next) {
          const value = await next;
          this.outstanding.shift();
          this.wakeProducer?.();
          this.wakeProducer = null;
          yield value;
        } else if (this.ended) {
          if (this.failure) throw this.failure.error;
          return;
        } else {
          await new Promise<void>((resolve) => (this.wakeConsumer = resolve));
        }
      }
    } finally {
      // Let a waiting reader go when the response stream ends early.
      this.outstanding.length = 0;
      this.wakeProducer?.();
    }
  }

  private wake(): void {
    this.wakeConsumer?.();
    this.wakeConsumer = null;
  }
}
