import type { ServerResponse } from "node:http";
import { ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus, codeToString } from "@connectrpc/connect/protocol-connect";
import { retryDelayMs } from "./errors.js";

/**
 * Answers a plain HTTP route's refusal the way the Connect protocol answers
 * an RPC's: the HTTP status of the code, a JSON body `{code, message}`,
 * `Retry-After` when the error carries a retry delay. A server fault says
 * no more than "internal error".
 */
export function writeRouteError(response: ServerResponse, error: unknown): void {
  const failure = ConnectError.from(error);
  const status = codeToHttpStatus(failure.code);
  const headers: Record<string, string> = { "content-type": "application/json", "cache-control": "no-store" };
  const retryMs = retryDelayMs(failure);
  if (retryMs !== undefined) headers["retry-after"] = String(Math.ceil(retryMs / 1000));
  if (response.headersSent) {
    response.end();
    return;
  }
  response.writeHead(status, headers);
  response.end(JSON.stringify({ code: codeToString(failure.code), message: status >= 500 && status !== 503 ? "internal error" : failure.rawMessage }));
}
