import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { SignJWT } from "jose";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { diagV1, healthV1, logV1, rpcDetails } from "@annals/proto";
import { AUTHENTICATED, signDevToken } from "./auth.js";
import { errorReason } from "./errors.js";
import { defineService } from "./service.js";
import { groupedResponses, pushResponses, ResponseGroup, type PushableResponses, type ResponseSink } from "./response-group.js";
import { encodingOf, grpcServiceDefinition, shareEncoding } from "./grpc-mount.js";
import { diagRegistration } from "./diag-service.js";
import { startServer, type RunningServer } from "./server.js";
import { createTelemetry } from "./telemetry.js";
import { createLogger } from "./logger.js";
import { grpcJsHealthCheck, grpcJsReflectionServices } from "./testing.js";

const SECRET = "test-secret-that-is-at-least-32-bytes-long";
const protoRoot = fileURLToPath(new URL("../../../proto", import.meta.url));

// DiagService with roles, so that authorisation has something to refuse.
const guardedDiag = defineService({
  service: diagV1.DiagService,
  impl: diagRegistration.impl,
  access: { ping: "diag.ping", ticks: "diag.ping", upload: "diag.ping", echo: "diag.ping" },
});

const spans = new InMemorySpanExporter();
let server: RunningServer;
let pingToken: string;
let otherToken: string;

before(async () => {
  const telemetry = createTelemetry({ serviceName: "runtime-test", spanProcessors: [new SimpleSpanProcessor(spans)] });
  server = await startServer({
    name: "runtime-test",
    services: [guardedDiag],
    diag: false,
    grpcPort: 0,
    httpPort: 0,
    auth: { mode: "jwt", secret: SECRET },
    shutdownGraceMs: 3000,
    logger: createLogger({ name: "runtime-test", level: "silent" }),
    telemetry,
  });
  pingToken = await signDevToken({ secret: SECRET, subject: "alice", roles: ["diag.ping"] });
  otherToken = await signDevToken({ secret: SECRET, subject: "bob", roles: ["kv.read"] });
});

after(async () => {
  await server.shutdown("tests done");
});

function connectClient(token?: string) {
  const transport = createGrpcTransport({
    baseUrl: `http://127.0.0.1:${server.grpcPort}`,
    interceptors: token ? [(next) => (req) => (req.header.set("authorization", `Bearer ${token}`), next(req))] : [],
  });
  return createClient(diagV1.DiagService, transport);
}

async function pingOverHttp(token?: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`http://127.0.0.1:${server.httpPort}/annals.diag.v1.DiagService/Ping`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ data: Buffer.from("hello").toString("base64") }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function codeOf(promise: Promise<unknown>): Promise<Code | "OK"> {
  try {
    await promise;
    return "OK";
  } catch (error) {
    return ConnectError.from(error).code;
  }
}

