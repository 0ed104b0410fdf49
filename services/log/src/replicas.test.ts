// The log service as real processes sharing one database: sequencing across
// replicas, live subscriptions fed by another replica's appends, and SIGKILL
// in the middle of a burst. On PGlite a data directory belongs to one
// process, so there the same tests run with one process (their names say so).
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { createAnnalsClients, type LogClient } from "@annals/client";
import { createTestDatabase, testDatabaseTarget, type TestDatabase } from "@annals/db/testing";
import { signDevToken } from "@annals/runtime";
import { startServiceProcess, type ServiceProcess } from "@annals/runtime/testing";
import { entry, TEST_SECRET } from "./log-harness.js";

const target = testDatabaseTarget();
const replicaCount = target === "postgres" ? 2 : 1;
const where = target === "postgres" ? "2 service processes on one PostgreSQL database" : "1 service process on PGlite (a data dir cannot be shared)";

const databases: TestDatabase[] = [];
const running = new Set<ServiceProcess>();

after(async () => {
  for (const service of running) await service.stop("SIGKILL");
  for (const database of databases) await database.drop();
});

async function startReplica(database: TestDatabase): Promise<ServiceProcess> {
  const service = await startServiceProcess({
    script: fileURLToPath(new URL("./main.js", import.meta.url)),
    env: { ...database.env, ANNALS_AUTH_JWT_SECRET: TEST_SECRET, ANNALS_SHUTDOWN_GRACE_MS: "2000" },
  });
  running.add(service);
  return service;
}

async function stopReplica(service: ServiceProcess, signal: NodeJS.Signals = "SIGTERM") {
  running.delete(service);
  return service.stop(signal);
}

async function clientOf(service: ServiceProcess): Promise<LogClient> {
  const token = await signDevToken({ secret: TEST_SECRET, subject: "replica-test", roles: ["admin"] });
  return createAnnalsClients({ baseUrl: `http://127.0.0.1:${service.grpcPort}`, token, unaryTimeoutMs: 60_000 }).log;
}

async function startCluster(label: string) {
  const database = await createTestDatabase(label);
  databases.push(database);
  const replicas: ServiceProcess[] = [];
  for (let i = 0; i < replicaCount; i++) replicas.push(await startReplica(database));
  return { database, replicas, clients: await Promise.all(replicas.map(clientOf)) };
}

/** Every entry of a log, by paging Read forward. */
async function readAll(client: LogClient, logId: string) {
  const entries = [];
  let pageToken = "";
  for (;;) {
    const page = await client.read({ logId, pageSize: 1000, pageToken });
    entries.push(...page.entries);
    pageToken = page.nextPageToken;
    if (page.entries.length === 0 || page.entries.at(-1)!.seq >= page.head!.lastSeq) return entries;
  }
}

function range(count: number): number[] {
  return Array.from({ length: count }, (_, i) => i + 1);
}

describe(`replicas: ${where}`, () => {
  test("32 concurrent clients append 2,000 entries to one log: seqs are exactly 1..2000 and Verify passes", async () => {
    const { clients } = await startCluster("log_replicas");
    const total = 2000;
    const callers = 32;
    await Promise.all(
      Array.from({ length: callers }, async (_, caller) => {
        const client = clients[caller % clients.length]!;
        for (let n = caller; n < total; n += callers) {
          const { result } = await client.append({ logId: "shared", entry: entry("replica.append", { n }, { requestId: `r-${n}` }) });
          assert.equal(result!.duplicate, false);
        }
      }),
    );
    const entries = await readAll(clients[0]!, "shared");
    assert.deepEqual(
      entries.map((e) => Number(e.seq)),
      range(total),
    );
    assert.equal(new Set(entries.map((e) => e.requestId)).size, total);
    for (const client of clients) {
      const verify = await client.verify({ logId: "shared" });
      assert.equal(verify.valid, true);
      assert.equal(verify.checkedCount, BigInt(total));
    }
  });

  test("a subscriber that joins mid-way while every replica appends gets each seq once, in order", async () => {
    const { clients } = await startCluster("log_replicas_sub");
    const total = 1500;
    let appended = 0;
    let joined!: () => void;
    const halfway = new Promise<void>((resolve) => (joined = resolve));
    const writers = Promise.all(
      Array.from({ length: 16 }, async (_, writer) => {
        const client = clients[writer % clients.length]!;
        for (let n = writer; n < total; n += 16) {
          await client.append({ logId: "live", entry: entry("replica.live", { n }) });
          if (++appended === total / 3) joined();
        }
      }),
    );
    await halfway;
    // Subscribed on the first replica: the entries the others commit reach it only through NOTIFY and re-reading.
    const controller = new AbortController();
    const seqs: number[] = [];
    let caughtUpAt = -1;
    for await (const message of clients[0]!.subscribe({ logId: "live", afterSeq: 0n }, { signal: controller.signal })) {
      if (message.frame.case === "entry") seqs.push(Number(message.frame.value.seq));
      if (message.frame.case === "caughtUp") caughtUpAt = seqs.length;
      if (seqs.length === total) break;
    }
    controller.abort();
    await writers;
    assert.ok(caughtUpAt >= total / 3 && caughtUpAt < total, `caught up after ${caughtUpAt} entries, while appends went on`);
    assert.deepEqual(seqs, range(total));
  });

  test("SIGKILL during a burst: acknowledged appends survive, the chain verifies, retried req_ids are not duplicated", async () => {
    const database = await createTestDatabase("log_replicas_kill");
    databases.push(database);
    const victim = await startReplica(database);
    const client = await clientOf(victim);
    const acked = new Map<string, bigint>();
    const attempted = new Set<string>();
    let killed!: () => void;
    const killNow = new Promise<void>((resolve) => (killed = resolve));
    const burst = Promise.allSettled(
      Array.from({ length: 16 }, async (_, writer) => {
        for (let n = 0; ; n++) {
          const reqId = `k-${writer}-${n}`;
          attempted.add(reqId);
          const { result } = await client.append({ logId: "burst", entry: entry("replica.burst", { writer, n }, { requestId: reqId }) });
          acked.set(reqId, result!.seq);
          if (acked.size === 600) killed();
        }
      }),
    );
    await killNow;
    const exit = await stopReplica(victim, "SIGKILL");
    assert.equal(exit.signal, "SIGKILL");
    const outcomes = await burst;
    assert.ok(outcomes.every((outcome) => outcome.status === "rejected"), "every writer saw the process die");

    const restarted = await startReplica(database);
    const revived = await clientOf(restarted);
    // Retry everything that was attempted, acknowledged or not, as a client would.
    for (const reqId of attempted) {
      const [, writer, n] = reqId.split("-");
      const { result } = await revived.append({ logId: "burst", entry: entry("replica.burst", { writer: Number(writer), n: Number(n) }, { requestId: reqId }) });
      const before = acked.get(reqId);
      if (before !== undefined) {
        assert.equal(result!.seq, before, `${reqId} keeps its seq`);
        assert.equal(result!.duplicate, true);
      }
    }
    const entries = await readAll(revived, "burst");
    assert.deepEqual(
      entries.map((e) => Number(e.seq)),
      range(attempted.size),
    );
    assert.deepEqual(new Set(entries.map((e) => e.requestId)), attempted);
    const verify = await revived.verify({ logId: "burst" });
    assert.equal(verify.valid, true);
    assert.equal(verify.checkedCount, BigInt(attempted.size));
  });
});
