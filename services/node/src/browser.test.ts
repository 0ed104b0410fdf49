// The node as browsers use it, in the system Chromium (playwright-core with
// its executable path: nothing is downloaded): an EventSource page and a
// connect-es web client on another origin (CORS), and the web console.
// Without Chromium these tests are skipped with the reason, or fail when
// ANNALS_TEST_REQUIRE_BROWSER=1 (CI sets it). The plain-HTTP checks of the
// console's route and of CORS run in any case.
import assert from "node:assert/strict";
import { dirname } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import type { Browser, Page } from "playwright-core";
import { createTestDatabase, type TestDatabase } from "@annals/db/testing";
import { signDevToken } from "@annals/runtime";
import { until, type ServiceProcess } from "@annals/runtime/testing";
import { appendJson, freePort, launchChromium, startNode, startPageServer, systemChromium, type PageServer } from "./browser-harness.js";
import { CONSOLE_CSP } from "./console-route.js";

const chromiumPath = systemChromium();
const NODE_A = "spiffe://browser.test/annals/a";
const NODE_B = "spiffe://browser.test/annals/b";
const skip = "skip" in chromiumPath ? chromiumPath.skip : false;
/** How long a page may take to reach a state it must reach (a failure, not a measure). */
const WAIT = { timeout: 30_000 };

/** The EventSource page: follows `es.>` of log "es-log" on the node given in ?node=, records what it sees. */
const SSE_PAGE = `<!doctype html><meta charset="utf-8"><title>sse</title><script type="module">
const node = new URLSearchParams(location.search).get("node");
window.seen = { events: [], opens: 0, errors: 0, caughtUp: [] };
const source = new EventSource(node + "/v1/logs/es-log/events?kinds=es.%3E&snapshot=10");
source.onopen = () => window.seen.opens++;
source.onerror = () => window.seen.errors++;
source.addEventListener("tick", (event) => {
  const data = JSON.parse(event.data);
  window.seen.events.push({ id: event.lastEventId, seq: data.seq, snapshot: data.snapshot, n: data.entry.payload.n, origin: event.origin });
});
source.addEventListener("annals:caught-up", (event) => window.seen.caughtUp.push(JSON.parse(event.data).seq));
</script>`;

/** The connect-es web client (bundled by esbuild below): Connect JSON and gRPC-Web transports. */
const CLIENT_ENTRY = `
import { create } from "@bufbuild/protobuf";
import { ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { logV1 } from "@annals/proto";
window.annalsDemo = async (node, logId) => {
  const viaConnect = createClient(logV1.LogService, createConnectTransport({ baseUrl: node, useBinaryFormat: false }));
  const viaGrpcWeb = createClient(logV1.LogService, createGrpcWebTransport({ baseUrl: node }));
  try {
    const first = await viaConnect.append({ logId, entry: { kind: "web.hello", body: { case: "payload", value: { from: "connect" } } } });
    const second = await viaGrpcWeb.append({ logId, entry: { kind: "web.hello", body: { case: "binaryPayload", value: new Uint8Array([1, 2, 3]) }, contentType: "application/octet-stream" } });
    const page = await viaGrpcWeb.read({ logId, pageSize: 10 });
    const head = await viaConnect.getLog({ logId });
    return {
      seqs: [String(first.result.seq), String(second.result.seq)],
      read: page.entries.map((e) => ({ seq: String(e.seq), kind: e.kind, body: e.body.case, checksum: e.checksum })),
      headSeq: String(head.head.lastSeq),
    };
  } catch (error) {
    const failure = ConnectError.from(error);
    return { error: { code: failure.code, message: failure.rawMessage } };
  }
};
`;

