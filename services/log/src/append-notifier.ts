import type { Database } from "@annals/db";
import { APPENDED_CHANNEL } from "./store.js";

/** A wait armed before a read, so an append committed in between is not missed. */
export interface ArmedWait {
  /** Resolves at the first append to the log after arming. */
  readonly appended: Promise<void>;
  /** Releases the wait (call it when not awaiting `appended`). */
  cancel(): void;
}

/**
 * Wakes Subscribe streams when entries are committed to their log: by any
 * replica through PostgreSQL LISTEN/NOTIFY, and by this process directly
 * (without waiting for the notification's round trip). Streams re-read by
 * seq after every wake and on every heartbeat, so a lost notification delays
 * an entry by at most one heartbeat interval and never loses it.
 */
export class AppendNotifier {
  private readonly waiters = new Map<string, Set<() => void>>();
  private stopListening: (() => Promise<void>) | null = null;

  constructor(private readonly db: Database) {}

  async start(): Promise<void> {
    this.stopListening = await this.db.listen(
      APPENDED_CHANNEL,
      (payload) => this.announce(payload.slice(0, payload.lastIndexOf(" "))),
      // Notifications sent while the listen connection was down are gone: wake everyone to re-read.
      { onReconnect: () => this.announceAll() },
    );
  }

  async close(): Promise<void> {
    await this.stopListening?.();
    this.stopListening = null;
    this.announceAll();
  }

  arm(logId: string): ArmedWait {
    let wake!: () => void;
    const appended = new Promise<void>((resolve) => (wake = resolve));
    let set = this.waiters.get(logId);
    if (!set) {
      set = new Set();
      this.waiters.set(logId, set);
    }
    set.add(wake);
    const cancel = () => {
      const current = this.waiters.get(logId);
      current?.delete(wake);
      if (current?.size === 0) this.waiters.delete(logId);
    };
    return { appended, cancel };
  }

  /** Wakes every stream waiting on the log. */
  announce(logId: string): void {
    const set = this.waiters.get(logId);
    if (!set) return;
    this.waiters.delete(logId);
    for (const wake of set) wake();
  }

  private announceAll(): void {
    for (const logId of [...this.waiters.keys()]) this.announce(logId);
  }
}
