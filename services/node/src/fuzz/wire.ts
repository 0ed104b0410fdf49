// Sends fuzz cases over every way in: grpc-js and raw HTTP/2 on the gRPC port,
// Connect (JSON and binary), gRPC-Web and plain GETs over node:http on the
// HTTP port (node:http sends a path byte for byte, where fetch would resolve
// `%2E%2E`). Each call ends in an Outcome: the status the server gave, in the
// protocol's own terms, mapped to one vocabulary.
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { DescMethod } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { envelope, type FuzzRequest } from "./corpus.js";
import type { CasePlan, Transport } from "./plan.js";
import { concat } from "./protobuf-bytes.js";

/**
 * What a call ended with: a gRPC code name (`OK`, `INVALID_ARGUMENT`, …); `OPEN`
 * for a stream still open when its window closed; `HTTP_<status>` for an HTTP
 * answer without a protocol status; `CONN_CLOSED`, `CONN_OPEN`, `RST_STREAM`
 * or `NO_ANSWER` for transport-level endings; `CLIENT_ERROR` when this suite
 * could not even send the request.
 */
export interface Outcome {
  code: string;
  message: string;
}

export interface WireOptions {
  host: string;
  grpcPort: number;
  httpPort: number;
  /** How long a unary call (or a client stream after its last message) may take, in ms. */
  callTimeoutMs: number;
  /** How long a server stream is watched before the suite cancels it, in ms. */
  streamWindowMs: number;
}

const CONNECT_CODES: Record<string, string> = {
  canceled: "CANCELLED",
  cancelled: "CANCELLED",
};

/** Connect's lower-case code names ("invalid_argument") in gRPC's upper-case form. */
function connectCode(code: unknown): string | undefined {
  if (typeof code !== "string" || code === "") return undefined;
  return CONNECT_CODES[code] ?? code.toUpperCase();
}

function grpcCodeName(code: number): string {
  return grpc.status[code] ?? `CODE_${code}`;
}

