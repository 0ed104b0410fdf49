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