describe("the node in a browser (system Chromium), from another origin and through its console", () => {
  let database: TestDatabase;
  let node: ServiceProcess;
  let pages: PageServer;
  let browser: Browser | undefined;
  let nodeUrl: string;
  const ports = { grpc: 0, http: 0 };
  let nodeEnv: Record<string, string>;
  const restartNode = async (between?: () => Promise<void>) => {
    const stopped = await node.stop();
    assert.equal(stopped.code, 0, `the node stops cleanly: ${JSON.stringify(stopped)}\n${node.output()}`);
    await between?.();
    node = await startNode(ports, nodeEnv);
  };

  before(async () => {
    database = await createTestDatabase("browser");
    const bundle = await build({
      stdin: { contents: CLIENT_ENTRY, resolveDir: dirname(fileURLToPath(import.meta.url)), loader: "js" },
      bundle: true,
      format: "esm",
      platform: "browser",
      write: false,
      logLevel: "silent",
    });
    pages = await startPageServer({
      "/sse.html": { type: "text/html; charset=utf-8", body: SSE_PAGE },
      "/client.html": { type: "text/html; charset=utf-8", body: `<!doctype html><meta charset="utf-8"><title>client</title><script type="module" src="/client.js"></script>` },
      "/client.js": { type: "text/javascript; charset=utf-8", body: bundle.outputFiles[0]!.text },
    });
    ports.grpc = await freePort();
    ports.http = await freePort();
    nodeUrl = `http://127.0.0.1:${ports.http}`;
    nodeEnv = { ...database.env, ANNALS_CORS_ORIGINS: pages.origin, ANNALS_NODE_ID: NODE_A };
    node = await startNode(ports, nodeEnv);
    if (!skip && "path" in chromiumPath) browser = await launchChromium(chromiumPath.path);
  });
  after(async () => {
    await browser?.close();
    await node?.stop();
    await pages?.close();
    await database?.drop();
  });

  /** A new tab; the page's uncaught errors are collected, and the test fails on any (see closePage). */
  const pageErrors = new WeakMap<Page, string[]>();
  const newPage = async (): Promise<Page> => {
    const page = await browser!.newPage();
    const errors: string[] = [];
    pageErrors.set(page, errors);
    page.on("pageerror", (error) => errors.push(error.message));
    return page;
  };
  const closePage = async (page: Page) => {
    await page.close();
    assert.deepEqual(pageErrors.get(page), [], "the page threw no error");
  };

  test("the console's files: exact paths only, content types, a CSP; Connect, SSE and tile routes untouched", async () => {
    const index = await fetch(`${nodeUrl}/`);
    assert.equal(index.status, 200);
    assert.equal(index.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(index.headers.get("content-security-policy"), CONSOLE_CSP);
    assert.equal(index.headers.get("x-content-type-options"), "nosniff");
    assert.match(await index.text(), /<script type="module" src="\/console\/app\.js">/);
    for (const [path, type] of [["/console/app.js", "text/javascript; charset=utf-8"], ["/console/api.js", "text/javascript; charset=utf-8"], ["/console/console.css", "text/css; charset=utf-8"]]) {
      const response = await fetch(`${nodeUrl}${path}`);
      assert.equal(response.status, 200, path);
      assert.equal(response.headers.get("content-type"), type, path);
      const again = await fetch(`${nodeUrl}${path}`, { headers: { "if-none-match": response.headers.get("etag")! } });
      assert.equal(again.status, 304, `${path} revalidates by its ETag`);
    }
    // Nothing outside the table: traversal in every spelling, folders, other names.
    for (const path of ["/console/../package.json", "/console/%2e%2e/package.json", "/console/..%2fpackage.json", "/console/", "/console", "/index.html", "/console/app.js/", "/console/APP.JS", "/console/console-route.js", "//console/app.js"]) {
      const response = await rawGet(ports.http, path);
      assert.equal(response.status, 404, `${path} is not served`);
    }
    const ping = await fetch(`${nodeUrl}/annals.diag.v1.DiagService/Ping`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    assert.equal(ping.status, 200, "Connect still answers next to the console");
    await appendJson(nodeUrl, "http-checks", [{ kind: "c.x", payload: { n: 1 } }]);
    const checkpoint = await fetch(`${nodeUrl}/v1/logs/http-checks/checkpoint`);
    assert.equal(checkpoint.status, 200, "the tile routes still answer");
    const metrics = await rawGet(ports.http, "/metrics");
    assert.equal(metrics.status, 200, "/metrics still answers");
  });

  test("CORS: preflight and response headers for the listed origin on Connect, gRPC-Web, SSE and tile routes; none for another", async () => {
    await appendJson(nodeUrl, "cors-log", [{ kind: "c.x", payload: { n: 1 } }]);
    const cases: [string, string, string][] = [
      ["/annals.log.v1.LogService/Read", "POST", "content-type, connect-protocol-version, authorization"],
      ["/annals.log.v1.LogService/Read", "POST", "content-type, x-grpc-web, x-user-agent"],
      ["/v1/logs/cors-log/events", "GET", "last-event-id, authorization"],
      ["/v1/logs/cors-log/checkpoint", "GET", "authorization"],
      ["/v1/logs/cors-log/tile/0/000.p/1", "GET", "authorization"],
    ];
    for (const [path, method, headers] of cases) {
      const preflight = await fetch(`${nodeUrl}${path}`, {
        method: "OPTIONS",
        headers: { origin: pages.origin, "access-control-request-method": method, "access-control-request-headers": headers },
      });
      assert.equal(preflight.status, 204, `preflight of ${path}`);
      assert.equal(preflight.headers.get("access-control-allow-origin"), pages.origin);
      assert.equal(preflight.headers.get("access-control-allow-credentials"), null, "no credentials: tokens are never cookies");
      const allowed = preflight.headers.get("access-control-allow-headers")!.toLowerCase().split(/, */);
      for (const header of headers.split(", ")) assert.ok(allowed.includes(header), `${path} allows the request header ${header}`);
      assert.ok(preflight.headers.get("access-control-allow-methods")!.includes(method));
      const refused = await fetch(`${nodeUrl}${path}`, { method: "OPTIONS", headers: { origin: "http://evil.example", "access-control-request-method": method } });
      assert.equal(refused.headers.get("access-control-allow-origin"), null, `${path}: no CORS for an origin not listed`);
    }
    const checkpoint = await fetch(`${nodeUrl}/v1/logs/cors-log/checkpoint`, { headers: { origin: pages.origin } });
    assert.equal(checkpoint.headers.get("access-control-allow-origin"), pages.origin);
    const read = await fetch(`${nodeUrl}/annals.log.v1.LogService/Read`, {
      method: "POST",
      headers: { origin: pages.origin, "content-type": "application/json" },
      body: JSON.stringify({ logId: "cors-log" }),
    });
    assert.equal(read.headers.get("access-control-allow-origin"), pages.origin);
    assert.match(read.headers.get("access-control-expose-headers")!, /grpc-status/i);
  });

  test("an EventSource page on another origin gets the snapshot and live events, and resumes by itself across a node restart", { skip }, async () => {
    await appendJson(nodeUrl, "es-log", [1, 2, 3].map((n) => ({ kind: "es.tick", payload: { n } })));
    await appendJson(nodeUrl, "es-log", [{ kind: "other.noise", payload: { n: 0 } }]);
    const page = await newPage();
    const streams: Record<string, string>[] = [];
    page.on("request", (request) => {
      if (request.url().includes("/events")) void request.allHeaders().then((headers) => streams.push(headers));
    });
    await page.goto(`${pages.origin}/sse.html?node=${encodeURIComponent(nodeUrl)}`);
    await page.waitForFunction("window.seen.caughtUp.length === 1", undefined, WAIT);
    const snapshot = await page.evaluate<Seen>("window.seen");
    assert.deepEqual(snapshot.events.map((event) => [event.id, event.seq, event.n, event.snapshot]), [["1", "1", 1, true], ["2", "2", 2, true], ["3", "3", 3, true]]);
    assert.deepEqual(snapshot.caughtUp, ["4"], "caught up at the head, seq 4 (not a tick)");
    assert.equal(snapshot.events[0]!.origin, nodeUrl);

    await appendJson(nodeUrl, "es-log", [4, 5].map((n) => ({ kind: "es.tick", payload: { n } })));
    await page.waitForFunction("window.seen.events.length === 5", undefined, WAIT);

    // The node goes away: the page sees the stream drop, and EventSource retries by itself.
    const stopped = await node.stop();
    assert.equal(stopped.code, 0);
    assert.doesNotMatch(node.output(), /grace period over/, "the open event stream ended at once on shutdown, not after the grace period");
    await page.waitForFunction("window.seen.errors >= 1", undefined, WAIT);
    node = await startNode(ports, nodeEnv);
    // Appended while the page is still reconnecting (it retries every 3 s): only Last-Event-ID can bring them.
    await appendJson(nodeUrl, "es-log", [6, 7].map((n) => ({ kind: "es.tick", payload: { n } })));
    await page.waitForFunction("window.seen.events.length >= 7 && window.seen.opens >= 2", undefined, WAIT);
    await appendJson(nodeUrl, "es-log", [{ kind: "es.tick", payload: { n: 8 } }]);
    await page.waitForFunction("window.seen.events.some((event) => event.n === 8)", undefined, WAIT);

    const seen = await page.evaluate<Seen>("window.seen");
    assert.deepEqual(
      seen.events.map((event) => event.n),
      [1, 2, 3, 4, 5, 6, 7, 8],
      "every tick once, in order: nothing missing or repeated across the restart",
    );
    assert.deepEqual(seen.events.map((event) => event.seq), ["1", "2", "3", "5", "6", "7", "8", "9"]);
    assert.deepEqual(seen.events.map((event) => event.snapshot), [true, true, true, false, false, false, false, false]);
    assert.equal(seen.opens, 2, "one reconnect, made by EventSource itself");
    const resumed = streams.filter((headers) => headers["last-event-id"] !== undefined);
    assert.deepEqual(resumed.map((headers) => headers["last-event-id"]), ["6"], "the reconnect resumed after the last id seen");
    await closePage(page);
  });

  test("a connect-es web client on another origin appends (Connect JSON, gRPC-Web) and reads; an origin not listed is refused", { skip }, async () => {
    const page = await newPage();
    await page.goto(`${pages.origin}/client.html`);
    await page.waitForFunction('typeof window.annalsDemo === "function"', undefined, WAIT);
    const result = await page.evaluate<DemoResult>(`window.annalsDemo(${JSON.stringify(nodeUrl)}, "web-log")`);
    assert.ok(!("error" in result), JSON.stringify(result));
    assert.deepEqual(result.seqs, ["1", "2"]);
    assert.deepEqual(
      result.read.map((entry) => [entry.seq, entry.kind, entry.body]),
      [["1", "web.hello", "payload"], ["2", "web.hello", "binaryPayload"]],
    );
    assert.equal(result.headSeq, "2");
    for (const entry of result.read) assert.match(entry.checksum, /^[0-9a-f]{64}$/);
    await closePage(page);

    // The same page from an origin not in ANNALS_CORS_ORIGINS (localhost is another origin than 127.0.0.1).
    const other = await newPage();
    await other.goto(`http://localhost:${pages.port}/client.html`);
    await other.waitForFunction('typeof window.annalsDemo === "function"', undefined, WAIT);
    const refused = await other.evaluate<DemoResult>(`window.annalsDemo(${JSON.stringify(nodeUrl)}, "web-log-other")`);
    assert.ok("error" in refused, "the browser refuses the cross-origin call");
    const head = await fetch(`${nodeUrl}/annals.log.v1.LogService/GetLog`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ logId: "web-log-other" }) });
    assert.equal(head.status, 404, "and nothing was appended (the preflight stopped it)");
    await closePage(other);
  });

  test("the console lists logs, pages through entries, tails live, lists KV keys, and its Verify reports a log tampered in SQL as invalid", { skip }, async () => {
    await appendJson(nodeUrl, "shop/orders", Array.from({ length: 30 }, (_, i) => ({ kind: i % 5 === 4 ? "order.refunded" : "order.placed", payload: { order: i + 1 } })));
    const page = await newPage();
    await page.goto(`${nodeUrl}/`);
    await page.locator("#logs a", { hasText: "shop/orders" }).click();
    await page.locator("#entries tbody tr").nth(24).waitFor(WAIT);
    assert.equal(await page.locator("#entries tbody tr").count(), 25, "a page of 25");
    const firstRow = await page.locator("#entries tbody tr").first().innerText();
    assert.match(firstRow, /^1\t.*\torder\.placed\t.*\{"order":1\}/s);
    await page.click("#page-next");
    await page.locator("#entries tbody tr > td:first-child").getByText("26", { exact: true }).waitFor(WAIT);
    assert.equal(await page.locator("#entries tbody tr").count(), 5, "the last page: 26–30");
    assert.match(await page.locator("#entries tbody tr").last().innerText(), /^30\t.*order\.refunded.*\{"order":30\}/s);

    // Verify: valid now.
    await page.click("#verify");
    await page.waitForSelector("#verify-result .result.valid, #verify-result .result.invalid", WAIT);
    assert.match(await page.locator("#verify-result").innerText(), /^Valid: 30 entries checked/);

    // Live tail of refunds: the snapshot, then an entry appended while watching.
    await page.goto(`${nodeUrl}/#/tail/${encodeURIComponent("shop/orders")}`);
    // A refused stream says why (EventSource itself cannot tell).
    await page.fill("#tail-kinds", "order..refunded");
    await page.click("#tail-start");
    await page.locator("#tail-state", { hasText: "ended: invalid_argument: kinds" }).waitFor(WAIT);
    await page.fill("#tail-kinds", "order.refunded");
    await page.fill("#tail-snapshot", "3");
    await page.click("#tail-start");
    await page.locator("#tail-state", { hasText: "live (caught up at seq 30)" }).waitFor(WAIT);
    assert.deepEqual(await Promise.all((await page.locator("#tail-events li").all()).map((item) => item.getAttribute("data-seq"))), ["30", "25", "20"]);
    await appendJson(nodeUrl, "shop/orders", [{ kind: "order.placed", payload: { order: 31 } }, { kind: "order.refunded", payload: { order: 32 } }]);
    await page.locator('#tail-events li[data-seq="32"]').waitFor(WAIT);
    assert.equal(await page.locator("#tail-events li").first().getAttribute("data-seq"), "32", "newest first");
    assert.match(await page.locator("#tail-events li").first().innerText(), /#32 order\.refunded.*\{"order":32\}/s);
    assert.equal(await page.locator("#tail-events li").count(), 4, "the order.placed in between is not shown");

    // KV keys by prefix: text shown as text, other bytes as hex; other prefixes left out.
    const kvSet = async (key: string, value: Buffer) => {
      const response = await fetch(`${nodeUrl}/annals.kv.v1.KvService/Set`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ key: Buffer.from(key).toString("base64"), value: value.toString("base64") }),
      });
      assert.equal(response.status, 200, await response.text());
    };
    await kvSet("app/region", Buffer.from("eu-west"));
    await kvSet("app/blob", Buffer.from([0xff, 0x00, 0x10]));
    await kvSet("other/key", Buffer.from("hidden"));
    await page.goto(`${nodeUrl}/#/kv`);
    await page.fill("#kv-prefix", "app/");
    await page.press("#kv-prefix", "Enter");
    await page.waitForURL(/#\/kv\/app%2F$/, WAIT);
    // The rows of the view as it is when read (it is redrawn as the hash changes).
    const kvRows = () => page.locator("#kv tbody tr").evaluateAll((rows) => rows.map((row) => (row as { innerText: string }).innerText));
    await until("the KV view to list the app/ keys", async () => (await kvRows()).length === 2, WAIT.timeout);
    assert.deepEqual(await kvRows(), ["app/blob\t0xff0010", "app/region\teu-west"]);

    // Someone edits a payload in the database; Verify in the console says so.
    await restartNode(async () => {
      const db = await database.open();
      try {
        await db.query(`update log.entries set payload = '{"order": 999}' where log_id = 'shop/orders' and seq = 7`);
      } finally {
        await db.close();
      }
    });
    await page.goto(`${nodeUrl}/#/log/${encodeURIComponent("shop/orders")}`);
    await page.click("#verify");
    await page.waitForSelector("#verify-result .result.valid, #verify-result .result.invalid", WAIT);
    const report = await page.locator("#verify-result").innerText();
    assert.match(report, /^INVALID: 1 finding\(s\) in 32 entries checked/);
    assert.match(report, /seq 7: DIGEST expected [0-9a-f]{12}…, stored [0-9a-f]{12}…/);
    await closePage(page);
  });

  test("the console's federation view shows the peers, the replication into the node, and its lag as a chart", { skip }, async () => {
    const databaseB = await createTestDatabase("browser_b");
    const nodeB = await startNode({ grpc: 0, http: 0 }, { ...databaseB.env, ANNALS_NODE_ID: NODE_B });
    const urlB = `http://127.0.0.1:${nodeB.httpPort}`;
    try {
      const federation = async (url: string, method: string, body: unknown) => {
        const response = await fetch(`${url}/annals.federation.v1.FederationService/${method}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
        const json = (await response.json()) as Record<string, string>;
        assert.equal(response.status, 200, `${method}: ${JSON.stringify(json)}`);
        return json;
      };
      await appendJson(nodeUrl, "fed-orders", [1, 2, 3].map((n) => ({ kind: "order.placed", payload: { n } })));
      const keyA = (await federation(nodeUrl, "GetNodeInfo", {})).publicKeyJwk;
      const keyB = (await federation(urlB, "GetNodeInfo", {})).publicKeyJwk;
      await federation(nodeUrl, "RegisterPeer", { peer: { nodeId: NODE_B, url: "http://127.0.0.1:1", publicKeyJwk: keyB, servedLogs: ["fed-orders"] } });
      await federation(urlB, "RegisterPeer", { peer: { nodeId: NODE_A, url: `http://127.0.0.1:${ports.grpc}`, publicKeyJwk: keyA, mirroredLogs: ["fed-orders"] } });

      const page = await newPage();
      await page.goto(`${urlB}/#/peers`);
      await page.locator("#peers td", { hasText: NODE_A }).waitFor(WAIT);
      assert.match(await page.locator("#peers tbody tr").innerText(), /\tactive\t\tfed-orders\t/, "active, serves nothing to A, mirrors fed-orders from it");
      // The replication row: mirrored into mirror/<A's trust domain and path>/fed-orders, caught up at 3.
      // Each visit of the view takes a sample (then one every 5 s); the samples outlive a visit to another view.
      const mirror = `mirror/${NODE_A.slice("spiffe://".length)}/fed-orders`;
      const replication = page.locator("#replications tbody tr", { has: page.locator("a", { hasText: mirror }) });
      await until("the console to show the mirror caught up at seq 3", async () => {
        await page.click('nav a[data-view="logs"]');
        await page.click('nav a[data-view="peers"]');
        await page.locator("#replications tbody tr").first().waitFor(WAIT);
        return (await replication.count()) === 1 && /\tidle\t3\t3\t0\t|\trunning\t3\t3\t0\t/.test(await replication.innerText());
      }, WAIT.timeout);
      const points = ((await page.locator("#lag-chart polyline").getAttribute("points")) ?? "").split(" ").filter(Boolean);
      assert.ok(points.length >= 2, `a line through every sample so far: ${points.join(" ")}`);
      assert.equal(await page.locator("#lag-chart polyline").count(), 1, "one line per replication");
      assert.match(await page.locator("#lag-chart svg").innerHTML(), />fed-orders ← a: 0<\/text>/, "the legend names the log, the peer and the latest lag");
      await closePage(page);
    } finally {
      await nodeB.stop();
      await databaseB.drop();
    }
  });
});

