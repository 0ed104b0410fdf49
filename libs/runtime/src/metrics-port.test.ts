// ANNALS_METRICS_PORT: /metrics moves off the HTTP port (which may be public,
// as the stream service's is) to a port of its own.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ConfigError } from "./config.js";
import { createLogger } from "./logger.js";
import { readServerConfig } from "./server-config.js";
import { startServer, type RunningServer } from "./server.js";

let server: RunningServer;
before(async () => {
  server = await startServer({
    name: "metrics-port-test",
    services: [],
    grpcPort: 0,
    httpPort: 0,
    metricsPort: 0,
    auth: { mode: "off" },
    logger: createLogger({ name: "metrics-port-test", level: "silent" }),
    shutdownGraceMs: 500,
  });
});
after(() => server?.shutdown());

test("with a metrics port, /metrics is served there and not on the HTTP port, which still serves the API", async () => {
  assert.ok(server.metricsPort !== undefined && server.metricsPort !== server.httpPort);
  const metrics = await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`);
  assert.equal(metrics.status, 200);
  assert.match(await metrics.text(), /^# (HELP|TYPE) /m);
  assert.equal((await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).status, 404);
  assert.equal((await fetch(`http://127.0.0.1:${server.metricsPort}/annals.diag.v1.DiagService/Ping`, { method: "POST" })).status, 404, "the metrics port serves nothing else");
  const ping = await fetch(`http://127.0.0.1:${server.httpPort}/annals.diag.v1.DiagService/Ping`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ data: "aGk=" }),
  });
  assert.deepEqual(await ping.json(), { data: "aGk=" });
});

test("ANNALS_METRICS_PORT is checked at startup", () => {
  const read = (env: Record<string, string>) => () => readServerConfig({ ANNALS_AUTH_JWT_SECRET: "x".repeat(32), ...env }, { grpcPort: 50061, httpPort: 8061, allowAuthOff: false });
  assert.equal(read({ ANNALS_METRICS_PORT: "9090" })().metricsPort, 9090);
  assert.equal(read({})().metricsPort, undefined);
  assert.throws(read({ ANNALS_METRICS_PORT: "8061" }), (error: unknown) => error instanceof ConfigError && error.variable === "ANNALS_METRICS_PORT");
  assert.throws(read({ ANNALS_METRICS_PORT: "metrics" }), (error: unknown) => error instanceof ConfigError && error.variable === "ANNALS_METRICS_PORT");
});
