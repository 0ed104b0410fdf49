// The baseline of bench stream-fanout: plain grpc-js serving the same
// Subscribe streams, with nothing between a published entry and the writes
// but a map from topic to streams. Each entry is encoded once, as an `event`
// frame of the same shape and size as the stream service's, and written to
// every matching stream with call.write (grpc-js's own path, its serializer
// given the bytes). The entry's fields are those the log service gives the
// bench's entries, their hashes random hex. No log, no database, no flow control of its own: a stream
// that falls behind is buffered without bound. It measures what the
// transport, the subscribers' grpc-js clients and this machine allow.
import { randomBytes, randomUUID } from "node:crypto";
import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { streamV1 } from "@annals/proto";
import { grpcServiceDefinition } from "@annals/runtime";

/** The producer's method: a JSON PublishRequest in, a JSON PublishResponse out. */
export const PUBLISH_METHOD: grpc.MethodDefinition<PublishRequest, PublishResponse> = {
  path: "/annals.bench.BareFanout/Publish",
  requestStream: false,
  responseStream: false,
  requestSerialize: (value) => Buffer.from(JSON.stringify(value)),
  requestDeserialize: (bytes) => JSON.parse(bytes.toString()) as PublishRequest,
  responseSerialize: (value) => Buffer.from(JSON.stringify(value)),
  responseDeserialize: (bytes) => JSON.parse(bytes.toString()) as PublishResponse,
};

/** Entries `first` … `first + count - 1` of a run, entry i of kind `evt.t{i mod topics}.happened`. */
export interface PublishRequest {
  first: number;
  count: number;
  topics: number;
}

/** The seqs given to the entries, as decimal strings: the first and the last. */
export interface PublishResponse {
  firstSeq: string;
  lastSeq: string;
}

const hex = (bytes: number) => randomBytes(bytes).toString("hex");

/** Serves Subscribe (one `evt.tN.>` pattern per stream) and Publish; calls `listening` with the port. Returns the server. */
export function serveBareFanout(listening: (port: number) => void): grpc.Server {
  const streams = new Map<string, Set<grpc.ServerWritableStream<streamV1.SubscribeRequest, Buffer>>>();
  let seq = 0n;
  let prevChecksum = hex(32);
  const subscribeDefinition = grpcServiceDefinition(streamV1.StreamService)["subscribe"]! as grpc.MethodDefinition<streamV1.SubscribeRequest, Buffer>;
  const server = new grpc.Server();
  server.addService(
    { subscribe: { ...subscribeDefinition, responseSerialize: (bytes: Buffer) => bytes } },
    {
      subscribe: (call: grpc.ServerWritableStream<streamV1.SubscribeRequest, Buffer>) => {
        // The bench's patterns are `evt.tN.>`: the entries of kind evt.tN.happened.
        const topic = call.request.kinds[0]!.slice(0, -2);
        let set = streams.get(topic);
        if (!set) streams.set(topic, (set = new Set()));
        set.add(call);
        call.on("cancelled", () => set.delete(call));
        call.write(Buffer.from(toBinary(streamV1.SubscribeResponseSchema, create(streamV1.SubscribeResponseSchema, { frame: { case: "caughtUp", value: { seq } } }))));
      },
    },
  );
  server.addService({ publish: PUBLISH_METHOD }, {
    publish: (call: grpc.ServerUnaryCall<PublishRequest, PublishResponse>, callback: grpc.sendUnaryData<PublishResponse>) => {
      const { first, count, topics } = call.request;
      const firstSeq = seq + 1n;
      for (let i = first; i < first + count; i++) {
        seq++;
        const topic = `evt.t${i % topics}`;
        const checksum = hex(32);
        const frame = create(streamV1.SubscribeResponseSchema, {
          frame: {
            case: "event",
            value: {
              name: "happened",
              entry: {
                logId: "fanout",
                seq,
                uuid: randomUUID(),
                kind: `${topic}.happened`,
                body: { case: "payload", value: { n: i } },
                wallTimeUs: BigInt(Date.now()) * 1000n,
                payloadDigest: hex(32),
                prevChecksum,
                checksum,
                chainLogId: "fanout",
              },
            },
          },
        });
        prevChecksum = checksum;
        const bytes = Buffer.from(toBinary(streamV1.SubscribeResponseSchema, frame));
        for (const stream of streams.get(topic) ?? []) stream.write(bytes);
      }
      callback(null, { firstSeq: String(firstSeq), lastSeq: String(seq) });
    },
  });
  server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) => {
    if (error) throw error;
    listening(port);
  });
  return server;
}
