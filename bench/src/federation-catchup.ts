// Federation catch-up: node B mirrors a log of node A that already holds N
// entries, with full verification, against a raw multi-row INSERT of the same
// rows into a copy of log.entries on B's database, measured in the same run.
import { fileURLToPath } from "node:url";
import pg from "pg";
import { createAnnalsClients, type AnnalsClients } from "@annals/client";
import { signDevToken } from "@annals/runtime";
import { startServiceProcess, type ServiceProcess } from "@annals/runtime/testing";
import { createBenchDatabase, type BenchDatabase } from "./bench-database.js";
import { BENCH_SECRET } from "./bench-token.js";
import { formatTable } from "./table.js";

export interface CatchupBenchOptions {
  entries: number;
}

const NODE_MAIN = fileURLToPath(new URL("../../services/node/dist/main.js", import.meta.url));
const A = "spiffe://bench.example/annals/a";
const B = "spiffe://bench.example/annals/b";
const COLUMNS = ["log_id", "seq", "uuid", "kind", "source_id", "sim_time", "wall_time_us", "req_id", "metadata", "payload", "payload_digest", "prev_checksum", "checksum"];

async function startNode(database: BenchDatabase, nodeId: string): Promise<{ process: ServiceProcess; clients: AnnalsClients }> {
  const process = await startServiceProcess({
    script: NODE_MAIN,
    env: { DATABASE_URL: database.url, ANNALS_AUTH_JWT_SECRET: BENCH_SECRET, ANNALS_NODE_ID: nodeId },
  });
  const token = await signDevToken({ secret: BENCH_SECRET, subject: "bench", roles: ["admin"], expiresIn: "2h" });
  return { process, clients: createAnnalsClients({ baseUrl: `http://127.0.0.1:${process.grpcPort}`, token, unaryTimeoutMs: 120_000 }) };
}

export async function federationCatchup(options: CatchupBenchOptions): Promise<void> {
  const databaseA = await createBenchDatabase("fed_a");
  const databaseB = await createBenchDatabase("fed_b");
  const started: ServiceProcess[] = [];
  console.log(
    `federation-catchup: two node processes (services/node/dist/main.js) on PostgreSQL databases ${databaseA.name} and ${databaseB.name}\n` +
      `at ${databaseA.host}; A's log holds ${options.entries} entries of ~60 bytes of JSON; B registers A with the log mirrored and pulls it\n` +
      "(Pull stream in frames of up to 100 entries, every checksum and link verified, batches of up to 1,000 stored by AppendReplicated,\n" +
      "the mirror's head being the replication's position). Baseline in the same\n" +
      "run: the same rows, read from A's database beforehand, inserted into a copy of log.entries on B's database with pg, 1,000 rows per\n" +
      "multi-row INSERT (autocommit): the storage floor, without transport or verification. ratio = entries/s ÷ raw INSERT rows/s.\n",
  );
  try {
    const a = await startNode(databaseA, A);
    started.push(a.process);
    const b = await startNode(databaseB, B);
    started.push(b.process);
    for (let first = 0; first < options.entries; first += 1000) {
      const size = Math.min(1000, options.entries - first);
      await a.clients.log.appendBatch({ logId: "orders", entries: Array.from({ length: size }, (_, i) => ({ kind: "order.placed", body: { case: "payload" as const, value: { n: first + i, note: "federation benchmark" } } })) });
    }

    const keyOf = async (clients: AnnalsClients) => (await clients.federation.getNodeInfo({})).publicKeyJwk;
    await a.clients.federation.registerPeer({ peer: { nodeId: B, url: "http://127.0.0.1:1", publicKeyJwk: await keyOf(b.clients), servedLogs: ["orders"] } });
    const mirror = `mirror/${A.slice("spiffe://".length)}/orders`;
    const head = async () => {
      try {
        return (await b.clients.log.getLog({ logId: mirror })).head?.lastSeq ?? 0n;
      } catch {
        return 0n;
      }
    };
    const catchupStart = performance.now();
    await b.clients.federation.registerPeer({ peer: { nodeId: A, url: `http://127.0.0.1:${a.process.grpcPort}`, publicKeyJwk: await keyOf(a.clients), mirroredLogs: ["orders"] } });
    while ((await head()) < BigInt(options.entries)) await new Promise((resolve) => setTimeout(resolve, 20));
    const catchupSeconds = (performance.now() - catchupStart) / 1000;
    const verified = await b.clients.log.verify({ logId: mirror });

    const rawSeconds = await rawInsert(databaseA, databaseB, options.entries);
    const rows = [
      ["federation catch-up (Pull → verify → AppendReplicated)", String(options.entries), catchupSeconds.toFixed(2), (options.entries / catchupSeconds).toFixed(0)],
      ["raw multi-row INSERT with pg (baseline)", String(options.entries), rawSeconds.toFixed(2), (options.entries / rawSeconds).toFixed(0)],
    ].map((row) => [...row, (Number(row[3]) / (options.entries / rawSeconds)).toFixed(2)]);
    console.log(formatTable(["case", "entries", "seconds", "entries/s", "ratio"], rows));
    console.log(`\nB's mirror after the catch-up: Verify ${verified.valid ? "valid" : "INVALID"}, ${verified.checkedCount} entries checked.`);
  } finally {
    for (const process of started.reverse()) await process.stop();
    await databaseA.drop();
    await databaseB.drop();
  }
}

/** Reads A's rows, then times inserting them into a copy of log.entries on B's database. */
async function rawInsert(from: BenchDatabase, to: BenchDatabase, count: number): Promise<number> {
  const source = new pg.Client({ connectionString: from.url });
  const target = new pg.Client({ connectionString: to.url });
  await source.connect();
  await target.connect();
  try {
    const { rows } = await source.query(`select ${COLUMNS.join(", ")} from log.entries where log_id = 'orders' order by seq limit $1`, [count]);
    await target.query("create table public.raw_entries (like log.entries including all)");
    const started = performance.now();
    for (let first = 0; first < rows.length; first += 1000) {
      const values: unknown[] = [];
      const tuples: string[] = [];
      for (const row of rows.slice(first, first + 1000)) {
        tuples.push(`(${COLUMNS.map((_, i) => `$${values.length + i + 1}`).join(",")})`);
        values.push(...COLUMNS.map((column) => (column === "metadata" || column === "payload" ? JSON.stringify(row[column]) : row[column])));
      }
      await target.query(`insert into public.raw_entries (${COLUMNS.join(",")}) values ${tuples.join(",")}`, values);
    }
    return (performance.now() - started) / 1000;
  } finally {
    await source.end();
    await target.end();
  }
}
