import assert from "node:assert/strict";
import { once } from "node:events";
import { test } from "node:test";
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { streamV1 } from "@annals/proto";
import { grpcServiceDefinition } from "@annals/runtime";
import { PUBLISH_METHOD, serveBareFanout, type PublishResponse } from "./bare-fanout.js";
import { seqsOfFrame } from "./stream-fanout.js";

function encoded(response: MessageInitShape<typeof streamV1.SubscribeResponseSchema>): Buffer {
  return Buffer.from(toBinary(streamV1.SubscribeResponseSchema, create(streamV1.SubscribeResponseSchema, response)));
}

function event(seq: bigint) {
  // log_id and uuid come before seq (field 2), and the hashes after it: the reader skips and stops as it should.
  return {
    name: "happened",
    entry: { logId: "fanout", seq, uuid: "01a22e54-10ec-755b-85f0-3a969ad06ec2", kind: "evt.t0.happened", body: { case: "payload" as const, value: { n: 1 } }, checksum: "ab".repeat(32) },
  };
}

test("the subscribers read the seq of every event in an event or events frame, and none from a control frame", () => {
  // 1, 300 and 2^40 + 5 take varints of one, two and six bytes.
  for (const seq of [1n, 300n, 2n ** 40n + 5n]) assert.equal(seqsOfFrame(encoded({ frame: { case: "event", value: event(seq) } })), seq);
  assert.deepEqual(seqsOfFrame(encoded({ frame: { case: "events", value: { events: [event(7n), event(128n), event(2n ** 35n)] } } })), [7n, 128n, 2n ** 35n]);
  assert.equal(seqsOfFrame(encoded({ frame: { case: "caughtUp", value: { seq: 9n } } })), 0n);
  assert.equal(seqsOfFrame(encoded({ frame: { case: "heartbeat", value: { lastSeq: 9n, headSeq: 9n } } })), 0n);
});

test("the bare baseline sends each published entry to the streams of its topic, as a Subscribe event frame", async (t) => {
  const port = await new Promise<number>((resolve) => {
    const server = serveBareFanout(resolve);
    t.after(() => server.forceShutdown());
  });
  const Stream = grpc.makeGenericClientConstructor({ subscribe: { ...grpcServiceDefinition(streamV1.StreamService)["subscribe"]!, responseDeserialize: (bytes: Buffer) => bytes } }, "StreamService");
  const streams = new Stream(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as {
    subscribe(request: object): grpc.ClientReadableStream<Buffer>;
    close(): void;
  };
  const publisher = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  t.after(() => (streams.close(), publisher.close()));

  const call = streams.subscribe({ logId: "fanout", kinds: ["evt.t1.>"] });
  t.after(() => call.cancel());
  const frames: streamV1.SubscribeResponse[] = [];
  call.on("data", (bytes: Buffer) => frames.push(fromBinary(streamV1.SubscribeResponseSchema, bytes)));
  call.on("error", () => undefined);
  await once(call, "data");
  assert.equal(frames[0]?.frame.case, "caughtUp");

  // Entries 0-3 over 2 topics: seqs 2 and 4 (entries 1 and 3) are of evt.t1.
  const published = await new Promise<PublishResponse>((resolve, reject) =>
    publisher.makeUnaryRequest(PUBLISH_METHOD.path, PUBLISH_METHOD.requestSerialize, PUBLISH_METHOD.responseDeserialize, { first: 0, count: 4, topics: 2 }, (error, response) =>
      error || !response ? reject(error ?? new Error("no response")) : resolve(response),
    ),
  );
  assert.deepEqual(published, { firstSeq: "1", lastSeq: "4" });
  while (frames.length < 3) await once(call, "data");
  const entries = frames.slice(1).map(({ frame }) => {
    if (frame.case !== "event" || !frame.value.entry) throw new Error(`a ${frame.case} frame where an event was due`);
    return frame.value.entry;
  });
  assert.deepEqual(
    entries.map((entry) => [entry.seq, entry.kind, entry.body.value]),
    [
      [2n, "evt.t1.happened", { n: 1 }],
      [4n, "evt.t1.happened", { n: 3 }],
    ],
  );
  for (const entry of entries) {
    assert.match(entry.checksum, /^[0-9a-f]{64}$/);
    assert.match(entry.prevChecksum, /^[0-9a-f]{64}$/);
    assert.match(entry.payloadDigest, /^[0-9a-f]{64}$/);
    assert.equal(entry.chainLogId, "fanout");
  }
});
