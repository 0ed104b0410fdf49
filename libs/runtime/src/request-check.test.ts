// Requests that do not decode, or that hold what no store can take, are the
// client's fault: INVALID_ARGUMENT on both listeners, never INTERNAL, and
// counted as such in /metrics (issue "Hardening", items 3 and 4).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { kvV1, logV1 } from "@annals/proto";
import { signDevToken } from "./auth.js";
import { createLogger } from "./logger.js";
import { defineService } from "./service.js";
import { startServer, type RunningServer } from "./server.js";
import { createTelemetry } from "./telemetry.js";

const SECRET = "request-check-test-secret-at-least-32-bytes";

// Real contracts with strings, enums and nested JSON; the handlers only echo.
const echoLog = defineService({
  service: logV1.LogService,
  access: Object.fromEntries(logV1.LogService.methods.map((method) => [method.localName, "authenticated"])) as never,
  impl: {
    async read(request) {
      return { nextPageToken: `${request.logId}:${request.direction}` };
    },
    async append() {
      return { result: { seq: 1n } };
    },
  },
});
const echoKv = defineService({
  service: kvV1.KvService,
  access: Object.fromEntries(kvV1.KvService.methods.map((method) => [method.localName, "authenticated"])) as never,
  impl: {
    async set(request) {
      // Tells the test which condition the handler saw.
      return { written: true, previousFound: request.condition === kvV1.SetCondition.IF_ABSENT };
    },
  },
});

let server: RunningServer;
let token: string;

before(async () => {
  server = await startServer({
    name: "request-check-test",
    services: [echoLog, echoKv],
    diag: false,
    grpcPort: 0,
    httpPort: 0,
    auth: { mode: "jwt", secret: SECRET },
    logger: createLogger({ name: "request-check-test", level: "silent" }),
    telemetry: createTelemetry({ serviceName: "request-check-test" }),
  });
  token = await signDevToken({ secret: SECRET, subject: "tester", roles: [] });
});

after(async () => {
  await server.shutdown("tests done");
});

/** A unary gRPC call with raw request bytes, as a broken or hostile client sends them. */
function rawGrpcCall(path: string, body: Uint8Array): Promise<grpc.ServiceError | null> {
  const client = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${token}`);
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      path,
      (bytes: Buffer) => bytes,
      (bytes: Buffer) => bytes,
      Buffer.from(body),
      metadata,
      (error) => {
        client.close();
        resolve(error);
      },
    );
  });
}

/** A Struct nested `depth` levels deep, as protobuf bytes: {"a":{"a":…}}. */
function nestedStructBytes(depth: number): Uint8Array {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = { a: value };
  return toBinary(logV1.AppendRequestSchema, create(logV1.AppendRequestSchema, { logId: "x", entry: { kind: "a.b", body: { case: "payload", value: value as never } } }));
}

const READ = "/annals.log.v1.LogService/Read";
const APPEND = "/annals.log.v1.LogService/Append";

describe("the gRPC port refuses what it cannot decode with INVALID_ARGUMENT", () => {
  const cases: [string, string, Uint8Array][] = [
    ["truncated bytes", READ, Uint8Array.of(0x0a, 0xff, 0x01, 0x61)],
    ["garbage", READ, Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)],
    ["invalid UTF-8 in log_id", READ, Uint8Array.of(0x0a, 0x02, 0xc3, 0x28)],
    ["nesting past the decoder's limit", APPEND, nestedStructBytes(60)],
  ];
  for (const [label, path, body] of cases) {
    test(label, async () => {
      const error = await rawGrpcCall(path, body);
      assert.equal(error?.code, grpc.status.INVALID_ARGUMENT, `${label}: ${error?.details}`);
      assert.match(error.details, /could not be decoded/);
    });
  }

  test("an enum number the contract does not define is refused, naming the field", async () => {
    const body = Uint8Array.of(0x0a, 0x01, 0x78, 0x18, 0x63); // log_id "x", direction 99
    const error = await rawGrpcCall(READ, body);
    assert.equal(error?.code, grpc.status.INVALID_ARGUMENT);
    assert.match(error.details, /^direction: 99 is not a value of annals\.log\.v1\.ReadDirection/);
    assert.equal(await rawGrpcCall(READ, Uint8Array.of(0x0a, 0x01, 0x78, 0x18, 0x02)), null, "a defined value passes");
  });
});

async function connectCall(path: string, contentType: string, body: Uint8Array | string) {
  const response = await fetch(`http://127.0.0.1:${server.httpPort}${path}`, {
    method: "POST",
    headers: { "content-type": contentType, authorization: `Bearer ${token}`, "connect-protocol-version": "1" },
    body,
  });
  return { status: response.status, headers: response.headers, bytes: new Uint8Array(await response.arrayBuffer()) };
}

function json(bytes: Uint8Array): { code?: string; message?: string; nextPageToken?: string; previousFound?: boolean } {
  return JSON.parse(new TextDecoder().decode(bytes)) as never;
}

