// Every documented command runs: the `sh` and `js` blocks of README.md, in
// order, against a node started with `npm start` (as the README starts it),
// with the documented addresses filled in (the node runs on free ports and its
// own data directory), and the federation walk-through of docs/operations.md
// against two nodes under mTLS. A block that cannot run in a test carries a
// `<!-- not-run: reason -->` marker, which is counted and reported; the
// markers are listed in doc-commands.ts. A block that fails fails this test,
// with its output.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { createTestDatabase, type TestDatabase } from "@annals/db/testing";
import { createAnnalsClients, type LogClient } from "@annals/client";
import { signDevToken } from "@annals/runtime";
import { makeTestCertificates, startServiceProcess, type ServiceProcess } from "@annals/runtime/testing";
import { docBlocks, shellCommands, type DocBlock } from "./doc-commands.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
/**
 * A block's own limit: a command that hangs fails with its output instead of
 * stalling the run. Generous, because `npm start` rebuilds what changed first.
 */
const BLOCK_LIMIT_MS = 300_000;

/** This process's environment without settings that would change what the documented commands do. */
function cleanEnv(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(process.env).filter(([name, value]) => value !== undefined && !/^(ANNALS_|DATABASE_URL$|REDIS_URL$|OTEL_)/.test(name)),
  ) as Record<string, string>;
}

interface Started {
  child: ChildProcess;
  output(): string;
  /** Resolves when the output holds `text`; rejects when the process exits first or after BLOCK_LIMIT_MS. */
  waitFor(text: string | RegExp): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends `signal` to its process group (or to the process alone) and waits for the exit. */
  stop(signal?: NodeJS.Signals, group?: boolean): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function start(command: readonly string[], cwd: string, env: Record<string, string>): Started {
  // Its own process group, as a terminal would give it, so Ctrl-C (SIGINT to the group) can be sent.
  const child = spawn(command[0]!, command.slice(1), { cwd, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let output = "";
  const waiters = new Set<() => void>();
  const wake = () => waiters.forEach((waiter) => waiter());
  child.stdout!.on("data", (chunk: Buffer) => ((output += chunk.toString()), wake()));
  child.stderr!.on("data", (chunk: Buffer) => ((output += chunk.toString()), wake()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("exit", (code, signal) => (resolve({ code, signal }), wake())));
  const signalGroup = (signal: NodeJS.Signals, group: boolean) => {
    try {
      process.kill(group ? -child.pid! : child.pid!, signal);
    } catch {
      // already gone
    }
  };
  return {
    child,
    output: () => output,
    exited,
    waitFor: (text) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => finish(new Error(`no ${text} in the output within ${BLOCK_LIMIT_MS} ms`)), BLOCK_LIMIT_MS);
        const check = () => {
          const found = typeof text === "string" ? output.includes(text) : text.test(output);
          if (found) finish();
          else if (child.exitCode !== null || child.signalCode !== null) finish(new Error(`it exited (${child.exitCode ?? child.signalCode}) before ${text} showed`));
        };
        const finish = (error?: Error) => {
          clearTimeout(timer);
          waiters.delete(check);
          if (error) reject(new Error(`${error.message}; output:\n${output}`));
          else resolve(output);
        };
        waiters.add(check);
        check();
      }),
    stop: async (signal = "SIGINT", group = true) => {
      if (child.exitCode === null && child.signalCode === null) signalGroup(signal, group);
      const timer = setTimeout(() => signalGroup("SIGKILL", true), BLOCK_LIMIT_MS);
      const exit = await exited;
      clearTimeout(timer);
      return exit;
    },
  };
}

/** Runs to the end; the result with everything it printed. */
async function runToEnd(command: readonly string[], cwd: string, env: Record<string, string>) {
  const started = start(command, cwd, env);
  const timer = setTimeout(() => void started.stop("SIGKILL"), BLOCK_LIMIT_MS);
  const exit = await started.exited;
  clearTimeout(timer);
  return { ...exit, output: started.output() };
}

const READY = /annals node ready: gRPC on 127\.0\.0\.1:(\d+) .*HTTP on http:\/\/127\.0\.0\.1:(\d+)/;

/**
 * Runs the blocks of one page in order. `addresses` maps documented
 * host:port pairs to the real ones (filled in as nodes start), `paths` maps
 * documented file names to real paths.
 */
class PageRun {
  readonly background: Started[] = [];
  readonly notRun: string[] = [];
  commands = 0;
  private snippets = 0;
  /** With carryExports: the `export` lines of the blocks run so far, as a terminal session keeps them. */
  private readonly exports: string[] = [];

