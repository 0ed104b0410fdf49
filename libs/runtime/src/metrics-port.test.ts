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

test("/metrics has the event loop's delay and utilization since the previous scrape", async () => {
  const scrape = async () => {
    const text = await (await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`)).text();
    const value = (name: string) => {
      const match = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text);
      assert.ok(match, `${name} in /metrics`);
      return Number(match[1]);
    };
    return {
      p50: value("nodejs_eventloop_delay_p50"),
      p99: value("nodejs_eventloop_delay_p99"),
      max: value("nodejs_eventloop_delay_max"),
      utilization: value("nodejs_eventloop_utilization"),
    };
  };
  await scrape();
  // Let the sampling timer run, then hold the loop for 600 ms. The scrape
  // right after may be answered before the timer runs again: the stall shows
  // in it or in the next one, and only once.
  const sleep = () => new Promise((resolve) => setTimeout(resolve, 100));
  await sleep();
  for (const until = performance.now() + 600; performance.now() < until; );
  const blocked = await scrape();
  await sleep();
  const next = await scrape();
  assert.ok(Math.max(blocked.max, next.max) >= 0.5, `max delay ${blocked.max} s, then ${next.max} s, after the loop was held for 600 ms`);
  assert.ok(Math.min(blocked.max, next.max) < 0.5, `the stall counted once: ${blocked.max} s, then ${next.max} s`);
  for (const scraped of [blocked, next]) assert.ok(scraped.p50 <= scraped.p99 && scraped.p99 <= scraped.max, JSON.stringify(scraped));
  assert.ok(blocked.utilization > 0.5 && blocked.utilization <= 1, `utilization ${blocked.utilization} over a mostly busy interval`);
  await sleep();
  assert.ok((await scrape()).max < 0.5, "a quiet interval after it");
});
