// Test support (not exported by the package): the log and stream services in
// this process on a database of their own (as the node runs them, the stream service calling the log service in-process), clients
// with tokens of chosen roles, and helpers to read Subscribe streams.
import { Code, ConnectError } from "@connectrpc/connect";
import { createAnnalsClients, type LogClient, type StreamClient } from "@annals/client";
import { createTestDatabase, type TestDatabase } from "@annals/db/testing";
import { createLogComponent } from "@annals/log";
import type { JsonObject, MessageInitShape } from "@bufbuild/protobuf";
import type { logV1, streamV1 } from "@annals/proto";
import type { RunningServer } from "@annals/runtime";
import { createStreamComponent } from "./component.js";
import { DEFAULT_STREAM_SETTINGS } from "./config.js";
import type { HubSettings } from "./hub.js";

import { eventWaiter, startTestServer } from "@annals/runtime/testing";

export { rejects } from "@annals/runtime/testing";

export const TEST_SECRET = "stream-service-test-secret-at-least-32-bytes";

export interface StreamHarness {
  /** Clients whose token holds `admin`. */
  stream: StreamClient;
  log: LogClient;
  clientWith(roles: string[], options?: { logs?: string[]; subject?: string }): Promise<StreamClient>;
  tokenWith(roles: string[], options?: { logs?: string[]; subject?: string }): Promise<string>;
  server: RunningServer;
  baseUrl: string;
  httpUrl: string;
  /** The Prometheus scrape of the process. */
  metrics(): Promise<string>;
  close(): Promise<void>;
}

/** The log and stream services in one process, the stream service calling the log service in-process. */
export async function startStreamHarness(label: string, settings: Partial<HubSettings> = {}): Promise<StreamHarness> {
  const database: TestDatabase = await createTestDatabase(label);
  const db = await database.open();
  const { server, baseUrl, httpUrl, tokenWith, metrics, close } = await startTestServer({
    label,
    secret: TEST_SECRET,
    components: async (context) => [
      await createLogComponent({ db }, context),
      await createStreamComponent({ log: createAnnalsClients({ transport: context.local }).log, settings: { ...DEFAULT_STREAM_SETTINGS, ...settings } }, context),
    ],
    onClose: () => database.drop(),
  });
  const admin = createAnnalsClients({ baseUrl, token: await tokenWith(["admin"]), unaryTimeoutMs: 60_000 });
  return {
    stream: admin.stream,
    log: admin.log,
    clientWith: async (roles, options) => createAnnalsClients({ baseUrl, token: await tokenWith(roles, options), unaryTimeoutMs: 60_000 }).stream,
    tokenWith,
    server,
    baseUrl,
    httpUrl,
    metrics,
    close,
  };
}

/** What one Subscribe stream received, read in the background. */
export interface Received {
  /** Every event, from `event` and `events` frames alike, in the order received. */
  events: streamV1.Event[];
  /** The number of events in each `events` frame. */
  batchSizes: number[];
  heartbeats: logV1.Heartbeat[];
  caughtUp: bigint | undefined;
  /** How the stream ended: undefined while open; null when it ended cleanly. */
  ended: ConnectError | null | undefined;
  /** Stops reading (cancels the call). */
  cancel(): void;
  /** Resolves when `predicate` holds, or rejects after `timeoutMs`. */
  until(predicate: (received: Received) => boolean, timeoutMs?: number): Promise<void>;
}

export function subscribe(client: StreamClient, request: MessageInitShape<typeof streamV1.SubscribeRequestSchema>): Received {
  const controller = new AbortController();
  const waiter = eventWaiter(() => `${received.events.length} events`);
  const received: Received = {
    events: [],
    batchSizes: [],
    heartbeats: [],
    caughtUp: undefined,
    ended: undefined,
    cancel: () => controller.abort(),
    until: (predicate, timeoutMs = 30_000) => waiter.until("the condition", () => predicate(received), timeoutMs),
  };
  void (async () => {
    try {
      for await (const { frame } of client.subscribe(request, { signal: controller.signal })) {
        if (frame.case === "event") received.events.push(frame.value);
        else if (frame.case === "events") {
          received.events.push(...frame.value.events);
          received.batchSizes.push(frame.value.events.length);
        } else if (frame.case === "heartbeat") received.heartbeats.push(frame.value);
        else if (frame.case === "caughtUp") received.caughtUp = frame.value.seq;
        waiter.changed();
      }
      received.ended = null;
    } catch (error) {
      const failure = ConnectError.from(error);
      received.ended = failure.code === Code.Canceled && controller.signal.aborted ? null : failure;
    }
    waiter.ended(received.ended?.message ?? "cleanly");
  })();
  return received;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** An EntryInput with a JSON payload, plus any other fields. */
export function jsonEntry(
  kind: string,
  payload: JsonObject,
  more: { sourceId?: string; requestId?: string; metadata?: Record<string, string> } = {},
): MessageInitShape<typeof logV1.EntryInputSchema> {
  return { ...more, kind, body: { case: "payload", value: payload } };
}

/** The seqs of events, in order. */
export const seqs = (events: readonly streamV1.Event[]): bigint[] => events.map((event) => event.entry!.seq);
