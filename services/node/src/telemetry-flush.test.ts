// The server owns its telemetry and flushes it on shutdown: the spans of
// calls made just before SIGTERM reach the OTLP collector (a sink in this
// test), with the database queries of a call as its child spans. The batch span processor holds spans for 5 s before it exports;
// a process that exits without flushing loses them.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { createAnnalsClients } from "@annals/client";
import { createTestDatabase } from "@annals/db/testing";
import { startServiceProcess } from "@annals/runtime/testing";

const MAIN = fileURLToPath(new URL("./main.js", import.meta.url));

test("SIGTERM: the spans of the last calls are exported to the OTLP endpoint before the process exits", async () => {
  const bodies: Buffer[] = [];
  const sink = createServer((request: IncomingMessage, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      if (request.url === "/v1/traces") bodies.push(Buffer.concat(chunks));
      response.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => sink.listen(0, "127.0.0.1", resolve));
  const database = await createTestDatabase("node_otlp_flush");
  const node = await startServiceProcess({
    script: MAIN,
    env: { ...database.env, OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(sink.address() as AddressInfo).port}` },
  });
  try {
    const clients = createAnnalsClients({ baseUrl: `http://127.0.0.1:${node.grpcPort}` });
    await clients.diag.ping({ data: new TextEncoder().encode("last call") });
    await clients.log.append({ logId: "orders", entry: { kind: "order.placed", body: { case: "payload", value: { id: 1 } } } });
    const exit = await node.stop("SIGTERM");
    assert.equal(exit.code, 0);
    const exported = Buffer.concat(bodies).toString("latin1");
    assert.ok(exported.includes("annals.diag.v1.DiagService/Ping"), `the Ping span arrived (${bodies.length} export requests)`);
    assert.ok(exported.includes("annals.log.v1.LogService/Append"), "the Append span arrived");
    // The database work of the Append, as child spans of it.
    assert.ok(exported.includes("db.transaction"), "the Append's transaction span arrived");
    assert.ok(exported.includes("db.query insert"), "its insert statement's span arrived");
  } finally {
    await node.stop("SIGKILL");
    await database.drop();
    sink.close();
  }
});