describe("one handler on both listeners", () => {
  test("Ping answers the same over gRPC (connect-es) and Connect JSON (fetch)", async () => {
    const overGrpc = await connectClient(pingToken).ping({ data: Buffer.from("hello") });
    const overHttp = await pingOverHttp(pingToken);
    assert.equal(Buffer.from(overGrpc.data).toString(), "hello");
    assert.equal(overHttp.status, 200);
    assert.equal(Buffer.from(overHttp.body["data"] as string, "base64").toString(), "hello");
  });

  test("auth decisions are the same on both listeners", async () => {
    assert.equal(await codeOf(connectClient().ping({})), Code.Unauthenticated);
    assert.equal(await codeOf(connectClient("not-a-jwt").ping({})), Code.Unauthenticated);
    assert.equal(await codeOf(connectClient(otherToken).ping({})), Code.PermissionDenied);
    assert.equal(await codeOf(connectClient(pingToken).ping({})), "OK");
    const expired = await signDevToken({ secret: SECRET, subject: "carol", roles: ["diag.ping"], expiresIn: -60 });
    assert.equal(await codeOf(connectClient(expired).ping({})), Code.Unauthenticated);
    const forged = await signDevToken({ secret: `${SECRET}-other`, subject: "mallory", roles: ["admin"] });
    assert.equal(await codeOf(connectClient(forged).ping({})), Code.Unauthenticated);
    // A token without exp would never expire, and one issued in the future is not one to trust; a clock
    // a few seconds off is tolerated (60 s by default).
    const now = Math.floor(Date.now() / 1000);
    const sign = (claims: { iat?: number; exp?: number }) => {
      let jwt = new SignJWT({ roles: ["diag.ping"] }).setProtectedHeader({ alg: "HS256" }).setSubject("dave");
      if (claims.iat !== undefined) jwt = jwt.setIssuedAt(claims.iat);
      if (claims.exp !== undefined) jwt = jwt.setExpirationTime(claims.exp);
      return jwt.sign(new TextEncoder().encode(SECRET));
    };
    const noExpiry = await codeOf(connectClient(await sign({ iat: now })).ping({}));
    assert.equal(noExpiry, Code.Unauthenticated, "a token without exp");
    assert.equal(await codeOf(connectClient(await sign({ iat: now + 600, exp: now + 3600 })).ping({})), Code.Unauthenticated, "iat 10 minutes ahead");
    assert.equal(await codeOf(connectClient(await sign({ iat: now + 30, exp: now + 3600 })).ping({})), "OK", "iat 30 s ahead is within the skew");
    assert.equal(await codeOf(connectClient(await sign({ iat: now - 3600, exp: now - 30 })).ping({})), "OK", "expired 30 s ago is within the skew");

    assert.equal((await pingOverHttp()).status, 401);
    assert.equal((await pingOverHttp()).body["code"], "unauthenticated");
    assert.equal((await pingOverHttp(otherToken)).status, 403);
    assert.equal((await pingOverHttp(otherToken)).body["code"], "permission_denied");
    assert.equal((await pingOverHttp(pingToken)).status, 200);
  });

  test("errors carry ErrorInfo and BadRequest details on both listeners", async () => {
    const stream = connectClient(pingToken).ticks({ count: 1, intervalMs: 70_000n });
    const error = await (async () => {
      try {
        for await (const _ of stream) assert.fail("no tick expected");
      } catch (caught) {
        return ConnectError.from(caught);
      }
      assert.fail("expected an error");
    })();
    assert.equal(error.code, Code.InvalidArgument);
    assert.match(error.rawMessage, /^interval_ms: /);
    assert.equal(error.findDetails(rpcDetails.ErrorInfoSchema)[0]?.metadata["field"], "interval_ms");
    assert.equal(error.findDetails(rpcDetails.BadRequestSchema)[0]?.fieldViolations[0]?.field, "interval_ms");
  });
});

