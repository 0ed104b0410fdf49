// Server-Sent Events for browsers: GET /v1/logs/{log}/events?topics=a.>,b.*
// with the token in the query (EventSource cannot set headers) or in an
// Authorization header; the same sessions as Subscribe.
import type { IncomingMessage, ServerResponse } from "node:http";
import { once } from "node:events";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { isAllowed, retryDelayMs, type Authenticator, type HttpRoute } from "@annals/runtime";
import type { StreamHub } from "./hub.js";
import { STREAM_VIEW, checkSubscription } from "./service.js";

const PATH = /^\/v1\/logs\/(.+)\/events$/;
/** What EventSource waits before reconnecting, in ms (sent as `retry:`). */
const CLIENT_RETRY_MS = 3000;

const STATUS: Partial<Record<Code, number>> = {
  [Code.InvalidArgument]: 400,
  [Code.OutOfRange]: 400,
  [Code.Unauthenticated]: 401,
  [Code.PermissionDenied]: 403,
  [Code.ResourceExhausted]: 429,
  [Code.Unavailable]: 503,
};

export function sseRoute(hub: StreamHub, authenticator: Authenticator): HttpRoute {
  return {
    method: "GET",
    matches: (path) => PATH.test(path),
    async handle(request, response) {
      // The raw path, not a URL's: `new URL` would resolve `/v1/logs/%2E%2E/events` to another path.
      const [path = "", query = ""] = (request.url ?? "/").split("?", 2);
      const searchParams = new URLSearchParams(query);
      let session;
      const gone = new AbortController();
      response.on("close", () => gone.abort());
      try {
        const token = searchParams.get("token");
        const principal = await authenticator.authenticate(token ? `Bearer ${token}` : (request.headers.authorization ?? null));
        if (!isAllowed(principal, STREAM_VIEW)) {
          throw new ConnectError(`the events endpoint requires the role "${STREAM_VIEW}"`, Code.PermissionDenied);
        }
        const subscription = checkSubscription(
          {
            logId: pathLogId(path),
            topics: searchParams.getAll("topics").flatMap((value) => value.split(",")).filter((topic) => topic !== ""),
            resumeAfterSeq: lastEventId(request),
            snapshotLimit: snapshotParameter(searchParams.get("snapshot")),
          },
          principal,
        );
        await hub.refusePastHead(subscription.logId, subscription.resumeAfterSeq, gone.signal);
        session = hub.subscribe(principal, subscription);
      } catch (error) {
        refuse(response, ConnectError.from(error));
        return;
      }
      response.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache",
        "x-accel-buffering": "no",
        connection: "keep-alive",
      });
      response.write(`retry: ${CLIENT_RETRY_MS}\n\n`);
      try {
        for await (const { frame } of session.frames(gone.signal)) {
          let text: string;
          switch (frame?.case) {
            case "event": {
              const event = frame.value;
              const data = { seq: String(event.seq), topic: event.topic, event: event.event, wallTimeUs: String(event.wallTimeUs), payload: event.payload ?? null, snapshot: event.snapshot ?? false, uuid: event.uuid };
              text = `id: ${event.seq}\nevent: ${event.event}\ndata: ${JSON.stringify(data)}\n\n`;
              break;
            }
            case "snapshotDone":
              text = `event: snapshot-done\ndata: ${JSON.stringify({ seq: String(frame.value.seq) })}\n\n`;
              break;
            default:
              text = `: keepalive ${String(frame?.value?.seq ?? "")}\n\n`;
          }
          if (!response.write(text)) await once(response, "drain", { signal: gone.signal }).catch(() => undefined);
        }
        response.end();
      } catch (error) {
        // The stream already started: say why it ends as an event, then close.
        const failure = ConnectError.from(error);
        response.end(`event: error\ndata: ${JSON.stringify({ code: codeToString(failure.code), message: failure.rawMessage })}\n\n`);
      }
    },
  };
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

/** Last-Event-ID (sent by EventSource when it reconnects) is the seq to resume after. */
function lastEventId(request: IncomingMessage): bigint | undefined {
  const value = request.headers["last-event-id"];
  if (typeof value !== "string" || value === "") return undefined;
  if (!/^[0-9]{1,19}$/.test(value)) throw new ConnectError("Last-Event-ID must be a seq the stream sent", Code.InvalidArgument);
  return BigInt(value);
}

function refuse(response: ServerResponse, error: ConnectError): void {
  const status = STATUS[error.code] ?? 500;
  const headers: Record<string, string> = { "content-type": "application/json", "cache-control": "no-store" };
  const retryMs = retryDelayMs(error);
  if (status === 429 && retryMs !== undefined) headers["retry-after"] = String(Math.ceil(retryMs / 1000));
  response.writeHead(status, headers);
  response.end(JSON.stringify({ code: codeToString(error.code), message: status === 500 ? "internal error" : error.rawMessage }));
}