  constructor(
    readonly cwd: string,
    readonly env: Record<string, string>,
    readonly addresses: Map<string, string>,
    readonly paths: Array<[RegExp, string]>,
    readonly carryExports = false,
  ) {}

  private remember(block: DocBlock): void {
    if (!this.carryExports || block.language !== "sh") return;
    for (const line of block.code.split("\n")) if (line.startsWith("export ")) this.exports.push(`${line}\n`);
  }

  fill(code: string): string {
    let filled = code;
    for (const [pattern, path] of this.paths) filled = filled.replace(pattern, path);
    // A node the page starts gets free ports; which ones is known once it says it is ready.
    filled = filled.replace(/\b(ANNALS_PORT|ANNALS_HTTP_PORT)=(\d+)/g, (_, name: string) => `${name}=0`);
    for (const [documented, real] of this.addresses) filled = filled.replace(new RegExp(`\\b${documented.replace(/\./g, "\\.")}\\b`, "g"), real);
    return filled;
  }

  private command(block: DocBlock): string[] {
    const code = this.fill(block.code);
    if (block.language === "js") {
      const file = join(this.cwd, `snippet-${++this.snippets}.mjs`);
      writeFileSync(file, code);
      return [process.execPath, file];
    }
    return ["bash", "-c", `set -euo pipefail\n${this.fill(this.exports.join(""))}${code}`];
  }

  private describe(block: DocBlock, output: string, exit: { code: number | null; signal: NodeJS.Signals | null }): string {
    return `${block.file}:${block.line} failed (exit ${exit.code ?? exit.signal}):\n${this.fill(block.code)}\noutput:\n${output}`;
  }

  async run(block: DocBlock): Promise<void> {
    this.commands += block.language === "sh" ? shellCommands(block.code).length : 1;
    switch (block.mode.kind) {
      case "not-run":
        this.notRun.push(`${block.file}:${block.line}: ${block.mode.reason}`);
        return;
      case "run":
      case "at-end": {
        const result = await runToEnd(this.command(block), this.cwd, this.env);
        assert.equal(result.code, 0, this.describe(block, result.output, result));
        this.remember(block);
        return;
      }
      case "retry": {
        let result = await runToEnd(this.command(block), this.cwd, this.env);
        for (let attempt = 1; result.code !== 0 && attempt < 60; attempt++) {
          await new Promise((resolve) => setTimeout(resolve, 500));
          result = await runToEnd(this.command(block), this.cwd, this.env);
        }
        assert.equal(result.code, 0, this.describe(block, result.output, result));
        return;
      }
      case "until": {
        const started = start(this.command(block), this.cwd, this.env);
        try {
          await started.waitFor(block.mode.text);
        } finally {
          await started.stop("SIGINT");
        }
        return;
      }
      case "background": {
        const started = start(this.command(block), this.cwd, this.env);
        this.background.push(started);
        const output = await started.waitFor(block.mode.text);
        const ready = READY.exec(output);
        if (ready) {
          // The ports the block asked for are the ports it got.
          const asked = (name: string) => new RegExp(`\\b${name}=(\\d+)`).exec(block.code)?.[1];
          const grpc = asked("ANNALS_PORT");
          const http = asked("ANNALS_HTTP_PORT");
          if (grpc) this.addresses.set(`127.0.0.1:${grpc}`, `127.0.0.1:${ready[1]}`);
          if (http) this.addresses.set(`127.0.0.1:${http}`, `127.0.0.1:${ready[2]}`);
        }
        return;
      }
    }
  }