describe("an independent @grpc/grpc-js client", () => {
  const definition = protoLoader.loadSync("annals/diag/v1/diag_service.proto", { includeDirs: [protoRoot], longs: String });
  const Diag = (grpc.loadPackageDefinition(definition) as any).annals.diag.v1.DiagService;
  let client: any;
  const metadata = () => {
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${pingToken}`);
    return md;
  };
  before(() => {
    client = new Diag(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
  });
  after(() => client.close());

  test("unary, server, client and bidirectional streaming all work", async () => {
    const ping = await new Promise<any>((resolve, reject) =>
      client.Ping({ data: Buffer.from("x") }, metadata(), (error: Error | null, response: any) => (error ? reject(error) : resolve(response))),
    );
    assert.equal(Buffer.from(ping.data).toString(), "x");

    const ticks: string[] = [];
    for await (const tick of client.Ticks({ count: 3, intervalMs: 1 }, metadata())) ticks.push(tick.number);
    assert.deepEqual(ticks, ["1", "2", "3"]);

    const upload = await new Promise<any>((resolve, reject) => {
      const call = client.Upload(metadata(), (error: Error | null, response: any) => (error ? reject(error) : resolve(response)));
      for (let i = 0; i < 5; i++) call.write({ data: Buffer.alloc(10) });
      call.end();
    });
    assert.deepEqual({ chunks: upload.chunks, bytes: upload.bytes }, { chunks: "5", bytes: "50" });

    const echo = client.Echo(metadata());
    const echoed: string[] = [];
    const done = (async () => {
      for await (const message of echo) echoed.push(Buffer.from(message.data).toString());
    })();
    for (const word of ["a", "b", "c"]) echo.write({ data: Buffer.from(word) });
    echo.end();
    await done;
    assert.deepEqual(echoed, ["a", "b", "c"]);
  });

  test("a client that cancels a stream cancels the handler (status CANCELLED, nothing left running)", async () => {
    const call = client.Ticks({ count: 0, intervalMs: 20 }, metadata());
    call.on("error", () => undefined);
    let ticks = 0;
    await new Promise<void>((resolve) =>
      call.on("data", () => {
        if (++ticks === 2) resolve();
      }),
    );
    call.cancel();
    const cancelled = /annals_rpc_server_duration_seconds_count\{[^}]*rpc_method="Ticks"[^}]*listener="grpc"[^}]*rpc_grpc_status_code="Canceled"[^}]*\} 1/;
    const idle = /annals_rpc_server_active\{[^}]*rpc_method="Ticks"[^}]*listener="grpc"[^}]*\} 0/;
    let text = "";
    for (let attempt = 0; attempt < 100 && !(cancelled.test(text) && idle.test(text)); attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      text = await (await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).text();
    }
    assert.match(text, cancelled);
    assert.match(text, idle);
  });

  test("errors arrive as a gRPC status with grpc-status-details-bin", async () => {
    const error = await new Promise<grpc.ServiceError>((resolve) => {
      const call = client.Ticks({ count: 1, intervalMs: 70_000 }, metadata());
      call.on("data", () => assert.fail("no tick expected"));
      call.on("error", resolve);
    });
    assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
    assert.equal(error.metadata.get("grpc-status-details-bin").length, 1);
  });

  test("health answers without a token and reflection is served", async () => {
    const health = createClient(healthV1.Health, createGrpcTransport({ baseUrl: `http://127.0.0.1:${server.grpcPort}` }));
    const whole = await health.check({ service: "" });
    assert.equal(whole.status, healthV1.HealthCheckResponse_ServingStatus.SERVING);
    const diag = await health.check({ service: "annals.diag.v1.DiagService" });
    assert.equal(diag.status, healthV1.HealthCheckResponse_ServingStatus.SERVING);
    for (const version of ["v1", "v1alpha"] as const) {
      const listed = await grpcJsReflectionServices(`127.0.0.1:${server.grpcPort}`, version);
      assert.ok(listed.includes("annals.diag.v1.DiagService"), `${version} lists DiagService: ${listed}`);
      assert.ok(listed.includes("grpc.health.v1.Health"), `${version} lists Health: ${listed}`);
    }
  });
});

test("Health/Check of a 512 KiB service name is NOT_FOUND with a clipped message, not a protocol error (fuzz seed 14, case #1431)", async () => {
  const error = await grpcJsHealthCheck(`127.0.0.1:${server.grpcPort}`, "x".repeat(512 * 1024)).then(
    () => assert.fail("a service nobody registered is not SERVING"),
    (caught: grpc.ServiceError) => caught,
  );
  assert.equal(error.code, grpc.status.NOT_FOUND, error.message);
  assert.ok(error.details.length < 1024, `details of ${error.details.length} characters`);
});

describe("telemetry", () => {
  test("a traceparent from the caller becomes the parent of the server span", async () => {
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const transport = createGrpcTransport({
      baseUrl: `http://127.0.0.1:${server.grpcPort}`,
      interceptors: [
        (next) => (req) => {
          req.header.set("authorization", `Bearer ${pingToken}`);
          req.header.set("traceparent", `00-${traceId}-00f067aa0ba902b7-01`);
          return next(req);
        },
      ],
    });
    await createClient(diagV1.DiagService, transport).ping({});
    const span = spans.getFinishedSpans().find((candidate) => candidate.spanContext().traceId === traceId);
    assert.ok(span, "a server span with the caller's trace id");
    assert.equal(span.name, "annals.diag.v1.DiagService/Ping");
    assert.equal(span.parentSpanContext?.spanId, "00f067aa0ba902b7");
  });

  test("/metrics counts calls by method and status code", async () => {
    await codeOf(connectClient().ping({}));
    const text = await (await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).text();
    assert.ok(/annals_rpc_server_duration_seconds_count\{[^}]*rpc_method="Ping"[^}]*rpc_grpc_status_code="Unauthenticated"[^}]*\} [1-9]/.test(text), "calls counted by code");
    assert.ok(/annals_rpc_server_duration_seconds_bucket\{/.test(text), "latency histogram in seconds");
  });
});