/** A grpc-message header or trailer (percent-encoded), as node:http2 hands it over: a string, or several. */
function decodeGrpcMessage(value: string | string[] | undefined): string {
  const text = (Array.isArray(value) ? value[0] : value) ?? "";
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

const identity = (value: Buffer) => value;

/** How long a raw TCP connection is watched for the server to close it, in ms. */
const SOCKET_WATCH_MS = 500;

/** Requests larger than this go over a gRPC connection of their own, in bytes. */
const ISOLATE_ABOVE_BYTES = 32 * 1024;

export class Wire {
  private readonly grpcClient: grpc.Client;
  private readonly agent: http.Agent;

  constructor(private readonly options: WireOptions) {
    this.grpcClient = this.newGrpcClient();
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  }

  private newGrpcClient(): grpc.Client {
    return new grpc.Client(`${this.options.host}:${this.options.grpcPort}`, grpc.credentials.createInsecure(), {
      "grpc.max_receive_message_length": -1,
      "grpc.max_send_message_length": -1,
      // Otherwise grpc-js shares one connection between clients of the same address.
      "grpc.use_local_subchannel_pool": 1,
    });
  }

  close(): void {
    this.grpcClient.close();
    this.agent.destroy();
  }

  async send(plan: CasePlan, request: FuzzRequest, authorization: string | undefined): Promise<Outcome> {
    try {
      return await this.dispatch(plan.transport, plan.rpc, request, authorization);
    } catch (error) {
      return { code: "CLIENT_ERROR", message: (error as Error).message };
    }
  }

  private dispatch(transport: Transport, rpc: DescMethod | undefined, request: FuzzRequest, authorization: string | undefined): Promise<Outcome> {
    switch (transport) {
      case "grpc-js":
        return this.grpcJs(rpc!, request, authorization);
      case "h2-raw":
        return this.h2Raw(rpc!, request, authorization);
      case "h2-socket":
        return this.socket(request.socketBytes ?? new Uint8Array());
      case "connect-json":
      case "connect-proto":
        return rpc!.methodKind === "unary" && request.httpMethod !== "GET"
          ? this.connectUnary(rpc!, request, authorization, transport === "connect-json" ? "json" : "proto")
          : request.httpMethod === "GET"
            ? this.httpExchange({ method: "GET", path: request.path!, headers: this.authHeaders(authorization, request.headers), body: undefined, streaming: false }).then(connectErrorOutcome)
            : this.connectStream(rpc!, request, authorization, transport === "connect-json" ? "json" : "proto");
      case "grpc-web":
        return this.grpcWeb(rpc!, request, authorization);
      case "http-get":
        return this.plainGet(request, authorization);
    }
  }

  // ---- gRPC port, grpc-js ----

  private grpcJs(rpc: DescMethod, request: FuzzRequest, authorization: string | undefined): Promise<Outcome> {
    const path = `/${rpc.parent.typeName}/${rpc.name}`;
    const metadata = new grpc.Metadata();
    if (authorization !== undefined) metadata.set("authorization", authorization);
    const messages = request.messages.map((message) => Buffer.from(message));
    const streamsOut = rpc.methodKind === "server_streaming" || rpc.methodKind === "bidi_streaming";
    const deadline = Date.now() + this.options.callTimeoutMs;
    // A large request gets a connection of its own: if the server drops the
    // connection over it, the cases in flight beside it must not go down too.
    const isolated = messages.reduce((sum, message) => sum + message.length, 0) > ISOLATE_ABOVE_BYTES;
    const client = isolated ? this.newGrpcClient() : this.grpcClient;
    return new Promise<Outcome>((resolve) => {
      let settled = false;
      const finish = (outcome: Outcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(window);
        if (isolated) setImmediate(() => client.close());
        resolve(outcome);
      };
      const fromError = (error: grpc.ServiceError | null) => finish(error ? { code: grpcCodeName(error.code), message: error.details } : { code: "OK", message: "" });
      let call: grpc.ClientReadableStream<Buffer> | grpc.ClientDuplexStream<Buffer, Buffer> | grpc.ClientWritableStream<Buffer> | grpc.ClientUnaryCall;
      switch (rpc.methodKind) {
        case "unary":
          call = client.makeUnaryRequest(path, identity, identity, messages[0] ?? Buffer.alloc(0), metadata, { deadline }, fromError);
          break;
        case "client_streaming": {
          const writable = client.makeClientStreamRequest(path, identity, identity, metadata, { deadline }, fromError);
          writable.on("error", () => undefined);
          for (const message of messages) writable.write(message);
          writable.end();
          call = writable;
          break;
        }
        case "server_streaming":
          call = client.makeServerStreamRequest(path, identity, identity, messages[0] ?? Buffer.alloc(0), metadata, { deadline });
          break;
        case "bidi_streaming": {
          const duplex = client.makeBidiStreamRequest(path, identity, identity, metadata, { deadline });
          for (const message of messages) duplex.write(message);
          duplex.end();
          call = duplex;
          break;
        }
      }
      if (streamsOut) {
        const stream = call as grpc.ClientReadableStream<Buffer>;
        stream.on("data", () => undefined);
        stream.on("error", () => undefined);
        stream.on("status", (status: grpc.StatusObject) => finish({ code: grpcCodeName(status.code), message: status.details }));
      }
      // A server stream that stays open is healthy; it is cancelled when its window closes.
      const window = setTimeout(
        () => {
          finish({ code: streamsOut ? "OPEN" : "NO_ANSWER", message: "" });
          call.cancel();
        },
        streamsOut && rpc.methodKind === "server_streaming" ? this.options.streamWindowMs : this.options.callTimeoutMs + 1000,
      );
    });
  }

  // ---- gRPC port, raw HTTP/2 ----

  private h2Raw(rpc: DescMethod, request: FuzzRequest, authorization: string | undefined): Promise<Outcome> {
    const headers: http2.OutgoingHttpHeaders = {
      ":method": "POST",
      ":path": request.path ?? `/${rpc.parent.typeName}/${rpc.name}`,
      "content-type": "application/grpc",
      te: "trailers",
      ...(authorization !== undefined ? { authorization } : {}),
    };
    for (const [name, value] of Object.entries(request.headers ?? {})) {
      if (value === null) delete headers[name];
      else headers[name] = value;
    }
    const body = request.body ?? concat(...request.messages.map((message) => envelope(0, message)));
    const windowMs = rpc.methodKind === "server_streaming" ? this.options.streamWindowMs : this.options.callTimeoutMs;
    return new Promise<Outcome>((resolve) => {
      let httpStatus: number | undefined;
      let grpcStatus: string | undefined;
      let grpcMessage = "";
      let settled = false;
      // A session per case: broken headers or framing may make the server end the whole connection.
      const session = http2.connect(`http://${this.options.host}:${this.options.grpcPort}`);
      session.on("error", () => undefined);
      const finish = (outcome: Outcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        session.destroy();
        resolve(outcome);
      };
      const read = (fields: http2.IncomingHttpHeaders) => {
        if (fields["grpc-status"] !== undefined) {
          grpcStatus = grpcCodeName(Number(fields["grpc-status"]));
          grpcMessage = decodeGrpcMessage(fields["grpc-message"]);
        }
      };
      const stream = session.request(headers);
      stream.on("response", (fields) => {
        httpStatus = Number(fields[":status"]);
        read(fields);
      });
      stream.on("trailers", read);
      stream.on("data", () => undefined);
      const conclude = () => {
        if (grpcStatus !== undefined) finish({ code: grpcStatus, message: grpcMessage });
        else if (httpStatus !== undefined && httpStatus !== 200) finish({ code: `HTTP_${httpStatus}`, message: "" });
        else finish({ code: "RST_STREAM", message: `rst code ${stream.rstCode ?? "?"}` });
      };
      stream.on("close", conclude);
      stream.on("error", () => undefined);
      const timer = setTimeout(() => {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        finish({ code: rpc.methodKind === "server_streaming" ? "OPEN" : "NO_ANSWER", message: "" });
      }, windowMs);
      stream.end(Buffer.from(body));
    });
  }

  /** Writes bytes to a fresh TCP connection to the gRPC port and sees how it ends. */
  private socket(bytes: Uint8Array): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      const socket = net.connect(this.options.grpcPort, this.options.host);
      let received = 0;
      const timer = setTimeout(() => {
        socket.destroy();
        resolve({ code: "CONN_OPEN", message: `${received} bytes back` });
      }, SOCKET_WATCH_MS);
      socket.on("data", (chunk: Buffer) => (received += chunk.length));
      socket.on("error", () => undefined);
      socket.on("close", () => {
        clearTimeout(timer);
        resolve({ code: "CONN_CLOSED", message: `${received} bytes back` });
      });
      socket.write(bytes, () => socket.end());
    });
  }

  // ---- HTTP port ----

  private authHeaders(authorization: string | undefined, extra: Record<string, string | null> | undefined): Record<string, string> {
    const headers: Record<string, string> = authorization !== undefined ? { authorization } : {};
    for (const [name, value] of Object.entries(extra ?? {})) {
      if (value === null) delete headers[name];
      else headers[name] = value;
    }
    return headers;
  }

  private async connectUnary(rpc: DescMethod, request: FuzzRequest, authorization: string | undefined, codec: "json" | "proto"): Promise<Outcome> {
    const answer = await this.httpExchange({
      method: "POST",
      path: request.path ?? `/${rpc.parent.typeName}/${rpc.name}`,
      headers: this.authHeaders(authorization, { "content-type": `application/${codec}`, "connect-protocol-version": "1", ...request.headers }),
      body: request.body ?? request.messages[0] ?? new Uint8Array(),
      streaming: false,
    });
    return connectErrorOutcome(answer);
  }

  private async connectStream(rpc: DescMethod, request: FuzzRequest, authorization: string | undefined, codec: "json" | "proto"): Promise<Outcome> {
    const answer = await this.httpExchange({
      method: "POST",
      path: request.path ?? `/${rpc.parent.typeName}/${rpc.name}`,
      headers: this.authHeaders(authorization, { "content-type": `application/connect+${codec}`, "connect-protocol-version": "1", ...request.headers }),
      body: request.body ?? concat(...request.messages.map((message) => envelope(0, message))),
      streaming: rpc.methodKind === "server_streaming",
    });
    const ending = transportEnding(answer);
    if (ending) return ending;
    if (answer.status === 0) return { code: "OPEN", message: "" };
    if (answer.status !== 200) return connectErrorOutcome(answer);
    for (const frame of envelopes(answer.body)) {
      if ((frame.flags & 0x02) === 0) continue;
      const end = parseJson(frame.payload) as { error?: { code?: string; message?: string } } | undefined;
      if (!end) return { code: "BAD_END_STREAM", message: "" };
      return end.error ? { code: connectCode(end.error.code) ?? "UNKNOWN", message: end.error.message ?? "" } : { code: "OK", message: "" };
    }
    return { code: answer.complete ? "NO_END_STREAM" : "OPEN", message: "" };
  }

  private async grpcWeb(rpc: DescMethod, request: FuzzRequest, authorization: string | undefined): Promise<Outcome> {
    const answer = await this.httpExchange({
      method: "POST",
      path: request.path ?? `/${rpc.parent.typeName}/${rpc.name}`,
      headers: this.authHeaders(authorization, { "content-type": "application/grpc-web+proto", "x-grpc-web": "1", ...request.headers }),
      body: request.body ?? concat(...request.messages.map((message) => envelope(0, message))),
      streaming: rpc.methodKind === "server_streaming",
    });
    const ending = transportEnding(answer);
    if (ending) return ending;
    if (answer.status === 0) return { code: "OPEN", message: "" };
    if (answer.headers["grpc-status"] !== undefined) {
      return { code: grpcCodeName(Number(answer.headers["grpc-status"])), message: decodeGrpcMessage(answer.headers["grpc-message"]) };
    }
    for (const frame of envelopes(answer.body)) {
      if ((frame.flags & 0x80) === 0) continue;
      const trailers = Object.fromEntries(
        Buffer.from(frame.payload)
          .toString("latin1")
          .split("\r\n")
          .filter((line) => line.includes(":"))
          .map((line) => [line.slice(0, line.indexOf(":")).trim().toLowerCase(), line.slice(line.indexOf(":") + 1).trim()]),
      );
      return { code: grpcCodeName(Number(trailers["grpc-status"])), message: decodeGrpcMessage(trailers["grpc-message"]) };
    }
    if (answer.status !== 200) return { code: `HTTP_${answer.status}`, message: Buffer.from(answer.body).toString("utf8").slice(0, 200) };
    return { code: answer.complete ? "NO_TRAILERS" : "OPEN", message: "" };
  }

  private async plainGet(request: FuzzRequest, authorization: string | undefined): Promise<Outcome> {
    const answer = await this.httpExchange({
      method: request.httpMethod ?? "GET",
      path: request.path!,
      headers: this.authHeaders(authorization, request.headers),
      body: undefined,
      streaming: true,
    });
    const ending = transportEnding(answer);
    if (ending) return ending;
    if (answer.status === 0) return { code: "OPEN", message: "" };
    const body = parseJson(answer.body) as { message?: string } | undefined;
    return { code: `HTTP_${answer.status}`, message: body?.message ?? "" };
  }

  /**
   * One HTTP/1.1 exchange. A streaming answer is read for the stream window,
   * then the request is destroyed (`complete` false).
   */
  private httpExchange(options: { method: string; path: string; headers: Record<string, string>; body: Uint8Array | undefined; streaming: boolean }): Promise<HttpAnswer> {
    return new Promise<HttpAnswer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let settled = false;
      const request = http.request({
        host: this.options.host,
        port: this.options.httpPort,
        method: options.method,
        path: options.path,
        headers: { ...options.headers, ...(options.body ? { "content-length": String(options.body.length) } : {}) },
        agent: this.agent,
      });
      const timer = setTimeout(
        () => {
          if (settled) return;
          settled = true;
          request.destroy();
          if (response) resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks), complete: false });
          // A server stream may hold its headers until its first message: still open, not silent.
          else if (options.streaming) resolve({ status: 0, headers: {}, body: new Uint8Array(), complete: false });
          else reject(new NoAnswerError(`no answer within ${this.options.callTimeoutMs} ms`));
        },
        options.streaming ? this.options.streamWindowMs : this.options.callTimeoutMs,
      );
      let response: http.IncomingMessage | undefined;
      request.on("response", (incoming) => {
        response = incoming;
        incoming.on("data", (chunk: Buffer) => {
          // Keep the head and the tail of a long answer: the status is in one of them.
          size += chunk.length;
          chunks.push(chunk);
          while (chunks.length > 2 && size > 16 * 1024 * 1024) size -= chunks.splice(1, 1)[0]!.length;
        });
        incoming.on("end", () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve({ status: incoming.statusCode ?? 0, headers: incoming.headers, body: Buffer.concat(chunks), complete: true });
        });
        incoming.on("error", () => undefined);
      });
      request.on("error", (error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (response) resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks), complete: false });
        else reject(error);
      });
      request.end(options.body ? Buffer.from(options.body) : undefined);
    }).catch((error: NodeJS.ErrnoException) => {
      if (error instanceof NoAnswerError) return { status: 0, headers: {}, body: new Uint8Array(), complete: false, noAnswer: error.message };
      // The server answered an oversized body by closing before this side finished writing it.
      if (error.code === "EPIPE" || error.code === "ECONNRESET") return { status: 0, headers: {}, body: new Uint8Array(), complete: false, closed: error.code };
      throw error;
    });
  }
}