describe("the HTTP port refuses what it cannot decode with INVALID_ARGUMENT", () => {
  test("Connect binary: truncated bytes are a 400 invalid_argument, not a 500", async () => {
    const { status, bytes } = await connectCall(READ, "application/proto", Uint8Array.of(0x0a, 0xff, 0x01, 0x61));
    assert.equal(status, 400);
    assert.equal(json(bytes).code, "invalid_argument");
    assert.match(json(bytes).message!, /could not be decoded/);
  });

  test("gRPC-Web: garbage ends with grpc-status 3", async () => {
    const frame = Uint8Array.of(0, 0, 0, 0, 4, 0x0a, 0xff, 0x01, 0x61);
    const { status, bytes } = await connectCall(READ, "application/grpc-web+proto", frame);
    assert.equal(status, 200);
    const trailer = new TextDecoder().decode(bytes.subarray(5));
    assert.equal(bytes[0], 0x80, "a trailer frame");
    assert.match(trailer, /grpc-status: ?3\r\n/);
    assert.match(decodeURIComponent(trailer), /could not be decoded/);
  });

  test("Connect JSON: an unknown field is refused instead of dropped", async () => {
    const { status, bytes } = await connectCall(READ, "application/json", JSON.stringify({ logId: "x", fromSeqq: "3" }));
    assert.equal(status, 400);
    assert.equal(json(bytes).code, "invalid_argument");
    assert.match(json(bytes).message!, /fromSeqq/);
  });

  test('Connect JSON: a misspelt enum name no longer turns a conditional Set into an overwrite (regression "SET_CONDITION_IF_ABSNT")', async () => {
    const path = "/annals.kv.v1.KvService/Set";
    const misspelt = await connectCall(path, "application/json", JSON.stringify({ key: "aw==", value: "dg==", condition: "SET_CONDITION_IF_ABSNT" }));
    assert.equal(misspelt.status, 400);
    assert.equal(json(misspelt.bytes).code, "invalid_argument");
    const right = await connectCall(path, "application/json", JSON.stringify({ key: "aw==", value: "dg==", condition: "SET_CONDITION_IF_ABSENT" }));
    assert.equal(right.status, 200);
    assert.equal(json(right.bytes).previousFound, true, "the condition reached the handler");
  });

  test("Connect JSON: a lone surrogate or a NUL in a string is refused, naming the field", async () => {
    for (const logId of ["\\ud800", "a\\u0000b", "\\udc00x"]) {
      const { status, bytes } = await connectCall(READ, "application/json", `{"logId":"${logId}"}`);
      assert.equal(status, 400, logId);
      assert.equal(json(bytes).code, "invalid_argument");
      // protobuf-es refuses lone surrogates in string fields itself; NUL is ours to refuse.
      assert.match(json(bytes).message!, /^log_id: contains a NUL|ReadRequest\.log_id from JSON: expected string: invalid UTF8/);
    }
    const ok = await connectCall(READ, "application/json", JSON.stringify({ logId: "ok-\u00e9\u{1F600}" }));
    assert.equal(ok.status, 200, "well-formed text, non-ASCII and astral included, passes");
  });

  test("so are the strings and keys of a JSON payload (a lone surrogate there passes protobuf-es)", async () => {
    for (const payload of ['{"s":"\\ud800"}', '{"\\udbff":1}', '{"a":[{"b":"x\\u0000"}]}']) {
      const body = `{"logId":"x","entry":{"kind":"a.b","payload":${payload}}}`;
      const { status, bytes } = await connectCall(APPEND, "application/json", body);
      assert.equal(status, 400, payload);
      assert.match(json(bytes).message!, /^entry\.payload/);
    }
  });

  test("map keys are checked too", async () => {
    const body = `{"logId":"x","entry":{"kind":"a.b","payload":{},"metadata":{"k\\u0000":"v"}}}`;
    const { status, bytes } = await connectCall(APPEND, "application/json", body);
    assert.equal(status, 400);
    assert.match(json(bytes).message!, /^entry\.metadata key: contains a NUL/);
  });
});

test("refused requests are counted as InvalidArgument in /metrics, never as Internal", async () => {
  await rawGrpcCall(READ, Uint8Array.of(0xff, 0xff));
  await connectCall(READ, "application/proto", Uint8Array.of(0xff, 0xff));
  const text = await (await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).text();
  const count = (listener: string, code: string) =>
    Number(
      new RegExp(`annals_rpc_server_duration_seconds_count\\{[^}]*rpc_method="Read"[^}]*listener="${listener}"[^}]*rpc_grpc_status_code="${code}"[^}]*\\} (\\d+)`).exec(
        text,
      )?.[1] ?? 0,
    );
  assert.ok(count("grpc", "InvalidArgument") >= 1, "gRPC refusals counted");
  assert.ok(count("http", "InvalidArgument") >= 1, "HTTP refusals counted");
  assert.equal(count("grpc", "Internal") + count("http", "Internal"), 0);
});
