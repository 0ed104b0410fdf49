// framedWriter against a real grpc-js server and client: it finds the HTTP/2
// stream under the pinned grpc-js's calls (if a grpc-js upgrade moves it,
// this fails rather than every stream silently taking the slower path),
// several messages written at once arrive as separate messages in order,
// grpc-js's status and trailers follow them, and the send limit holds.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { Code, ConnectError } from "@connectrpc/connect";
import { framedWriter } from "./grpc-framed-writer.js";

const bytes = (value: Buffer) => value;
const definition = {
  stream: {
    path: "/test.Framed/Stream",
    requestStream: false,
    responseStream: true,
    requestSerialize: bytes,
    requestDeserialize: bytes,
    responseSerialize: bytes,
    responseDeserialize: bytes,
  },
  chat: {
    path: "/test.Framed/Chat",
    requestStream: true,
    responseStream: true,
    requestSerialize: bytes,
    requestDeserialize: bytes,
    responseSerialize: bytes,
    responseDeserialize: bytes,
  },
} satisfies grpc.ServiceDefinition;

type Handler = (call: grpc.ServerWritableStream<Buffer, Buffer>) => Promise<void>;

describe("framedWriter", () => {
  let server: grpc.Server;
  let client: { stream(request: Buffer): grpc.ClientReadableStream<Buffer>; chat(): grpc.ClientDuplexStream<Buffer, Buffer>; close(): void };
  let handler: Handler;

  before(async () => {
    server = new grpc.Server({ "grpc.max_send_message_length": 65_536 });
    server.addService(definition, {
      stream: (call: grpc.ServerWritableStream<Buffer, Buffer>) => void handler(call),
      chat: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        const writer = framedWriter(call);
        call.on("data", () => undefined);
        call.on("end", () => {
          assert.ok(writer, "a bidi call has the HTTP/2 stream too");
          writer.write([Buffer.from("pong")]);
          call.end();
        });
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
    );
    const Client = grpc.makeGenericClientConstructor(definition, "Framed");
    client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as typeof client;
  });

  after(() => {
    client?.close();
    server?.forceShutdown();
  });

  /** The messages and the status of one call of Stream. */
  function receive(): Promise<{ messages: string[]; status: grpc.StatusObject }> {
    return new Promise((resolve) => {
      const messages: string[] = [];
      const call = client.stream(Buffer.alloc(0));
      call.on("data", (message: Buffer) => messages.push(message.toString()));
      call.on("error", () => undefined);
      call.on("status", (status: grpc.StatusObject) => resolve({ messages, status }));
    });
  }

  test("messages written together arrive one by one, in order, then the status and trailers grpc-js sends", async () => {
    handler = async (call) => {
      const writer = framedWriter(call);
      assert.ok(writer, "the HTTP/2 stream under a grpc-js 1.14 server stream is found");
      writer.write([Buffer.from("one"), Buffer.from(""), Buffer.from("three")]);
      writer.write([Buffer.from("four")]);
      const trailers = new grpc.Metadata();
      trailers.set("x-done", "yes");
      call.end(trailers);
    };
    const { messages, status } = await receive();
    assert.deepEqual(messages, ["one", "", "three", "four"]);
    assert.equal(status.code, grpc.status.OK);
    assert.deepEqual(status.metadata.get("x-done"), ["yes"]);
  });

  test("when the stream's buffer is full write() says so, and drained() resumes once the client has read", async () => {
    let sawFull = false;
    const count = 2000;
    handler = async (call) => {
      const writer = framedWriter(call)!;
      const controller = new AbortController();
      for (let n = 0; n < count; n++) {
        if (!writer.write([Buffer.alloc(1000, n % 256)])) {
          sawFull = true;
          await writer.drained(controller.signal);
        }
      }
      call.end();
    };
    const { messages, status } = await receive();
    assert.equal(status.code, grpc.status.OK);
    assert.equal(messages.length, count);
    assert.ok(sawFull, "2 MB written at once fills the stream's buffer");
  });

  for (const [size, most] of [
    [300, "the stream's buffer is full"],
    [30_000, "16 of them are queued (a federation frame of 100 entries is about this size)"],
  ] as const) {
    test(`messages of ${size} bytes: write() says to wait once ${most}`, async () => {
      let accepted = 0;
      let buffer = 0;
      handler = async (call) => {
        const writer = framedWriter(call)!;
        // The HTTP/2 stream's buffer: 16 KB on Node 20, 64 KB on Node 22.
        buffer = (call as unknown as { call: { stream: { writableHighWaterMark: number } } }).call.stream.writableHighWaterMark;
        // Written in one go, so the client cannot take any of it in between.
        while (writer.write([Buffer.alloc(size)])) accepted++;
        call.end();
      };
      const { messages } = await receive();
      // With the 5-byte prefix of each message.
      const expected = Math.floor(Math.max(buffer, 16 * (size + 5)) / (size + 5)) - 1;
      assert.ok(Math.abs(accepted - expected) <= 2, `${accepted} messages went before the writer asked to wait; about ${expected} expected`);
      assert.equal(messages.length, accepted + 1);
    });
  }

  test("a message over the send limit is RESOURCE_EXHAUSTED and nothing of its run is written", async () => {
    handler = async (call) => {
      const writer = framedWriter(call)!;
      writer.write([Buffer.from("before")]);
      assert.throws(
        () => writer.write([Buffer.from("fits"), Buffer.alloc(65_537)]),
        (error: unknown) => error instanceof ConnectError && error.code === Code.ResourceExhausted,
      );
      call.emit("error", { code: grpc.status.RESOURCE_EXHAUSTED, details: "too large" });
    };
    const { messages, status } = await receive();
    assert.deepEqual(messages, ["before"]);
    assert.equal(status.code, grpc.status.RESOURCE_EXHAUSTED);
  });

  test("after grpc-js has ended the call, writes are dropped: no error reaches the stream", async () => {
    let afterEnd: boolean | undefined;
    handler = async (call) => {
      const writer = framedWriter(call)!;
      writer.write([Buffer.from("only")]);
      // What a deadline does: grpc-js sends the status and ends the HTTP/2 stream.
      call.emit("error", { code: grpc.status.DEADLINE_EXCEEDED, details: "deadline" });
      await new Promise((resolve) => setImmediate(resolve));
      afterEnd = writer.write([Buffer.from("late")]);
    };
    const { messages, status } = await receive();
    assert.deepEqual(messages, ["only"]);
    assert.equal(status.code, grpc.status.DEADLINE_EXCEEDED);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(afterEnd, true);
  });

  test("a bidi call's responses go the same way", async () => {
    const messages = await new Promise<string[]>((resolve, reject) => {
      const received: string[] = [];
      const call = client.chat();
      call.on("data", (message: Buffer) => received.push(message.toString()));
      call.on("error", reject);
      call.on("end", () => resolve(received));
      call.end(Buffer.from("ping"));
    });
    assert.deepEqual(messages, ["pong"]);
  });
});