  /** Ctrl-C to every process a block started; each must exit. */
  async stopBackground(): Promise<void> {
    for (const started of this.background.reverse()) {
      const exit = await started.stop("SIGINT");
      assert.notEqual(exit.signal, "SIGKILL", `a background block did not stop on SIGINT:\n${started.output()}`);
    }
  }
}

function workDir(name: string): string {
  // Inside the repository, so that `npx annals` and `npx buf` resolve to its own bins.
  const dir = join(ROOT, ".doc-test", `${name}-${process.pid}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

describe("README.md: every command runs", { timeout: 900_000 }, () => {
  const blocks = docBlocks("README.md", readFileSync(join(ROOT, "README.md"), "utf8"));
  let dir: string;
  let database: TestDatabase;
  let node: Started;
  let page: PageRun;
  const dataDirs = () => ({ first: database.env.ANNALS_DATA_DIR ?? join(dir, "data-1"), second: join(dir, "data-2") });

  before(async () => {
    dir = workDir("readme");
    database = await createTestDatabase("readme_commands");
    // The README's start command, on free ports and a database of this test's own.
    node = start(["npm", "start"], ROOT, { ...cleanEnv(), ANNALS_PORT: "0", ANNALS_HTTP_PORT: "0", ...database.env });
    const ready = READY.exec(await node.waitFor(READY))!;
    const addresses = new Map([
      ["127.0.0.1:50051", `127.0.0.1:${ready[1]}`],
      ["127.0.0.1:8080", `127.0.0.1:${ready[2]}`],
    ]);
    const { first, second } = dataDirs();
    page = new PageRun(dir, { ...cleanEnv(), ANNALS_URL: `http://127.0.0.1:${ready[1]}` }, addresses, [
      [/\.annals-data-2\b/g, second],
      [/\.annals-data\b/g, first],
    ]);
  });

  after(async () => {
    await page?.stopBackground().catch(() => undefined);
    await node?.stop("SIGKILL");
    await database?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("the README has blocks of each kind", () => {
    const kinds = new Set(blocks.map((block) => block.mode.kind));
    for (const kind of ["run", "not-run", "until", "background", "retry", "at-end"]) assert.ok(kinds.has(kind as never), kind);
  });

  for (const block of blocks.filter((b) => b.mode.kind !== "at-end")) {
    test(`README.md:${block.line} ${(shellCommands(block.code)[0] ?? block.code).slice(0, 90)}`, { timeout: 600_000 }, async (t) => {
      await page.run(block);
      if (block.mode.kind === "not-run") t.diagnostic(`not run: ${block.mode.reason}`);
    });
  }

  test("stop: Ctrl-C stops the second node and SIGINT to the npm process stops the first; then the reset blocks run", async (t) => {
    await page.stopBackground();
    const exit = await node.stop("SIGINT", false);
    assert.notEqual(exit.signal, "SIGKILL");
    assert.match(node.output(), /"msg":"shut down"/, "the node shut down cleanly");
    for (const block of blocks.filter((b) => b.mode.kind === "at-end")) await page.run(block);
    const { first, second } = dataDirs();
    assert.equal(existsSync(second), false, "the reset removed the second node's data");
    if (database.env.ANNALS_DATA_DIR) assert.equal(existsSync(first), false, "the reset removed the first node's data");
    t.diagnostic(`README.md: ${blocks.length} blocks, ${page.commands} commands; ${page.notRun.length} blocks not run:\n${page.notRun.join("\n")}`);
  });
});

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
    for (const service of processes.reverse()) await service.stop("SIGTERM");
    for (const database of databases) await database.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    processes = [];
    databases = [];
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
