import { createContextKey } from "@connectrpc/connect";

/**
 * Several messages of a server stream handed over in one step: a fan-out
 * whose subscriber has many frames queued gives them all at once, so that
 * they cost one step of the handler's iterator, the pipeline and the
 * listener instead of one each (bench stream-fanout). The gRPC listener
 * writes them in one write (grpc-framed-writer.ts), then waits for the client
 * once; the other listeners get them one by one from the pipeline.
 */
export class ResponseGroup<T extends object = object> {
  constructor(readonly messages: readonly T[]) {}
}

/**
 * A server-streaming handler's responses, some of them grouped, as the
 * handler's declared type (its messages one by one) sees them: every handler
 * runs under the pipeline, which passes groups to the gRPC listener only and
 * takes them apart for the others.
 */
export function groupedResponses<T extends object>(responses: AsyncIterable<T | ResponseGroup<T>>): AsyncIterable<T> {
  return responses as AsyncIterable<T>;
}

/**
 * Where a server stream's messages can be written as they are made, with no
 * step of an iterator per message: the gRPC listener offers one when it
 * writes below grpc-js (grpc-framed-writer.ts), and a handler whose
 * responses are PushableResponses writes to it (the stream service's
 * subscribers, bench stream-fanout).
 */
export interface ResponseSink {
  /**
   * Writes the messages in order. False when the client is behind: write
   * more only once drained() resolves. Throws RESOURCE_EXHAUSTED, writing
   * none of them, when one is over the send limit.
   */
  write(messages: readonly object[]): boolean;
  /** Resolves when the client has taken what was written, or the call ended. */
  drained(): Promise<void>;
}

/** The method of PushableResponses that writes them to a sink. */
export const pushResponses = Symbol("annals.pushResponses");

/**
 * A server stream's responses that the pipeline either iterates or, where the
 * listener offers a ResponseSink, has write themselves to it: one or the
 * other, once.
 */
export interface PushableResponses<T extends object> extends AsyncIterable<T | ResponseGroup<T>> {
  /** Writes every response to the sink as it is made; settles when the stream ends, rejecting with its failure. */
  [pushResponses](sink: ResponseSink): Promise<void>;
}

export function isPushable(responses: unknown): responses is PushableResponses<object> {
  return typeof (responses as Partial<PushableResponses<object>> | undefined)?.[pushResponses] === "function";
}

/** The listener's sink for the current call's responses, when it offers one (set before the pipeline runs). */
export const responseSinkKey = createContextKey<ResponseSink | undefined>(undefined, { description: "annals response sink" });