describe("the console on a node with auth on, in the system Chromium", () => {
  const SECRET = "console-test-secret-that-is-long-enough-0123456789";
  let database: TestDatabase;
  let node: ServiceProcess;
  let browser: Browser | undefined;
  let nodeUrl: string;

  before(async () => {
    database = await createTestDatabase("browser_auth");
    const internal = await signDevToken({ secret: SECRET, subject: "node-internal", roles: ["admin"] });
    node = await startNode({ grpc: 0, http: 0 }, { ...database.env, ANNALS_AUTH_JWT_SECRET: SECRET, ANNALS_INTERNAL_TOKEN: internal });
    nodeUrl = `http://127.0.0.1:${node.httpPort}`;
    await appendJson(nodeUrl, "secured", [{ kind: "door.opened", payload: { door: 1 } }], internal);
    if (!skip && "path" in chromiumPath) browser = await launchChromium(chromiumPath.path);
  });
  after(async () => {
    await browser?.close();
    await node?.stop();
    await database?.drop();
  });

  test("asks for a token, keeps it in the tab (sessionStorage), and reads and tails with it", { skip }, async () => {
    const reader = await signDevToken({ secret: SECRET, subject: "operator", roles: ["log.read", "stream.view"] });
    const context = await browser!.newContext();
    const page = await context.newPage();
    await page.goto(`${nodeUrl}/`);
    await page.locator(".error", { hasText: "unauthenticated" }).waitFor(WAIT);
    assert.match(await page.locator(".error").innerText(), /give a token with the needed role above/);
    assert.equal(await page.locator("#token-state").innerText(), "no token");

    await page.fill("#token", reader);
    await page.click("#token-form button[type=submit]");
    await page.locator("#logs a", { hasText: "secured" }).waitFor(WAIT);
    assert.equal(await page.locator("#token-state").innerText(), "token set (this tab)");
    assert.equal(await page.inputValue("#token"), "", "the field is cleared; the token is not shown again");
    assert.equal(await page.evaluate<string | null>(`sessionStorage.getItem("annals.console.token")`), reader);
    assert.equal(await page.evaluate<number>("localStorage.length"), 0, "nothing in localStorage");

    // The live tail authenticates too (EventSource cannot send headers: token= in its URL).
    await page.goto(`${nodeUrl}/#/tail/secured`);
    await page.locator("#tail-state", { hasText: "live (caught up at seq 1)" }).waitFor(WAIT);
    assert.equal(await page.locator("#tail-events li").count(), 1);

    // Federation needs federation.read, which this token lacks: said, not hidden.
    await page.goto(`${nodeUrl}/#/peers`);
    await page.locator(".error", { hasText: "permission_denied" }).waitFor(WAIT);

    // Another tab starts without it; Forget removes it from this one.
    const other = await context.newPage();
    await other.goto(`${nodeUrl}/`);
    await other.locator(".error", { hasText: "unauthenticated" }).waitFor(WAIT);
    await page.click("#token-forget");
    assert.equal(await page.evaluate<string | null>(`sessionStorage.getItem("annals.console.token")`), null);
    await context.close();
  });
});

/** A GET with the path exactly as given (fetch would normalise `..` and `%2e%2e`). */
async function rawGet(port: number, path: string): Promise<{ status: number }> {
  const { request } = await import("node:http");
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method: "GET" }, (response) => {
      response.resume();
      resolve({ status: response.statusCode ?? 0 });
    });
    req.on("error", reject);
    req.end();
  });
}

interface Seen {
  events: { id: string; seq: string; snapshot: boolean; n: number; origin: string }[];
  opens: number;
  errors: number;
  caughtUp: string[];
}

type DemoResult =
  | { seqs: string[]; read: { seq: string; kind: string; body: string; checksum: string }[]; headSeq: string }
  | { error: { code: number; message: string } };
