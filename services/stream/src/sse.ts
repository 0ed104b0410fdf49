// Server-Sent Events for browsers: GET /v1/logs/{log}/events?kinds=a.>,b.*
// (comma-separated or repeated) and `snapshot=N`, with the token in the query
// (`token=`: EventSource cannot set headers) or in an Authorization header;
// `Last-Event-ID` is the after_seq to resume after. The same sessions as
// Subscribe, one event per entry (never batched).
//
// Data events: `id:` the seq, `event:` the event name, `data:` one JSON object
// {"seq": "…", "name": "…", "snapshot": bool, "entry": <the annals.log.v1.Entry
// in protobuf JSON: int64 as strings, binary_payload as base64>}.
//
// Event names are reserved so that no kind can produce a control event: a
// data event's name is dotted tokens of letters, digits, `_` and `-` (the
// kind rules), so it never contains `:`, and every control event's does:
//   annals:caught-up  {"seq": "…"}: the snapshot (or resume) is done; live follows
//   annals:error      {"code": "…", "message": "…"}: why the stream ends (also
//                     when the server shuts down: "unavailable", reconnect)
// A data event whose name would be one of EventSource's own types (`error`,
// `open`, `message`; `error` would fire onerror) goes out as `kind:` and its
// full kind instead, e.g. `kind:identity.error` (sse.test.ts "reserved names").
// Heartbeats are comment lines (`: keepalive <last seq>`), which EventSource ignores.
//
// `event=message` (opt-in) sends every data event with no `event:` line, so
// EventSource delivers them all to `onmessage` (a page following `>` cannot
// know the names to listen for in advance); the name is still in `data`,
// and control events keep their `annals:` names. The web console uses it.
import type { IncomingMessage } from "node:http";
import { once } from "node:events";
import { toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { logV1 } from "@annals/proto";
import { shuttingDown, type HttpRoute } from "@annals/runtime";
import type { StreamHub } from "./hub.js";
import { STREAM_VIEW, checkSubscription } from "./service.js";
import type { EventValue } from "./session.js";

const PATH = /^\/v1\/logs\/(.+)\/events$/;
/** What EventSource waits before reconnecting, in ms (sent as `retry:`). */
const CLIENT_RETRY_MS = 3000;
/** Event types EventSource dispatches itself: a data event may not take their names. */
const EVENTSOURCE_TYPES = new Set(["error", "open", "message"]);
/** An entry's protobuf JSON, made once for all the streams it is written to. */
const entryJson = new WeakMap<logV1.Entry, string>();

/**
 * The events route. The runtime's pipeline authenticates the caller (token in
 * the query or the Authorization header), checks the role, and answers a
 * refusal thrown before the stream starts as JSON with its HTTP status.
 */
export function sseRoute(hub: StreamHub): HttpRoute {
  return {
    method: "GET",
    name: "GET /v1/logs/{log}/events",
    access: STREAM_VIEW,
    matches: (path) => PATH.test(path),
    async handle(request, response, { principal, signal, draining }) {
      // The raw path, not a URL's: `new URL` would resolve `/v1/logs/%2E%2E/events` to another path.
      const [path = "", query = ""] = (request.url ?? "/").split("?", 2);
      const searchParams = new URLSearchParams(query);
      const unnamed = eventParameter(searchParams.get("event"));
      const subscription = checkSubscription(
        {
          logId: pathLogId(path),
          kinds: searchParams.getAll("kinds").flatMap((value) => value.split(",")).filter((kind) => kind !== ""),
          afterSeq: lastEventId(request),
          snapshotLimit: snapshotParameter(searchParams.get("snapshot")),
          maxEventsPerFrame: 0,
        },
        principal!,
      );
      await hub.refusePastHead(subscription.logId, subscription.afterSeq, signal);
      const session = hub.subscribe(principal!, subscription);
      response.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache",
        "x-accel-buffering": "no",
        connection: "keep-alive",
      });
      response.write(`retry: ${CLIENT_RETRY_MS}\n\n`);
      try {
        for await (const { frame } of session.frames(signal)) {
          let text: string;
          switch (frame.case) {
            case "event":
              text = dataEvent(frame.value, unnamed);
              break;
            case "events":
              text = frame.value.events.map((value) => dataEvent(value, unnamed)).join("");
              break;
            case "caughtUp":
              text = `event: annals:caught-up\ndata: ${JSON.stringify({ seq: String(frame.value.seq) })}\n\n`;
              break;
            case "heartbeat":
              text = `: keepalive ${frame.value.lastSeq}\n\n`;
          }
          if (!response.write(text)) await once(response, "drain", { signal }).catch(() => undefined);
        }
        // The server drains: the client is told to reconnect (to another replica) before the stream closes.
        response.end(draining.aborted ? errorEvent(shuttingDown()) : undefined);
      } catch (error) {
        if (draining.aborted) {
          response.end(": the server is shutting down; reconnect\n\n");
          return;
        }
        // The stream already started: say why it ends as an event, then close.
        response.end(errorEvent(ConnectError.from(error)));
      }
    },
  };
}

/** One data event (see the module comment). */
function dataEvent({ entry, name, snapshot }: EventValue, unnamed: boolean): string {
  let json = entryJson.get(entry);
  if (json === undefined) entryJson.set(entry, (json = toJsonString(logV1.EntrySchema, entry)));
  const type = unnamed ? "" : `event: ${EVENTSOURCE_TYPES.has(name) ? `kind:${entry.kind}` : name}\n`;
  return `id: ${entry.seq}\n${type}data: {"seq":"${entry.seq}","name":${JSON.stringify(name)},"snapshot":${snapshot},"entry":${json}}\n\n`;
}

/** The log id in the path, percent-decoded; INVALID_ARGUMENT when it does not decode (`%ZZ`, a lone surrogate). */
function pathLogId(path: string): string {
  const encoded = PATH.exec(path)?.[1] ?? "";
  try {
    return decodeURIComponent(encoded);
  } catch {
    throw new ConnectError("log_id: the path's log id is not valid percent-encoded UTF-8", Code.InvalidArgument);
  }
}

/** `snapshot=N`: how many of the latest matching entries to start with (default 50). */
function snapshotParameter(value: string | null): number {
  if (value === null) return 0;
  if (!/^[0-9]{1,7}$/.test(value)) throw new ConnectError("snapshot_limit: must be a number of entries (0–1000)", Code.InvalidArgument);
  return Number(value);
}

/** `event=message`: data events without an `event:` line (true); absent: named (false). */
function eventParameter(value: string | null): boolean {
  if (value === null) return false;
  if (value !== "message") throw new ConnectError(`event: must be "message" (every data event as EventSource's message) or absent, got "${value.slice(0, 64)}"`, Code.InvalidArgument);
  return true;
}

/** Last-Event-ID (sent by EventSource when it reconnects) is the seq to resume after. */
function lastEventId(request: IncomingMessage): bigint | undefined {
  const value = request.headers["last-event-id"];
  if (typeof value !== "string" || value === "") return undefined;
  if (!/^[0-9]{1,19}$/.test(value)) throw new ConnectError("Last-Event-ID must be a seq the stream sent", Code.InvalidArgument);
  return BigInt(value);
}

/** The control event that ends a stream with an error (see the module comment). */
function errorEvent(failure: ConnectError): string {
  return `event: annals:error\ndata: ${JSON.stringify({ code: codeToString(failure.code), message: failure.rawMessage })}\n\n`;
}
