import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { diagV1, logV1 } from "@annals/proto";
import { createLogger, defineService, signDevToken, startServer, type RunningServer } from "@annals/runtime";
import { createAnnalsClients } from "./index.js";

const SECRET = "client-test-secret-of-at-least-32-bytes";
let server: RunningServer;
let pingCalls = 0;
let appendCalls = 0;
let pingFailures = 0;
let seenAuthorization: string | undefined;

before(async () => {
  server = await startServer({
    name: "client-test",
    grpcPort: 0,
    httpPort: 0,
    auth: { mode: "jwt", secret: SECRET },
    diag: false,
    logger: createLogger({ name: "client-test", level: "silent" }),
    services: [
      defineService({
        service: diagV1.DiagService,
        access: { ping: "diag.ping", ticks: "diag.ping", upload: "diag.ping", echo: "diag.ping" },
        impl: {
          ping(request, context) {
            pingCalls++;
            seenAuthorization = context.requestHeader.get("authorization") ?? undefined;
            if (pingFailures > 0) {
              pingFailures--;
              throw new ConnectError("try again", Code.Unavailable);
            }
            if (request.data.length > 0 && request.data[0] === 0xff) {
              // Sleeps past the client's deadline.
              return new Promise((resolve) => setTimeout(() => resolve({ data: request.data }), 2000));
            }
            return { data: request.data };
          },
        },
      }),
      defineService({
        service: logV1.LogService,
        access: Object.fromEntries(logV1.LogService.methods.map((method) => [method.localName, "log.write"])) as never,
        impl: {
          append() {
            appendCalls++;
            throw new ConnectError("try again", Code.Unavailable);
          },
        },
      }),
    ],
  });
});

after(async () => {
  await server.shutdown();
});

async function clients(options: { token?: () => Promise<string>; unaryTimeoutMs?: number } = {}) {
  return createAnnalsClients({
    baseUrl: `http://127.0.0.1:${server.grpcPort}`,
    token: options.token ?? (() => signDevToken({ secret: SECRET, subject: "client", roles: ["diag.ping", "log.write"] })),
    retryBaseDelayMs: 5,
    ...(options.unaryTimeoutMs !== undefined ? { unaryTimeoutMs: options.unaryTimeoutMs } : {}),
  });
}

test("a NO_SIDE_EFFECTS call is retried on UNAVAILABLE until it succeeds", async () => {
  const { diag } = await clients();
  pingCalls = 0;
  pingFailures = 2;
  const response = await diag.ping({ data: new Uint8Array([1]) });
  assert.deepEqual([...response.data], [1]);
  assert.equal(pingCalls, 3);
});

test("retries stop after maxRetries (3) and the last error is returned", async () => {
  const { diag } = await clients();
  pingCalls = 0;
  pingFailures = 10;
  await assert.rejects(diag.ping({}), (error: unknown) => ConnectError.from(error).code === Code.Unavailable);
  assert.equal(pingCalls, 4);
  pingFailures = 0;
});

test("a call that is not idempotent (Append) is never retried", async () => {
  const { log } = await clients();
  appendCalls = 0;
  // A complete request: the runtime refuses one without its REQUIRED fields before the handler runs.
  const request = { logId: "orders", entry: { kind: "order.placed", body: { case: "payload" as const, value: { id: 1 } } } };
  await assert.rejects(log.append(request), (error: unknown) => ConnectError.from(error).code === Code.Unavailable);
  assert.equal(appendCalls, 1);
});

test("the bearer token is sent, from a function called per call", async () => {
  let minted = 0;
  const { diag } = await clients({
    token: () => {
      minted++;
      return signDevToken({ secret: SECRET, subject: "fresh", roles: ["diag.ping"] });
    },
  });
  await diag.ping({});
  await diag.ping({});
  assert.equal(minted, 2);
  assert.match(seenAuthorization ?? "", /^Bearer ey/);
});

test("unary calls get the default deadline: DEADLINE_EXCEEDED, not a hang", async () => {
  const { diag } = await clients({ unaryTimeoutMs: 200 });
  const started = Date.now();
  await assert.rejects(diag.ping({ data: new Uint8Array([0xff]) }), (error: unknown) => ConnectError.from(error).code === Code.DeadlineExceeded);
  assert.ok(Date.now() - started < 1500);
});