class NoAnswerError extends Error {}

interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Uint8Array;
  /** False when the suite stopped reading (a stream's window closed). */
  complete: boolean;
  /** Set when no response came at all within the time allowed. */
  noAnswer?: string;
  /** Set when the server closed the connection before answering (EPIPE, ECONNRESET). */
  closed?: string;
}

/** The Connect error of a non-200 answer (a JSON body with `code`), or its HTTP status. */
function connectErrorOutcome(answer: HttpAnswer): Outcome {
  const ending = transportEnding(answer);
  if (ending) return ending;
  if (answer.status === 200) return { code: "OK", message: "" };
  const body = parseJson(answer.body) as { code?: string; message?: string } | undefined;
  const code = connectCode(body?.code);
  return code ? { code, message: body?.message ?? "" } : { code: `HTTP_${answer.status}`, message: Buffer.from(answer.body).toString("utf8").slice(0, 200) };
}

/** How an exchange ended when it got no HTTP answer to read. */
function transportEnding(answer: HttpAnswer): Outcome | undefined {
  if (answer.noAnswer) return { code: "NO_ANSWER", message: answer.noAnswer };
  if (answer.closed) return { code: "CONN_CLOSED", message: answer.closed };
  return undefined;
}

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch {
    return undefined;
  }
}

/** The enveloped messages of a Connect-stream or gRPC-Web body; a cut last one is dropped. */
function* envelopes(body: Uint8Array): Generator<{ flags: number; payload: Uint8Array }> {
  let offset = 0;
  while (offset + 5 <= body.length) {
    const length = new DataView(body.buffer, body.byteOffset + offset + 1, 4).getUint32(0);
    if (offset + 5 + length > body.length) return;
    yield { flags: body[offset]!, payload: body.subarray(offset + 5, offset + 5 + length) };
    offset += 5 + length;
  }
}
