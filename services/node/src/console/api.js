// The console's only way to the node: the public APIs, as any client calls
// them. Unary calls are Connect JSON over fetch (POST /<service>/<Method>),
// live tails are Server-Sent Events. The token, when the user gives one, is
// kept in sessionStorage (this tab only, gone when it closes) and sent as a
// bearer token; EventSource cannot set headers, so the SSE URL carries it as
// `token=`. With auth off (a loopback node without a key) none is needed.

const TOKEN_KEY = "annals.console.token";

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) ?? "";
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** A refused call: the Connect error code (e.g. "permission_denied") and message. */
export class ApiError extends Error {
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.code = code;
  }
}

/** One unary call in the Connect protocol with JSON; resolves to the response message in protobuf JSON. */
export async function call(service, method, request = {}) {
  const headers = { "content-type": "application/json" };
  const token = getToken();
  if (token) headers.authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(`/${service}/${method}`, { method: "POST", headers, body: JSON.stringify(request) });
  } catch (error) {
    throw new ApiError("unavailable", `the node did not answer (${error.message})`);
  }
  const text = await response.text();
  let body;
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    body = { message: text };
  }
  if (!response.ok) throw new ApiError(body.code ?? `http_${response.status}`, body.message ?? response.statusText);
  return body;
}

export const logApi = (method, request) => call("annals.log.v1.LogService", method, request);
export const kvApi = (method, request) => call("annals.kv.v1.KvService", method, request);
export const federationApi = (method, request) => call("annals.federation.v1.FederationService", method, request);

/**
 * Follows a log over SSE: the latest `snapshot` matching entries, then live
 * ones. Data events come unnamed (`event=message`), so one handler gets every
 * kind. EventSource reconnects by itself and resumes after the last seq it
 * got (Last-Event-ID). `onState(state, detail)` hears "connecting", "live",
 * "caught-up" ({seq}), "reconnecting", and "ended" ({code, message}).
 * Returns a function that stops following.
 */
export function follow(logId, { kinds, snapshot, onEvent, onState }) {
  const query = new URLSearchParams({ event: "message", snapshot: String(snapshot) });
  if (kinds) query.set("kinds", kinds);
  const token = getToken();
  if (token) query.set("token", token);
  const url = `/v1/logs/${encodeURIComponent(logId)}/events?${query}`;
  const source = new EventSource(url);
  onState("connecting");
  source.onopen = () => onState("live");
  source.onmessage = (event) => onEvent(JSON.parse(event.data));
  source.addEventListener("annals:caught-up", (event) => onState("caught-up", JSON.parse(event.data)));
  source.addEventListener("annals:error", (event) => {
    source.close();
    onState("ended", JSON.parse(event.data));
  });
  source.onerror = () => {
    if (source.readyState !== EventSource.CLOSED) {
      onState("reconnecting");
      return;
    }
    // Refused (a non-200 answer): EventSource does not say why, the same request does.
    void refusal(url).then((detail) => onState("ended", detail));
  };
  return () => source.close();
}

async function refusal(url) {
  const abort = new AbortController();
  try {
    const response = await fetch(url, { signal: abort.signal });
    if (response.ok) return { code: "unavailable", message: "the stream closed; start again" };
    return await response.json();
  } catch (error) {
    return { code: "unavailable", message: `the node did not answer (${error.message})` };
  } finally {
    abort.abort();
  }
}

/** Text → base64 of its UTF-8 bytes (protobuf JSON `bytes`). */
export function textToBase64(text) {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** Base64 (protobuf JSON `bytes`) → bytes. */
export function base64ToBytes(base64) {
  const binary = atob(base64 ?? "");
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

/** Bytes as UTF-8 text when they are, else as hex with a `0x` prefix. */
export function showBytes(bytes) {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return `0x${Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("")}`;
  }
}
