// Cross-origin calls to the HTTP port (ANNALS_CORS_ORIGINS): a listed origin
// gets the CORS headers and its preflight answered; any other gets none.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { createLogger } from "./logger.js";
import { diagRegistration } from "./diag-service.js";
import { readServerConfig } from "./server-config.js";
import { startServer, type RunningServer } from "./server.js";
import { ConfigError } from "./config.js";

const APP = "https://app.example:8443";
let server: RunningServer;

before(async () => {
  server = await startServer({
    name: "cors-test",
    services: [],
    diag: true,
    grpcPort: 0,
    httpPort: 0,
    auth: { mode: "off" },
    corsOrigins: [APP],
    logger: createLogger({ name: "cors-test", level: "silent" }),
  });
});

after(async () => {
  await server.shutdown("tests done");
});

const ping = `/${diagRegistration.service.typeName}/Ping`;

test("a listed origin's preflight is answered with the methods and headers connect-es sends", async () => {
  const response = await fetch(`http://127.0.0.1:${server.httpPort}${ping}`, {
    method: "OPTIONS",
    headers: { origin: APP, "access-control-request-method": "POST", "access-control-request-headers": "content-type, connect-protocol-version, authorization" },
  });
  assert.equal(response.status, 204);
  assert.equal(response.headers.get("access-control-allow-origin"), APP);
  assert.match(response.headers.get("access-control-allow-methods")!, /POST/);
  for (const header of ["content-type", "connect-protocol-version", "authorization", "last-event-id"]) {
    assert.match(response.headers.get("access-control-allow-headers")!, new RegExp(`(^|, )${header}(,|$)`, "i"), header);
  }
  assert.equal(response.headers.get("access-control-allow-credentials"), null, "no credentials: tokens travel in headers");
});

test("a listed origin's call gets the origin and the exposed headers; another origin gets no CORS header at all", async () => {
  const call = (origin: string) =>
    fetch(`http://127.0.0.1:${server.httpPort}${ping}`, {
      method: "POST",
      headers: { origin, "content-type": "application/json", "connect-protocol-version": "1" },
      body: "{}",
    });
  const allowed = await call(APP);
  assert.equal(allowed.status, 200);
  assert.equal(allowed.headers.get("access-control-allow-origin"), APP);
  assert.match(allowed.headers.get("access-control-expose-headers")!, /grpc-status-details-bin/i);
  assert.match(allowed.headers.get("vary")!, /origin/i);
  const other = await call("https://evil.example");
  assert.equal(other.headers.get("access-control-allow-origin"), null);
  const preflight = await fetch(`http://127.0.0.1:${server.httpPort}${ping}`, { method: "OPTIONS", headers: { origin: "https://evil.example", "access-control-request-method": "POST" } });
  assert.equal(preflight.headers.get("access-control-allow-origin"), null);
});

test("ANNALS_CORS_ORIGINS takes origins only, and is off by default", () => {
  const read = (value?: string) =>
    readServerConfig({ ANNALS_AUTH_JWT_SECRET: "x".repeat(32), ...(value === undefined ? {} : { ANNALS_CORS_ORIGINS: value }) }, { grpcPort: 0, httpPort: 0, allowAuthOff: false }).corsOrigins;
  assert.deepEqual(read(), []);
  assert.deepEqual(read(" https://a.example , http://localhost:5173 "), ["https://a.example", "http://localhost:5173"]);
  assert.deepEqual(read("*"), ["*"]);
  for (const bad of ["https://a.example/", "a.example", "ftp://a.example", "https://a.example/path"]) {
    assert.throws(() => read(bad), (error: unknown) => error instanceof ConfigError && error.variable === "ANNALS_CORS_ORIGINS", bad);
  }
});
