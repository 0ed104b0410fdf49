/**
 * The acks of one AppendStream: entries are submitted as they are read (so a
 * stream's entries share group commits) and acknowledged strictly in
 * submission order. At most `window` entries are outstanding; the reader
 * waits for room, so a fast producer cannot grow memory without bound.
 */
export class OrderedAcks<T> {
  private readonly outstanding: Promise<T>[] = [];
  private ended = false;
  private refused = false;
  private failure: { error: unknown } | null = null;
  private wakeConsumer: (() => void) | null = null;
  private wakeProducer: (() => void) | null = null;

  constructor(private readonly window: number) {}

  /** Whether a submitted entry was refused (or the input failed): nothing more should be submitted. */
  get failed(): boolean {
    return this.refused || this.failure !== null;
  }

  /** Resolves when another entry may be submitted. */
  async room(): Promise<void> {
    while (this.outstanding.length >= this.window && !this.refused) await new Promise<void>((resolve) => (this.wakeProducer = resolve));
  }

  push(result: Promise<T>): void {
    // Rejections are delivered in order by the iterator; the flag stops the producer early.
    result.catch(() => {
      this.refused = true;
      this.wakeProducer?.();
      this.wakeProducer = null;
    });
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
          void this.outstanding.shift();
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
