import { once } from "node:events";
import type { ServerHttp2Stream } from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Writes a server stream's messages straight to the HTTP/2 stream under a
 * grpc-js call, as gRPC length-prefixed messages, several in one write.
 *
 * grpc-js takes each message through an object-mode Writable, its
 * sendMessage (which copies it behind a 5-byte prefix) and then the HTTP/2
 * stream's own Writable: in a profile of the stream service at 50k
 * deliveries/s that path was about half of its busy time (bench
 * stream-fanout). Here a message costs one copy and a run of messages (a
 * ResponseGroup) one write. grpc-js still sends the headers and, when the
 * call ends, the status: both go through the same HTTP/2 stream, after what
 * was written here.
 *
 * It relies on grpc-js's BaseServerInterceptingCall (1.14: the `call` of a
 * server stream with no server interceptors); when that is not what it
 * finds, framedWriter returns undefined and the caller writes through
 * grpc-js (grpc-framed-writer.test.ts checks it is found).
 */
export interface FramedWriter {
  /**
   * Writes the encodings as gRPC messages, in order, in one write. False
   * when the client is behind: wait for drained() before writing more.
   * A message over the send limit is RESOURCE_EXHAUSTED (as grpc-js says it), and none is written.
   */
  write(encodings: readonly Uint8Array[]): boolean;
  /** Resolves when the client has taken what was written (or the signal aborts). */
  drained(signal: AbortSignal): Promise<void>;
}

/** Messages of the size being written that may wait in the stream's buffer before the writer waits (grpc-js's queue holds 16). */
const QUEUED_MESSAGES = 16;

/** What is used of grpc-js's BaseServerInterceptingCall. */
interface BaseCall {
  stream: ServerHttp2Stream;
  maxSendMessageSize: number;
  maybeSendMetadata(): void;
  callEventTracker?: { addMessageSent(): void } | null;
}

function isBaseCall(value: unknown): value is BaseCall {
  const call = value as Partial<BaseCall> | undefined;
  return (
    typeof call === "object" &&
    call !== null &&
    typeof call.maybeSendMetadata === "function" &&
    typeof call.maxSendMessageSize === "number" &&
    typeof call.stream?.write === "function" &&
    typeof call.stream?.respond === "function"
  );
}

/** A writer for this grpc-js server stream (ServerWritableStream or ServerDuplexStream), or undefined. */
export function framedWriter(call: object): FramedWriter | undefined {
  const base = (call as { call?: unknown }).call;
  if (!isBaseCall(base)) return undefined;
  const { stream } = base;
  const limit = base.maxSendMessageSize;
  const ended = () => stream.writableEnded || stream.destroyed || stream.closed;
  return {
    write(encodings) {
      let length = 0;
      for (const encoding of encodings) {
        if (limit !== -1 && encoding.byteLength > limit) {
          throw new ConnectError(`Sent message larger than max (${encoding.byteLength} vs. ${limit})`, Code.ResourceExhausted);
        }
        length += 5 + encoding.byteLength;
      }
      // Once grpc-js has ended the call (a deadline, a cancel) nothing more is written: a write
      // after the end would be an 'error' event on the stream, past the one grpc-js listens for.
      if (ended()) return true;
      base.maybeSendMetadata();
      const frames = Buffer.allocUnsafe(length);
      let at = 0;
      for (const encoding of encodings) {
        // Not compressed (flag 0), then the length, then the message.
        frames[at] = 0;
        frames.writeUInt32BE(encoding.byteLength, at + 1);
        frames.set(encoding, at + 5);
        at += 5 + encoding.byteLength;
        base.callEventTracker?.addMessageSent();
      }
      // A write to a stream the client reset fails there; grpc-js sees the reset and ends the call.
      stream.write(frames, () => undefined);
      // Room for 16 messages of this size (what grpc-js's own queue holds), and at least the stream's
      // buffer (16 KB on Node 20, 64 KB on Node 22): waiting for the client after each large message
      // (a federation frame of 100 entries is ~30 KB) left the connection idle while the next one was made.
      return stream.writableLength < Math.max(stream.writableHighWaterMark, (QUEUED_MESSAGES * length) / encodings.length);
    },
    async drained(signal) {
      if (ended()) return;
      await once(stream, "drain", { signal }).catch(() => undefined);
    },
  };
}