describe("limits", () => {
  test("a message over the size limit is refused with RESOURCE_EXHAUSTED", async () => {
    const code = await codeOf(connectClient(pingToken).ping({ data: new Uint8Array(5 * 1024 * 1024) }));
    assert.equal(code, Code.ResourceExhausted);
  });
});

test("the gRPC listener's serialiser takes what handlers return: a message, or a plain object with fields left out", () => {
  const read = grpcServiceDefinition(logV1.LogService)["read"]!;
  const message = create(logV1.ReadResponseSchema, { nextPageToken: "next" });
  // An init shape: no $typeName, and `entries` (repeated) left out.
  const plain = { nextPageToken: "next" } as unknown as logV1.ReadResponse;
  const fromMessage = read.responseSerialize(message);
  const fromPlain = read.responseSerialize(plain);
  assert.deepEqual(fromPlain, fromMessage);
  const decoded = fromBinary(logV1.ReadResponseSchema, fromPlain);
  assert.equal(decoded.nextPageToken, "next");
  assert.deepEqual(decoded.entries, []);
});

test("a shared response is encoded once; one with its own encoder is sent as that encoder makes it, and encodingOf gives the bytes the listener sends", () => {
  const read = grpcServiceDefinition(logV1.LogService)["read"]!;
  const shared = shareEncoding({ nextPageToken: "shared" } as unknown as logV1.ReadResponse);
  const first = read.responseSerialize(shared);
  assert.equal(read.responseSerialize(shared), first, "the same bytes, not encoded again");
  assert.equal(encodingOf(shared, logV1.ReadResponseSchema), first);
  let encodes = 0;
  const spliced = create(logV1.ReadResponseSchema, { nextPageToken: "spliced" });
  const made = shareEncoding({ nextPageToken: "as the object says" } as unknown as logV1.ReadResponse, () => {
    encodes++;
    return toBinary(logV1.ReadResponseSchema, spliced);
  });
  assert.equal(encodes, 0, "made only when the gRPC listener writes it");
  assert.equal(fromBinary(logV1.ReadResponseSchema, read.responseSerialize(made)).nextPageToken, "spliced");
  read.responseSerialize(made);
  assert.equal(encodes, 1);
  // Not shared: encoded each time, as before.
  const plain = { nextPageToken: "plain" } as unknown as logV1.ReadResponse;
  assert.notEqual(read.responseSerialize(plain), read.responseSerialize(plain));
});

test("a draining server ends a server stream whose handler waits on something else than its signal, with UNAVAILABLE (SHUTTING_DOWN)", async () => {
  let started!: () => void;
  const streaming = new Promise<void>((resolve) => (started = resolve));
  const stuck = defineService({
    service: diagV1.DiagService,
    access: { ping: AUTHENTICATED, ticks: AUTHENTICATED, upload: AUTHENTICATED, echo: AUTHENTICATED },
    impl: {
      // One tick, then a wait that ignores the call's signal: only the drain can end the call.
      async *ticks() {
        yield { number: 1n };
        started();
        await new Promise(() => undefined);
      },
    },
  });
  const stuckServer = await startServer({
    name: "drain-test",
    services: [stuck],
    diag: false,
    grpcPort: 0,
    httpPort: 0,
    auth: { mode: "off" },
    shutdownGraceMs: 60_000,
    logger: createLogger({ name: "drain-test", level: "silent" }),
  });
  const client = createClient(diagV1.DiagService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${stuckServer.grpcPort}` }));
  const ticks: bigint[] = [];
  const ended = (async () => {
    try {
      for await (const tick of client.ticks({ count: 0 })) ticks.push(tick.number);
      return undefined;
    } catch (error) {
      return ConnectError.from(error);
    }
  })();
  await streaming;
  const shutdown = stuckServer.shutdown("test done");
  const error = await ended;
  await shutdown;
  assert.deepEqual(ticks, [1n]);
  assert.equal(error?.code, Code.Unavailable);
  assert.equal(errorReason(error), "SHUTTING_DOWN");
});

test("a server stream's ResponseGroup reaches a gRPC client and a Connect client as its messages, in order", async () => {
  const grouping = defineService({
    service: diagV1.DiagService,
    access: { ping: AUTHENTICATED, ticks: AUTHENTICATED, upload: AUTHENTICATED, echo: AUTHENTICATED },
    impl: {
      ticks: () =>
        groupedResponses(
          (async function* () {
            yield new ResponseGroup([{ number: 1n }, { number: 2n }, { number: 3n }]);
            yield { number: 4n };
          })(),
        ),
    },
  });
  const groupServer = await startServer({
    name: "group-test",
    services: [grouping],
    diag: false,
    grpcPort: 0,
    httpPort: 0,
    auth: { mode: "off" },
    logger: createLogger({ name: "group-test", level: "silent" }),
  });
  try {
    const transports = [createGrpcTransport({ baseUrl: `http://127.0.0.1:${groupServer.grpcPort}` }), createConnectTransport({ baseUrl: `http://127.0.0.1:${groupServer.httpPort}`, httpVersion: "1.1" })];
    for (const transport of transports) {
      const ticks: bigint[] = [];
      for await (const tick of createClient(diagV1.DiagService, transport).ticks({ count: 0 })) ticks.push(tick.number);
      assert.deepEqual(ticks, [1n, 2n, 3n, 4n]);
    }
  } finally {
    await groupServer.shutdown("test done");
  }
});

