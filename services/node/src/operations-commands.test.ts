// Every documented command runs: the federation walk-through of
// docs/operations.md ("Setting up federation between two clusters"), against
// two clusters as the guide deploys them (a log service and a federation
// service each, the federation port under mTLS, auth on).
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createTestDatabase, type TestDatabase } from "@annals/db/testing";
import { docBlocks, shellCommands } from "./doc-commands.js";
import { PageRun, ROOT, cleanEnv, workDir } from "./doc-runner.js";
import { createAnnalsClients, type LogClient } from "@annals/client";
import { signDevToken } from "@annals/runtime";
import { makeTestCertificates, startServiceProcess, type ServiceProcess } from "@annals/runtime/testing";

describe("docs/operations.md: the federation walk-through runs under mTLS", { timeout: 900_000 }, () => {
  // As the guide deploys it: per cluster a log service and a federation
  // service, whose gRPC port (the one the guide exposes) serves mTLS; auth on.
  const SECTION = "## Setting up federation between two clusters";
  const blocks = docBlocks("docs/operations.md", readFileSync(join(ROOT, "docs/operations.md"), "utf8"), SECTION);
  const EU = "spiffe://acme.example/annals/eu-1";
  const US = "spiffe://acme.example/annals/us-1";
  const SECRET = "operations-walk-through-secret-of-32-bytes-or-more";
  let dir: string;
  let databases: TestDatabase[] = [];
  let processes: ServiceProcess[] = [];
  let page: PageRun;
  const logs = new Map<string, LogClient>();

  before(async () => {
    dir = workDir("operations");
    // The certificates step 1 asks for: a shared CA, each node's certificate (URI SAN = its id), and an operator's.
    mkdirSync(join(dir, "pki"));
    const certs = makeTestCertificates(join(dir, "pki"), { "eu-1": EU, "us-1": US, admin: "spiffe://acme.example/operator/admin" });
    copyFileSync(certs.ca, join(dir, "ca.crt"));
    copyFileSync(certs.admin!.certFile, join(dir, "admin.crt"));
    copyFileSync(certs.admin!.keyFile, join(dir, "admin.key"));
    const addresses = new Map<string, string>();
    const auth = { ANNALS_AUTH_JWT_SECRET: SECRET };
    const admin = await signDevToken({ secret: SECRET, subject: "operator", roles: ["admin"], expiresIn: "2h" });
    for (const [name, id] of [["eu-1", EU], ["us-1", US]] as const) {
      const logDb = await createTestDatabase(`ops_${name.replace("-", "_")}_log`);
      const federationDb = await createTestDatabase(`ops_${name.replace("-", "_")}_fed`);
      databases.push(logDb, federationDb);
      const log = await startServiceProcess({ script: join(ROOT, "services/log/dist/main.js"), env: { ...auth, ...logDb.env } });
      processes.push(log);
      const cert = certs[name]!;
      const federation = await startServiceProcess({
        script: join(ROOT, "services/federation/dist/main.js"),
        env: {
          ...auth,
          ...federationDb.env,
          ANNALS_NODE_ID: id,
          ANNALS_LOG_URL: `http://127.0.0.1:${log.grpcPort}`,
          ANNALS_LOG_TOKEN: await signDevToken({ secret: SECRET, subject: `federation-${name}`, roles: ["log.read", "log.replicate", "log.relay"], expiresIn: "2h" }),
          ANNALS_TLS_CERT_FILE: cert.certFile,
          ANNALS_TLS_KEY_FILE: cert.keyFile,
          ANNALS_TLS_CLIENT_CA_FILE: certs.ca,
          ANNALS_FEDERATION_TLS_CA_FILE: certs.ca,
          ANNALS_FEDERATION_TLS_CERT_FILE: cert.certFile,
          ANNALS_FEDERATION_TLS_KEY_FILE: cert.keyFile,
        },
      });
      processes.push(federation);
      addresses.set(`annals-${name}.acme.example:50051`, `127.0.0.1:${federation.grpcPort}`);
      logs.set(name, createAnnalsClients({ baseUrl: `http://127.0.0.1:${log.grpcPort}`, token: admin, unaryTimeoutMs: 60_000 }).log);
    }
    // What step 3 asks for before the commands: the origin log exists on eu-1.
    await logs.get("eu-1")!.append({ logId: "orders", entry: { kind: "order.placed", body: { case: "payload", value: { id: "ord-1" } } } });
    // The operator's token (step 3: "a token with admin if auth is on"); the
    // page's host names are the services' addresses here, and its `export`
    // lines carry from block to block as in one terminal.
    page = new PageRun(dir, { ...cleanEnv(), ANNALS_TOKEN: admin }, addresses, [], true);
  });

  after(async () => {
    try {
      for (const service of processes.reverse()) await service.stop("SIGTERM");
      for (const database of databases) await database.drop();
    } finally {
      if (dir) rmSync(dir, { recursive: true, force: true });
      processes = [];
      databases = [];
    }
  });

  test("the walk-through has commands", () => {
    assert.ok(blocks.filter((block) => block.mode.kind !== "not-run").length >= 3);
  });

  for (const block of blocks) {
    test(`docs/operations.md:${block.line} ${(shellCommands(block.code)[0] ?? block.code).slice(0, 90)}`, { timeout: 600_000 }, async (t) => {
      await page.run(block);
      if (block.mode.kind === "not-run") t.diagnostic(`not run: ${block.mode.reason}`);
    });
  }

  test("after the walk-through, us-1 mirrors eu-1's orders", async () => {
    const mirror = logs.get("us-1")!;
    let head = 0n;
    for (let attempt = 0; head < 1n && attempt < 240; attempt++) {
      head = (await mirror.listLogs({ prefix: "mirror/" })).logs.find((log) => log.logId === "mirror/acme.example/annals/eu-1/orders")?.lastSeq ?? 0n;
      if (head < 1n) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    assert.equal(head, 1n, "the mirror holds eu-1's entry");
  });
});
