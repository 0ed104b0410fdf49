// The log service restarted under connected subscribers: the log service runs
// as its own process on a fixed port, the stream service in this process.
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { createAnnalsClients, type LogClient, type StreamClient } from "@annals/client";
import { createTestDatabase, type TestDatabase } from "@annals/db/testing";
import { serveComponents, signDevToken, type RunningServer } from "@annals/runtime";
import { startServiceProcess, testServerConfig, type ServiceProcess } from "@annals/runtime/testing";
import { createStreamComponent } from "./component.js";
import { DEFAULT_STREAM_SETTINGS } from "./config.js";
import { TEST_SECRET, jsonEntry, seqs, sleep, subscribe } from "./stream-harness.js";

const LOG_MAIN = fileURLToPath(new URL("../../log/dist/main.js", import.meta.url));

let database: TestDatabase;
let logPort: number;
let logService: ServiceProcess | undefined;
let streamServer: RunningServer;
let log: LogClient;
let stream: StreamClient;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const startLog = () => startServiceProcess({ script: LOG_MAIN, env: { ...database.env, ANNALS_AUTH_JWT_SECRET: TEST_SECRET, ANNALS_PORT: String(logPort) } });

before(async () => {
  database = await createTestDatabase("stream_restart");
  logPort = await freePort();
  logService = await startLog();
  const config = testServerConfig(TEST_SECRET);
  streamServer = await serveComponents({
    name: "test-stream-restart",
    server: config,
    components: async (context) => [
      await createStreamComponent({
        log: createAnnalsClients({
          baseUrl: `http://127.0.0.1:${logPort}`,
          token: await signDevToken({ secret: TEST_SECRET, subject: "stream-service", roles: ["log.read", "log.write", "log.relay"] }),
        }).log,
        settings: { ...DEFAULT_STREAM_SETTINGS, keepaliveMs: 200 },
      }, context),
    ],
  });
  const token = await signDevToken({ secret: TEST_SECRET, subject: "test", roles: ["admin"] });
  log = createAnnalsClients({ baseUrl: `http://127.0.0.1:${logPort}`, token, unaryTimeoutMs: 60_000 }).log;
  stream = createAnnalsClients({ baseUrl: `http://127.0.0.1:${streamServer.grpcPort}`, token }).stream;
});

after(async () => {
  await streamServer?.shutdown("test done");
  await logService?.stop();
  await database?.drop();
});

async function append(from: number, to: number): Promise<void> {
  for (let i = from; i <= to; i++) await log.append({ logId: "orders", entry: jsonEntry(i % 2 ? "order.placed" : "order.paid", { i }) });
}

test("restarting the log service: the streams stay open with heartbeats and continue with no gap and no duplicate", async () => {
  const everything = subscribe(stream, { logId: "orders", kinds: [">"] });
  const paid = subscribe(stream, { logId: "orders", kinds: ["order.paid"] });
  await Promise.all([everything, paid].map((s) => s.until((r) => r.caughtUp !== undefined)));
  await append(1, 40);
  await everything.until((r) => r.events.length === 40);

  await logService!.stop("SIGTERM");
  logService = undefined;
  const heartbeatsBefore = everything.heartbeats.length;
  await sleep(1500);
  assert.equal(everything.ended, undefined, "the stream stayed open while the log service was down");
  assert.equal(paid.ended, undefined);
  assert.ok(everything.heartbeats.length >= heartbeatsBefore + 3, `heartbeats went on (${everything.heartbeats.length - heartbeatsBefore})`);
  assert.equal(everything.heartbeats.at(-1)!.lastSeq, 40n);
  // A subscriber arriving during the outage waits for the log service too.
  const late = subscribe(stream, { logId: "orders", kinds: ["order.placed"], afterSeq: 0n });

  logService = await startLog();
  await append(41, 80);
  await everything.until((r) => r.events.length === 80, 30_000);
  await paid.until((r) => r.events.length === 40, 30_000);
  await late.until((r) => r.events.length === 40, 30_000);
  await sleep(200);
  assert.deepEqual(seqs(everything.events).map(Number), Array.from({ length: 80 }, (_, i) => i + 1));
  assert.deepEqual(seqs(paid.events).map(Number), Array.from({ length: 40 }, (_, i) => 2 * (i + 1)));
  assert.deepEqual(seqs(late.events).map(Number), Array.from({ length: 40 }, (_, i) => 2 * i + 1));
  for (const s of [everything, paid, late]) s.cancel();
  assert.match(await fetch(`http://127.0.0.1:${streamServer.httpPort}/metrics`).then((r) => r.text()), /annals_stream_upstream_reconnects_total(\{[^}]*\})? [1-9]/);
});
