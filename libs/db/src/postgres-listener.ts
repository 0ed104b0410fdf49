import pg from "pg";
import { Backoff, sleep } from "@annals/runtime/retry";
import { DatabaseError, toDatabaseError } from "./database-error.js";
import type { ListenOptions } from "./database.js";
import { quoteChannel } from "./notify-channel.js";

export interface PostgresListenerOptions {
  /** Connection settings of the one dedicated LISTEN client. */
  client: pg.ClientConfig;
  /** Where failures that no caller awaits go (a dropped connection, a failed reconnect, a throwing callback). */
  onBackgroundError: (error: Error) => void;
  /** Delay before the first reconnect attempt, in ms; doubles per failed attempt, with jitter. Default 100. */
  initialBackoffMs?: number;
  /** Longest delay between reconnect attempts, in ms. Default 5000. */
  maxBackoffMs?: number;
}

export interface PostgresListener {
  listen(channel: string, onNotify: (payload: string) => void, options?: ListenOptions): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

interface Subscription {
  onNotify: (payload: string) => void;
  onReconnect: (() => void) | undefined;
}

/**
 * Every LISTEN of one database on one dedicated connection: a pooled
 * connection would be handed to other queries and its LISTENs lost. When the
 * connection drops it is re-opened with capped exponential backoff, for as
 * long as someone listens, every channel is listened to again, and each
 * subscriber's `onReconnect` runs, because notifications sent in between are
 * gone (listen-notify.test.ts "reconnects after the connection is killed").
 */
export function createPostgresListener(options: PostgresListenerOptions): PostgresListener {
  const initialBackoffMs = options.initialBackoffMs ?? 100;
  const maxBackoffMs = options.maxBackoffMs ?? 5000;
  const channels = new Map<string, Set<Subscription>>();
  /** Connected, and listening to every channel in `channels`. */
  let client: pg.Client | undefined;
  let connecting: Promise<pg.Client> | undefined;
  let reconnecting = false;
  let closed = false;
  let wakeFromBackoff: AbortController | undefined;
  // LISTEN and UNLISTEN run one at a time, so a second listen on a channel
  // never resolves before the first one's LISTEN has run.
  let queue: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(work: () => Promise<T>): Promise<T> => {
    const run = queue.then(work, work);
    queue = run.catch(() => undefined);
    return run;
  };

  const report = (error: Error) => {
    try {
      options.onBackgroundError(error);
    } catch {
      // A failing error handler must not take the connection down with it.
    }
  };

  const deliver = (message: pg.Notification) => {
    for (const subscription of channels.get(message.channel) ?? []) {
      try {
        subscription.onNotify(message.payload ?? "");
      } catch (error) {
        report(toDatabaseError(error, `a listener on channel ${message.channel} threw`));
      }
    }
  };

  const lost = (which: pg.Client, error?: Error) => {
    if (which !== client) return;
    client = undefined;
    report(toDatabaseError(error ?? new Error("connection ended"), "the LISTEN connection was lost"));
    which.end().catch(() => undefined);
    if (!closed && channels.size > 0) void reconnect();
  };

  /** Opens a client and LISTENs to every channel; rejects on the first failure. */
  const open = async (): Promise<pg.Client> => {
    const next = new pg.Client(options.client);
    let dead = false;
    // Until `client === next` these only mark it dead; afterwards they start a reconnect.
    next.on("error", (error) => ((dead = true), lost(next, error)));
    next.on("end", () => ((dead = true), lost(next)));
    next.on("notification", deliver);
    try {
      await next.connect();
      for (const channel of channels.keys()) await next.query(`listen ${quoteChannel(channel)}`);
    } catch (error) {
      await next.end().catch(() => undefined);
      throw error;
    }
    if (closed) {
      await next.end().catch(() => undefined);
      throw new DatabaseError("the database was closed while listening");
    }
    client = next;
    // It may have died between its last LISTEN and now, unseen by `lost`.
    if (dead) lost(next);
    return next;
  };

  const connect = (): Promise<pg.Client> => {
    connecting ??= open().finally(() => (connecting = undefined));
    return connecting;
  };

  const reconnect = async () => {
    if (reconnecting) return;
    reconnecting = true;
    try {
      const backoff = new Backoff({ firstMs: initialBackoffMs, maxMs: maxBackoffMs });
      for (let attempt = 0; !closed && channels.size > 0; attempt++) {
        try {
          await connect();
        } catch (error) {
          if (closed) return;
          report(toDatabaseError(error, `re-opening the LISTEN connection failed (attempt ${attempt + 1})`));
          wakeFromBackoff = new AbortController();
          await sleep(backoff.next(), wakeFromBackoff.signal);
          wakeFromBackoff = undefined;
          continue;
        }
        for (const subscriptions of channels.values()) {
          for (const subscription of subscriptions) {
            try {
              subscription.onReconnect?.();
            } catch (error) {
              report(toDatabaseError(error, "an onReconnect callback threw"));
            }
          }
        }
        return;
      }
    } finally {
      reconnecting = false;
    }
  };

  return {
    async listen(channel, onNotify, listenOptions) {
      const quoted = quoteChannel(channel);
      return exclusive(async () => {
        if (closed) throw new DatabaseError("the database is closed");
        const subscription: Subscription = { onNotify, onReconnect: listenOptions?.onReconnect };
        let subscriptions = channels.get(channel);
        const first = subscriptions === undefined;
        if (subscriptions === undefined) channels.set(channel, (subscriptions = new Set()));
        subscriptions.add(subscription);
        try {
          const active = client ?? (await connect());
          // A fresh connection already listened to every channel in the map.
          if (first) await active.query(`listen ${quoted}`);
        } catch (error) {
          subscriptions.delete(subscription);
          if (subscriptions.size === 0) channels.delete(channel);
          throw toDatabaseError(error, `cannot LISTEN on channel ${channel}`);
        }
        let stopped = false;
        return () =>
          exclusive(async () => {
            if (stopped) return;
            stopped = true;
            subscriptions.delete(subscription);
            if (subscriptions.size > 0 || channels.get(channel) !== subscriptions) return;
            channels.delete(channel);
            // A lost connection has forgotten its LISTENs anyway.
            await client?.query(`unlisten ${quoted}`).catch(() => undefined);
          });
      });
    },

    async close() {
      closed = true;
      channels.clear();
      wakeFromBackoff?.abort();
      const current = client;
      client = undefined;
      await current?.end().catch(() => undefined);
      await connecting?.catch(() => undefined);
    },
  };
}