describe("responses that write themselves (PushableResponses)", () => {
  /** A Ticks handler whose responses are pushable: `push` writes them when the listener offers a sink; iterated, they are 1…4. */
  async function serverWith(push: (sink: ResponseSink, signal: AbortSignal) => Promise<void>, used: string[]) {
    const service = defineService({
      service: diagV1.DiagService,
      access: { ping: AUTHENTICATED, ticks: AUTHENTICATED, upload: AUTHENTICATED, echo: AUTHENTICATED },
      impl: {
        ticks: (_request, context) => {
          const responses: PushableResponses<diagV1.TicksResponse> = {
            async *[Symbol.asyncIterator]() {
              used.push("iterated");
              for (let number = 1n; number <= 4n; number++) yield create(diagV1.TicksResponseSchema, { number });
            },
            [pushResponses](sink) {
              used.push("pushed");
              return push(sink, context.signal);
            },
          };
          return groupedResponses(responses);
        },
      },
    });
    return startServer({ name: "push-test", services: [service], diag: false, grpcPort: 0, httpPort: 0, auth: { mode: "off" }, logger: createLogger({ name: "push-test", level: "silent" }) });
  }

  async function ticksOf(transport: ReturnType<typeof createGrpcTransport>): Promise<{ ticks: bigint[]; error?: ConnectError }> {
    const ticks: bigint[] = [];
    try {
      for await (const tick of createClient(diagV1.DiagService, transport).ticks({ count: 0 })) ticks.push(tick.number);
      return { ticks };
    } catch (error) {
      return { ticks, error: ConnectError.from(error) };
    }
  }

  test("are written to the gRPC listener's sink, several in one write, waiting when it is full; the Connect listener iterates them", async () => {
    const used: string[] = [];
    const fullAt: boolean[] = [];
    const server = await serverWith(async (sink) => {
      fullAt.push(sink.write([{ number: 1n }, { number: 2n }, { number: 3n }]));
      // One by one until the stream's buffer (16 KB on Node 20) is full: write() says to wait.
      let room = true;
      for (let i = 0; i < 100_000 && room; i++) room = sink.write([{ number: 100n + BigInt(i) }]);
      fullAt.push(room);
      await sink.drained();
      sink.write([{ number: 4n }]);
    }, used);
    try {
      const grpcSide = await ticksOf(createGrpcTransport({ baseUrl: `http://127.0.0.1:${server.grpcPort}` }));
      assert.equal(grpcSide.error, undefined);
      assert.deepEqual(grpcSide.ticks.slice(0, 4), [1n, 2n, 3n, 100n]);
      assert.equal(grpcSide.ticks.at(-1), 4n);
      assert.deepEqual(fullAt, [true, false]);
      assert.deepEqual(used, ["pushed"]);
      const connectSide = await ticksOf(createConnectTransport({ baseUrl: `http://127.0.0.1:${server.httpPort}`, httpVersion: "1.1" }));
      assert.deepEqual(connectSide.ticks, [1n, 2n, 3n, 4n]);
      assert.deepEqual(used, ["pushed", "iterated"]);
    } finally {
      await server.shutdown("test done");
    }
  });

  test("a push that fails ends the stream with its error, after what it wrote", async () => {
    const server = await serverWith(async (sink) => {
      sink.write([{ number: 1n }]);
      await new Promise((resolve) => setTimeout(resolve, 20));
      throw new ConnectError("the log was compacted past after_seq", Code.OutOfRange);
    }, []);
    try {
      const { ticks, error } = await ticksOf(createGrpcTransport({ baseUrl: `http://127.0.0.1:${server.grpcPort}` }));
      assert.deepEqual(ticks, [1n]);
      assert.equal(error?.code, Code.OutOfRange);
      assert.equal(error?.rawMessage, "the log was compacted past after_seq");
    } finally {
      await server.shutdown("test done");
    }
  });

  test("a client that cancels ends the push through the handler's signal; a drain ends one that ignores it with UNAVAILABLE", async () => {
    let stopped!: (reason: unknown) => void;
    const stoppedBy = new Promise<unknown>((resolve) => (stopped = resolve));
    const cancelling = await serverWith(
      (sink, signal) =>
        new Promise<void>((resolve) => {
          sink.write([{ number: 1n }]);
          signal.addEventListener("abort", () => {
            stopped(signal.reason);
            resolve();
          });
        }),
      [],
    );
    try {
      const controller = new AbortController();
      const client = createClient(diagV1.DiagService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${cancelling.grpcPort}` }));
      const ticks: bigint[] = [];
      await assert.rejects(async () => {
        for await (const tick of client.ticks({ count: 0 }, { signal: controller.signal })) {
          ticks.push(tick.number);
          controller.abort();
        }
      });
      assert.deepEqual(ticks, [1n]);
      assert.equal(ConnectError.from(await stoppedBy).code, Code.Canceled);
    } finally {
      await cancelling.shutdown("test done");
    }

    let written!: () => void;
    const wrote = new Promise<void>((resolve) => (written = resolve));
    const stuck = await serverWith(async (sink) => {
      sink.write([{ number: 1n }]);
      written();
      await new Promise(() => undefined);
    }, []);
    const ended = ticksOf(createGrpcTransport({ baseUrl: `http://127.0.0.1:${stuck.grpcPort}` }));
    await wrote;
    await stuck.shutdown("test done");
    const { ticks, error } = await ended;
    assert.deepEqual(ticks, [1n]);
    assert.equal(error?.code, Code.Unavailable);
    assert.equal(errorReason(error), "SHUTTING_DOWN");
  });
});

describe("a health-only port (ANNALS_HEALTH_PORT)", () => {
  test("answers grpc.health.v1 in plain text, for every service, and nothing else", async () => {
    const healthServer = await startServer({
      name: "health-port-test",
      services: [],
      grpcPort: 0,
      httpPort: 0,
      healthPort: 0,
      auth: { mode: "off" },
      logger: createLogger({ name: "health-port-test", level: "silent" }),
    });
    const address = `127.0.0.1:${healthServer.healthPort}`;
    try {
      assert.ok(healthServer.healthPort && healthServer.healthPort !== healthServer.grpcPort);
      assert.equal(await grpcJsHealthCheck(address, ""), "SERVING");
      assert.equal(await grpcJsHealthCheck(address, "annals.diag.v1.DiagService"), "SERVING");
      const client = new grpc.Client(address, grpc.credentials.createInsecure());
      const error = await new Promise<grpc.ServiceError>((resolve) =>
        client.makeUnaryRequest("/annals.diag.v1.DiagService/Ping", (value: Buffer) => value, (value: Buffer) => value, Buffer.alloc(0), (failure) => resolve(failure!)),
      );
      client.close();
      assert.equal(error.code, grpc.status.UNIMPLEMENTED, "only health is served there");
    } finally {
      await healthServer.shutdown("test done");
    }
  });
});
