// SIGTERM with an open EventSource, on a real node process with default
// settings: the SSE stream gets a closing `annals:error` event (unavailable:
// reconnect elsewhere) and closes with the drain, so the process exits
// without waiting out the shutdown grace (it used to wait the whole grace,
// 10 s, and cut the client without a word).
import assert from "node:assert/strict";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { EventSource } from "eventsource";
import { createAnnalsClients } from "@annals/client";
import { createTestDatabase } from "@annals/db/testing";
import { startServiceProcess, until } from "@annals/runtime/testing";

const MAIN = fileURLToPath(new URL("./main.js", import.meta.url));

test("SIGTERM: an open EventSource gets a closing event and the node exits with the drain, not after the grace", async (t) => {
  const database = await createTestDatabase("node_sigterm_sse");
  const node = await startServiceProcess({ script: MAIN, env: database.env });
  try {
    const log = createAnnalsClients({ baseUrl: `http://127.0.0.1:${node.grpcPort}` }).log;
    await log.append({ logId: "orders", entry: { kind: "order.placed", body: { case: "payload", value: { id: 1 } } } });
    const source = new EventSource(`http://127.0.0.1:${node.httpPort}/v1/logs/orders/events?kinds=%3E`);
    const seen: string[] = [];
    let closing: { code: string; message: string } | undefined;
    source.addEventListener("order.placed", (event) => seen.push(event.lastEventId));
    source.addEventListener("annals:caught-up", () => seen.push("caught-up"));
    source.addEventListener("annals:error", (event) => {
      closing = JSON.parse(event.data) as typeof closing;
      source.close();
    });
    await until("the stream to catch up", async () => seen.includes("caught-up"));
    const exit = await node.stop("SIGTERM");
    source.close();
    t.diagnostic(`exited ${exit.elapsedMs} ms after SIGTERM`);
    assert.deepEqual(seen, ["1", "caught-up"]);
    assert.equal(closing?.code, "unavailable", "the stream was told why it ends");
    assert.match(closing?.message ?? "", /shutting down/);
    assert.equal(exit.code, 0);
    assert.doesNotMatch(node.output(), /grace period over/, "nothing was left for the grace period to cut");
  } finally {
    await node.stop("SIGKILL");
    await database.drop();
  }
});
