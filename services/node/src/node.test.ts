import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { createAnnalsClients } from "@annals/client";
import { createTestDatabase, type TestDatabase } from "@annals/db/testing";
import { PROTO_ROOT, inspectService, runProcessToExit, startServiceProcess, type ServiceProcess } from "@annals/runtime/testing";

const REPO_ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const MAIN = fileURLToPath(new URL("./main.js", import.meta.url));
const CLI = fileURLToPath(new URL("../../../libs/cli/dist/main.js", import.meta.url));
const SERVICES = [
  "annals.log.v1.LogService",
  "annals.kv.v1.KvService",
  "annals.federation.v1.FederationService",
  "annals.stream.v1.StreamService",
  "annals.diag.v1.DiagService",
];

describe("the all-in-one node started by the README's command (npm start)", () => {
  let database: TestDatabase;
  let node: ServiceProcess;
  before(async () => {
    database = await createTestDatabase("node_start");
    node = await startServiceProcess({ command: ["npm", "start", "--silent", "--prefix", REPO_ROOT], env: database.env, readyTimeoutMs: 120_000 });
  });
  after(async () => {
    await node?.stop();
    await database?.drop();
  });

  test("serves all four services with health and reflection on one gRPC port", async () => {
    for (const service of SERVICES) {
      const seen = await inspectService(node.grpcPort, service);
      assert.equal(seen.health, "SERVING", service);
      assert.ok(seen.listedByReflection, `${service} listed by reflection`);
      assert.ok(seen.methods.length > 0, `${service} has methods`);
    }
  });

  test("says where it listens, and that auth is off", () => {
    assert.match(node.output(), new RegExp(`annals node ready: gRPC on 127\\.0\\.0\\.1:${node.grpcPort}`));
    assert.match(node.output(), /AUTH IS OFF/);
  });

  test("`annals health` reports it SERVING, per service too", async () => {
    const url = `http://127.0.0.1:${node.grpcPort}`;
    const whole = await runProcessToExit([CLI, "health", "--url", url], {});
    assert.equal(whole.code, 0, whole.stderr);
    assert.equal(whole.stdout.trim(), "(server): SERVING");
    const one = await runProcessToExit([CLI, "health", "--url", url, "--service", "annals.kv.v1.KvService"], {});
    assert.equal(one.stdout.trim(), "annals.kv.v1.KvService: SERVING");
    const unknown = await runProcessToExit([CLI, "health", "--url", url, "--service", "annals.nope.v1.Nope"], {});
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /not found|NOT_FOUND|unknown service/i);
  });

  test("answers the Connect protocol with JSON on the HTTP port", async () => {
    const ping = await fetch(`http://127.0.0.1:${node.httpPort}/annals.diag.v1.DiagService/Ping`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ data: Buffer.from("hi").toString("base64") }),
    });
    assert.equal(ping.status, 200);
    assert.deepEqual(await ping.json(), { data: Buffer.from("hi").toString("base64") });
  });

  test("the log service appends over Connect JSON and reads back over grpc-js", async () => {
    const connect = await fetch(`http://127.0.0.1:${node.httpPort}/annals.log.v1.LogService/Append`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ logId: "orders", entry: { kind: "order.placed", payload: { id: 7 } } }),
    });
    const appended = (await connect.json()) as { result: { seq: string; checksum: string } };
    assert.equal(connect.status, 200, JSON.stringify(appended));
    assert.equal(appended.result.seq, "1");
    const definition = protoLoader.loadSync("annals/log/v1/log_service.proto", { includeDirs: [PROTO_ROOT] });
    const Log = (grpc.loadPackageDefinition(definition) as any).annals.log.v1.LogService;
    const client = new Log(`127.0.0.1:${node.grpcPort}`, grpc.credentials.createInsecure());
    const response = await new Promise<any>((resolve, reject) =>
      client.GetLog({ logId: "orders" }, (error: grpc.ServiceError | null, value: any) => (error ? reject(error) : resolve(value))),
    );
    client.close();
    assert.equal(String(response.head.lastSeq), "1");
    assert.equal(response.head.lastChecksum, appended.result.checksum);
  });

  test("the kv service stores on the node's database: Set over Connect JSON, Get over grpc-js", async () => {
    const info = (await fetch(`http://127.0.0.1:${node.httpPort}/annals.kv.v1.KvService/GetInfo`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    }).then((response) => response.json())) as { backend: string };
    assert.equal(info.backend, "postgres");
    const set = await fetch(`http://127.0.0.1:${node.httpPort}/annals.kv.v1.KvService/Set`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ key: Buffer.from("greeting").toString("base64"), value: Buffer.from("hello").toString("base64"), ttlMs: "60000" }),
    });
    assert.deepEqual(await set.json(), { written: true });
    const definition = protoLoader.loadSync("annals/kv/v1/kv_service.proto", { includeDirs: [PROTO_ROOT] });
    const Kv = (grpc.loadPackageDefinition(definition) as any).annals.kv.v1.KvService;
    const client = new Kv(`127.0.0.1:${node.grpcPort}`, grpc.credentials.createInsecure());
    const got = await new Promise<any>((resolve, reject) =>
      client.Get({ key: Buffer.from("greeting") }, (error: grpc.ServiceError | null, value: any) => (error ? reject(error) : resolve(value))),
    );
    client.close();
    assert.deepEqual([got.found, got.value.toString()], [true, "hello"]);
  });

  test("the stream service follows the node's own log: Publish over Connect JSON reaches a grpc-js subscriber", async () => {
    const definition = protoLoader.loadSync("annals/stream/v1/stream_service.proto", { includeDirs: [PROTO_ROOT] });
    const Stream = (grpc.loadPackageDefinition(definition) as any).annals.stream.v1.StreamService;
    const client = new Stream(`127.0.0.1:${node.grpcPort}`, grpc.credentials.createInsecure());
    const call = client.Subscribe({ logId: "greetings", kinds: ["greeting.>"] });
    const frames: any[] = [];
    const event = new Promise<any>((resolve, reject) => {
      call.on("data", (frame: any) => {
        frames.push(frame);
        if (frame.event) resolve(frame.event);
      });
      call.on("error", reject);
    });
    try {
      while (!frames.some((frame) => frame.caughtUp)) await new Promise((resolve) => setTimeout(resolve, 20));
      const published = await fetch(`http://127.0.0.1:${node.httpPort}/annals.stream.v1.StreamService/Publish`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ logId: "greetings", entry: { kind: "greeting.sent", payload: { to: "world" } } }),
      });
      assert.equal(published.status, 200, await published.clone().text());
      const received = await event;
      assert.deepEqual([received.entry.kind, received.name, received.entry.payload.fields.to.stringValue], ["greeting.sent", "sent", "world"]);
    } finally {
      call.cancel();
      client.close();
    }
  });

  test("annals export → verify → import carries binary entries: the copy's payload digests, bytes and content types equal the original's", async () => {
    const url = `http://127.0.0.1:${node.grpcPort}`;
    const { log } = createAnnalsClients({ baseUrl: url });
    // A protobuf-encoded event (with a NUL and a 0xff byte, which no text encoding would carry) and one to be redacted.
    const encoded = Uint8Array.from([0x08, 0x96, 0x01, 0x12, 0x03, 0x66, 0x6f, 0x6f, 0x00, 0xff]);
    const contentType = "application/x-protobuf; messageType=acme.orders.v1.OrderPlaced";
    await log.appendBatch({
      logId: "cli-binary",
      entries: [
        { kind: "order.placed", body: { case: "payload", value: { id: 1, note: "json" } }, requestId: "o-1" },
        { kind: "order.encoded", body: { case: "binaryPayload", value: encoded }, contentType, requestId: "o-2", metadata: { region: "eu" } },
        { kind: "order.secret", body: { case: "binaryPayload", value: Uint8Array.from([1, 2, 3]) }, contentType: "application/octet-stream" },
      ],
    });
    await log.redact({ logId: "cli-binary", seq: 3n, reason: "secret" });
    const dir = mkdtempSync(join(tmpdir(), "annals-node-cli-"));
    try {
      const annals = (...args: string[]) => runProcessToExit([CLI, ...args], {});
      const file = join(dir, "cli-binary.jsonl");
      const exported = await annals("export", "--url", url, "--log", "cli-binary", "--out", file);
      assert.equal(exported.code, 0, exported.stderr);
      const lines = readFileSync(file, "utf8").split("\n");
      const binaryLine = JSON.parse(lines[2]!) as { seq: string; content_type: string; payload: string };
      assert.deepEqual([binaryLine.content_type, binaryLine.payload], [contentType, Buffer.from(encoded).toString("base64")], "the export holds the bytes as base64 with their content type");

      const verified = await annals("verify", file);
      assert.equal(verified.code, 0, verified.stdout + verified.stderr);
      assert.match(verified.stdout, /valid export of log "cli-binary", 4 entries up to seq 4/);

      const imported = await annals("import", file, "--url", url, "--log", "cli-binary-copy");
      assert.equal(imported.code, 0, imported.stderr);
      assert.match(imported.stdout, /imported 2 entries into log "cli-binary-copy" \(seqs 1\.\.2\); already there: 0; skipped 1 redacted and 1 service entries/);
      const source = (await log.read({ logId: "cli-binary" })).entries.filter((entry) => entry.redaction === undefined && !entry.kind.startsWith("annals."));
      const copy = (await log.read({ logId: "cli-binary-copy" })).entries;
      const fields = (entry: (typeof copy)[number]) => ({
        uuid: entry.uuid,
        kind: entry.kind,
        body: entry.body.case,
        bytes: entry.body.case === "binaryPayload" ? Buffer.from(entry.body.value).toString("hex") : null,
        contentType: entry.contentType,
        payloadDigest: entry.payloadDigest,
        requestId: entry.requestId,
        metadata: entry.metadata,
      });
      assert.deepEqual(copy.map(fields), source.map(fields));
      assert.deepEqual(copy.map((entry) => entry.body.case), ["payload", "binaryPayload"]);
      assert.equal((await log.verify({ logId: "cli-binary-copy" })).valid, true);

      // One changed byte of the binary payload is caught offline.
      const tampered = join(dir, "tampered.jsonl");
      const changed = Buffer.from(encoded);
      changed[changed.length - 1] = 0xfe;
      writeFileSync(tampered, lines.map((line, i) => (i === 2 ? JSON.stringify({ ...JSON.parse(line), payload: changed.toString("base64") }) : line)).join("\n"));
      const refused = await annals("verify", tampered);
      assert.equal(refused.code, 1, refused.stdout);
      assert.match(refused.stdout, /line 3, seq 2: payload_digest/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a method no service has answers UNIMPLEMENTED to grpc-js and 404 on the Connect port", async () => {
    const connect = await fetch(`http://127.0.0.1:${node.httpPort}/annals.kv.v1.KvService/Frobnicate`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    assert.equal(connect.status, 404);
    const client = new grpc.Client(`127.0.0.1:${node.grpcPort}`, grpc.credentials.createInsecure());
    const error = await new Promise<grpc.ServiceError>((resolve) =>
      client.makeUnaryRequest("/annals.kv.v1.KvService/Frobnicate", (value: Buffer) => value, (value: Buffer) => value, Buffer.alloc(0), (failure) => resolve(failure!)),
    );
    client.close();
    assert.equal(error.code, grpc.status.UNIMPLEMENTED);
  });

  test("the federation service names the node and lists no peers yet", async () => {
    const response = await fetch(`http://127.0.0.1:${node.httpPort}/annals.federation.v1.FederationService/GetNodeInfo`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    const info = (await response.json()) as { nodeId: string; publicKeyJwk: string };
    assert.match(info.nodeId, /^spiffe:\/\/annals\.local\/node\//);
    assert.equal(JSON.parse(info.publicKeyJwk).kty, "OKP");
  });
});

describe("shutdown", () => {
  let database: TestDatabase;
  before(async () => {
    database = await createTestDatabase("node_sigterm");
  });
  after(async () => {
    await database?.drop();
  });

  test("SIGTERM with a server stream open: the stream ends with UNAVAILABLE and the process exits within the grace period", async () => {
    const graceMs = 5000;
    const node = await startServiceProcess({ script: MAIN, env: { ...database.env, ANNALS_SHUTDOWN_GRACE_MS: String(graceMs) } });
    const definition = protoLoader.loadSync("annals/diag/v1/diag_service.proto", { includeDirs: [PROTO_ROOT] });
    const Diag = (grpc.loadPackageDefinition(definition) as any).annals.diag.v1.DiagService;
    const client = new Diag(`127.0.0.1:${node.grpcPort}`, grpc.credentials.createInsecure());
    try {
      const call = client.Ticks({ count: 0, intervalMs: 50 });
      const status = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
      const failure = new Promise<grpc.ServiceError>((resolve) => call.on("error", resolve));
      await new Promise((resolve) => call.once("data", resolve));
      const exit = await node.stop("SIGTERM");
      const ended = await status;
      assert.equal(ended.code, grpc.status.UNAVAILABLE, `status ${ended.code}: ${ended.details}`);
      assert.match(ended.details, /shutting down/);
      assert.equal((await failure).code, grpc.status.UNAVAILABLE);
      assert.equal(exit.code, 0, `exit ${JSON.stringify(exit)}\n${node.output()}`);
      assert.ok(exit.elapsedMs < graceMs, `exited after ${exit.elapsedMs} ms`);
    } finally {
      client.close();
      await node.stop("SIGKILL");
    }
  });
});

describe("configuration errors", () => {
  const cases: Array<[string, Record<string, string>, string]> = [
    ["a DATABASE_URL that is not a PostgreSQL URL", { DATABASE_URL: "mysql://db.example/annals" }, "DATABASE_URL"],
    ["a DATABASE_URL that does not parse", { DATABASE_URL: "not a url" }, "DATABASE_URL"],
    ["a port that is not a number", { ANNALS_PORT: "fifty" }, "ANNALS_PORT"],
    ["a port out of range", { ANNALS_HTTP_PORT: "70000" }, "ANNALS_HTTP_PORT"],
    ["auth off on a public address", { ANNALS_HOST: "0.0.0.0", ANNALS_AUTH: "off" }, "ANNALS_AUTH"],
  ];
  for (const [label, env, variable] of cases) {
    test(`${label} stops the node with one line naming ${variable}`, async () => {
      const result = await runProcessToExit([MAIN], { ANNALS_DATA_DIR: ":memory:", ...env });
      assert.equal(result.code, 2, result.stderr);
      const lines = result.stderr.trim().split("\n");
      assert.equal(lines.length, 1, `one line, got:\n${result.stderr}`);
      assert.match(lines[0]!, new RegExp(`^annals-node: configuration error: ${variable}\\b`));
      assert.doesNotMatch(result.stderr, /at .*\.js:\d+/, "no stack trace");
    });
  }
});
