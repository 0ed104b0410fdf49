// The `annals` CLI's log verbs against a running log service: logs, append
// (argument and stdin), read, tail, stats, checkpoint, prove and
// verify-receipt, verify --key against a deleted last row, the token's
// secret check, help texts, and every verb over mTLS.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { signDevToken } from "@annals/runtime";
import { makeTestCertificates } from "@annals/runtime/testing";
import { entry, startLogHarness, TEST_SECRET, type LogHarness } from "./log-harness.js";

const CLI = fileURLToPath(new URL("../../../libs/cli/bin/annals.js", import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with `env` added, `input` on stdin; resolves at its exit. */
function run(env: Record<string, string>, args: string[], input?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? "");
  });
}

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "annals-cli-verbs-"));
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("the CLI against a log service", () => {
  let harness: LogHarness;
  let env: Record<string, string>;
  const annals = (...args: string[]) => run(env, args);
  const ok = async (...args: string[]) => {
    const result = await annals(...args);
    assert.equal(result.code, 0, `annals ${args.join(" ")}: ${result.stdout}${result.stderr}`);
    return result;
  };

  before(async () => {
    harness = await startLogHarness("log_cli_verbs");
    env = { ANNALS_URL: harness.baseUrl, ANNALS_TOKEN: await signDevToken({ secret: TEST_SECRET, subject: "cli", roles: ["admin"] }) };
  });
  after(async () => {
    await harness?.close();
  });

  test("append from an argument and from stdin, JSON and bytes; read them back; logs list, get and stats", async () => {
    assert.match((await ok("logs", "create", "shop/orders")).stdout, /log:\s+shop\/orders/);
    assert.match((await ok("append", "--log", "shop/orders", "--kind", "order.placed", '{"id":"ord-7","total":12.5}', "--request-id", "ord-7")).stdout, /^appended seq 1 to log "shop\/orders" \(checksum [0-9a-f]{64}\)/);
    const piped = await run(env, ["append", "--log", "shop/orders", "--kind", "order.paid", "--source", "till-3"], '{"id":"ord-7"}\n');
    assert.equal(piped.code, 0, piped.stderr);
    assert.match(piped.stdout, /^appended seq 2 /);
    const bytes = await run(env, ["append", "--log", "shop/orders", "--kind", "order.blob", "--content-type", "application/octet-stream", "-"], "\u0000\u0001binary");
    assert.equal(bytes.code, 0, bytes.stderr);
    assert.match((await ok("append", "--log", "shop/orders", "--kind", "order.placed", '{"id":"ord-7","total":12.5}', "--request-id", "ord-7")).stdout, /^duplicate of seq 1 /);

    const stored = (await harness.admin.read({ logId: "shop/orders" })).entries;
    assert.deepEqual(stored.map((e) => [e.kind, e.sourceId, e.requestId]), [["order.placed", "", "ord-7"], ["order.paid", "till-3", ""], ["order.blob", "", ""]]);
    assert.deepEqual(Buffer.from(stored[2]!.body.value as Uint8Array), Buffer.from("\u0000\u0001binary"));
    assert.equal(stored[2]!.contentType, "application/octet-stream");

    const lines = (await ok("read", "--log", "shop/orders")).stdout.trimEnd().split("\n");
    assert.equal(lines.length, 3);
    assert.match(lines[0]!, /^1\t\d{4}-\d\d-\d\dT[^\t]+Z\torder\.placed\t\{"id":"ord-7","total":12\.5\}$/);
    assert.match(lines[2]!, /^3\t[^\t]+\torder\.blob\t<8 bytes application\/octet-stream>$/);
    const page = (await ok("read", "--log", "shop/orders", "--from", "2", "--limit", "1", "--json")).stdout.trimEnd().split("\n");
    assert.equal(page.length, 1);
    assert.deepEqual([JSON.parse(page[0]!).seq, JSON.parse(page[0]!).sourceId], ["2", "till-3"]);

    assert.match((await ok("logs", "list")).stdout, /^shop\/orders\tlast seq 3\t3 entries\tlocal$/m);
    assert.match((await ok("logs", "list", "--prefix", "nothing-here")).stderr, /no logs under "nothing-here"/);
    assert.match((await ok("logs", "get", "shop/orders")).stdout, /last seq:\s+3/);
    assert.match((await ok("stats", "--log", "shop/orders")).stdout, /sources:\s+2/);
    assert.match((await ok("stats")).stdout, /^\d+ logs \(0 mirrors\), \d+ entries stored$/m);
  });

  test("bad input: a non-object payload, no kind, an unknown log; each exits non-zero saying why", async () => {
    const array = await annals("append", "--log", "x", "--kind", "a.b", "[1,2]");
    assert.equal(array.code, 2);
    assert.match(array.stderr, /must be an object/);
    const noKind = await annals("append", "--log", "x", "{}");
    assert.equal(noKind.code, 2);
    assert.match(noKind.stderr, /--log and --kind/);
    const big = await annals("append", "--log", "x", "--kind", "a.b", '{"n":9007199254740993}');
    assert.equal(big.code, 1);
    assert.match(big.stderr, /invalid_argument/);
    const missing = await annals("logs", "get", "no-such-log");
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /not_found/);
  });

  test("tail follows live, one line per matching entry", async () => {
    await harness.admin.append({ logId: "tailed", entry: entry("order.placed", { before: true }) });
    const child = spawn(process.execPath, [CLI, "tail", "--log", "tailed", "--topics", "order.>"], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const lines: string[] = [];
    const waiters: Array<() => void> = [];
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      lines.splice(0, lines.length, ...output.split("\n").filter(Boolean));
      waiters.splice(0).forEach((wake) => wake());
    });
    const lineCount = async (count: number) => {
      while (lines.length < count) await new Promise<void>((resolve) => waiters.push(resolve));
    };
    await lineCount(1);
    await harness.admin.append({ logId: "tailed", entry: entry("other.kind", { skipped: true }) });
    await harness.admin.append({ logId: "tailed", entry: entry("order.paid", { live: true }) });
    await lineCount(2);
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill("SIGINT");
    assert.equal(await exited, 0, "Ctrl-C ends tail quietly");
    assert.deepEqual(lines.map((line) => line.split("\t")[2]), ["order.placed", "order.paid"]);
    assert.match(lines[1]!, /^3\t.*\{"live":true\}$/);
  });

  test("checkpoint, prove and verify-receipt: a receipt checks offline and a changed one names what failed", async () => {
    await harness.admin.appendBatch({ logId: "proved", entries: Array.from({ length: 40 }, (_, i) => entry("p.x", { i })) });
    const note = (await ok("checkpoint", "--log", "proved")).stdout;
    assert.match(note, /^\S+:proved\n40\n[A-Za-z0-9+/]{43}=\n\n— /);
    const vkey = (await ok("verifier-key", "--log", "proved")).stdout.trim();
    const nodeKey = (await ok("verifier-key")).stdout.trim();
    const receipt = join(dir, "receipt");
    writeFileSync(receipt, (await ok("prove", "--log", "proved", "--seq", "17")).stdout);
    assert.match(readFileSync(receipt, "utf8"), /^c2sp\.org\/tlog-proof@v1\nextra \S+\nindex 16\n/);
    const checksum = (await harness.admin.getEntry({ logId: "proved", selector: { case: "seq", value: 17n } })).entry!.checksum;

    const valid = await ok("verify-receipt", receipt, "--key", vkey);
    assert.match(valid.stdout, new RegExp(`valid receipt: seq 17 of log "proved" \\(checksum ${checksum}\\) is in the checkpoint of 40 entries`));
    await ok("verify-receipt", receipt, "--key", nodeKey, "--checksum", checksum);
    const keyFile = join(dir, "proved.vkey");
    writeFileSync(keyFile, `${vkey}\n`);
    await ok("verify-receipt", receipt, "--key", keyFile);

    const other = (await harness.admin.getEntry({ logId: "proved", selector: { case: "seq", value: 18n } })).entry!.checksum;
    const wrongEntry = await annals("verify-receipt", receipt, "--key", vkey, "--checksum", other);
    assert.equal(wrongEntry.code, 1);
    assert.match(wrongEntry.stdout, /INVALID receipt \(checksum\)/);
    const text = readFileSync(receipt, "utf8");
    const lines = text.split("\n");
    const forged = join(dir, "forged");
    writeFileSync(forged, [...lines.slice(0, 3), lines[4], lines[3], ...lines.slice(5)].join("\n"));
    const swapped = await annals("verify-receipt", forged, "--key", vkey);
    assert.equal(swapped.code, 1);
    assert.match(swapped.stdout, /INVALID receipt \(inclusion\)/);
    writeFileSync(forged, text.replace("\n40\n", "\n41\n"));
    const resized = await annals("verify-receipt", forged, "--key", vkey);
    assert.equal(resized.code, 1);
    assert.match(resized.stdout, /INVALID receipt \(bad-signature\)/);
    const otherLog = (await ok("verifier-key", "--log", "shop/orders")).stdout.trim();
    const wrongLog = await annals("verify-receipt", receipt, "--key", otherLog);
    assert.equal(wrongLog.code, 1);
    assert.match(wrongLog.stdout, /INVALID receipt \(bad-signature\)/);
    writeFileSync(forged, "not a receipt");
    assert.match((await annals("verify-receipt", forged, "--key", vkey)).stdout, /INVALID receipt \(malformed\)/);
  });

  test("a deleted last row: the export fails and leaves no file, and a file cut to match is rejected by verify --key", async () => {
    const LOG = "tampered/tail";
    await harness.admin.appendBatch({ logId: LOG, entries: Array.from({ length: 10 }, (_, i) => entry("t.x", { i })) });
    const vkey = (await ok("verifier-key", "--log", LOG)).stdout.trim();
    const good = join(dir, "good.jsonl");
    await ok("export", "--log", LOG, "--out", good);
    const complete = await ok("verify", good, "--key", vkey);
    assert.match(complete.stdout, /valid export of log "tampered\/tail", 10 entries up to seq 10\n {2}complete: /);
    assert.match((await ok("verify", good)).stdout, /completeness NOT checked/);

    await harness.db.query(`delete from log.entries where log_id = $1 and seq = 10`, [LOG]);
    const cut = join(dir, "cut.jsonl");
    const refused = await annals("export", "--log", LOG, "--out", cut);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /data_loss.*entry 10 is missing/);
    assert.equal(existsSync(cut), false, "no partial file is left behind");
    // What stdout got before the failure does not pass for an export either.
    const piped = await annals("export", "--log", LOG);
    assert.equal(piped.code, 1);
    writeFileSync(cut, piped.stdout);
    assert.equal((await annals("verify", cut, "--key", vkey)).code, 1);

    // The file as the database now holds it, its end line rewritten to match: the chain alone accepts it, the key does not.
    const lines = readFileSync(good, "utf8").trimEnd().split("\n");
    const end = JSON.parse(lines.at(-1)!);
    const last = JSON.parse(lines.at(-3)!);
    writeFileSync(cut, [...lines.slice(0, -2), JSON.stringify({ ...end, count: "9", last_seq: last.seq, last_checksum: last.checksum })].join("\n") + "\n");
    assert.equal((await annals("verify", cut)).code, 0, "the hash chain alone cannot see a dropped tail");
    const rejected = await annals("verify", cut, "--key", vkey);
    assert.equal(rejected.code, 1);
    assert.match(rejected.stdout, /INVALID \(1 problem, 9 entries read\)\n {2}line 11, seq 9: checkpoint: the signed checkpoint does not vouch for this file: it covers 10 entries, the file ends at seq 9/);
    const badKey = await annals("verify", good, "--key", "nonsense");
    assert.equal(badKey.code, 2);
    assert.match(badKey.stderr, /--key is not a verifier key/);
  });

  test("token refuses a secret shorter than the server accepts; help says which role each verb needs", async () => {
    const short = await run({ ANNALS_AUTH_JWT_SECRET: "abc" }, ["token", "--sub", "me", "--roles", "log.read"]);
    assert.equal(short.code, 2);
    assert.equal(short.stdout, "");
    assert.match(short.stderr, /3 bytes long; the server refuses secrets shorter than 32 bytes/);
    const made = await run({ ANNALS_AUTH_JWT_SECRET: TEST_SECRET }, ["token", "--sub", "me", "--roles", "log.read"]);
    assert.equal(made.code, 0);
    assert.match(made.stdout, /^ey[\w-]+\.[\w-]+\.[\w-]+\n$/);

    const help = await run({}, ["--help"]);
    assert.equal(help.code, 0);
    for (const verb of ["logs list", "append", "read", "tail", "stats", "checkpoint", "prove", "verify-receipt", "verify", "export", "import", "kv", "peers", "federation"]) {
      assert.match(help.stdout, new RegExp(`annals ${verb}`), verb);
    }
    for (const [verb, role] of [["append", "log.write"], ["read", "log.read"], ["tail", "log.read"], ["kv", "kv.write"], ["peers", "admin"], ["verify", "none"], ["prove", "log.read"]] as const) {
      const verbHelp = await run({}, [verb, "--help"]);
      assert.equal(verbHelp.code, 0, verb);
      assert.match(verbHelp.stdout, new RegExp(`\\b${role.replace(".", "\\.")}\\b`), `${verb} --help names ${role}`);
    }
    assert.match((await run({}, ["read", "--help"])).stdout, /--server-name/);
  });
});

describe("the CLI against a log service serving mTLS", () => {
  const NODE = "spiffe://annals.test/node/mtls";
  let harness: LogHarness;
  let certs: ReturnType<typeof makeTestCertificates>;
  let base: Record<string, string>;
  before(async () => {
    certs = makeTestCertificates(dir, { server: NODE, client: "spiffe://annals.test/client/cli" });
    harness = await startLogHarness("log_cli_mtls", {}, { ANNALS_TLS_CERT_FILE: certs.server!.certFile, ANNALS_TLS_KEY_FILE: certs.server!.keyFile, ANNALS_TLS_CLIENT_CA_FILE: certs.ca });
    base = { ANNALS_TOKEN: await signDevToken({ secret: TEST_SECRET, subject: "cli", roles: ["admin"] }) };
  });
  after(async () => {
    await harness?.close();
  });

  test("--ca, --cert and --key (or ANNALS_CA_FILE, ANNALS_CERT_FILE, ANNALS_KEY_FILE) reach it; without a client certificate it refuses", async () => {
    assert.match(harness.baseUrl, /^https:\/\/127\.0\.0\.1:/);
    const tls = ["--url", harness.baseUrl, "--ca", certs.ca, "--cert", certs.client!.certFile, "--key", certs.client!.keyFile];
    const appended = await run(base, ["append", ...tls, "--log", "secure", "--kind", "s.x", '{"over":"mtls"}']);
    assert.equal(appended.code, 0, appended.stderr);
    const fromEnv = { ...base, ANNALS_URL: harness.baseUrl, ANNALS_CA_FILE: certs.ca, ANNALS_CERT_FILE: certs.client!.certFile, ANNALS_KEY_FILE: certs.client!.keyFile };
    for (const args of [["read", "--log", "secure"], ["logs", "list"], ["stats"], ["checkpoint", "--log", "secure"], ["prove", "--log", "secure", "--seq", "1"], ["export", "--log", "secure"], ["health"]]) {
      const result = await run(fromEnv, args);
      assert.equal(result.code, 0, `${args.join(" ")}: ${result.stderr}`);
    }
    assert.match((await run(fromEnv, ["read", "--log", "secure"])).stdout, /\{"over":"mtls"\}/);

    const noCert = await run(base, ["read", "--url", harness.baseUrl, "--ca", certs.ca, "--log", "secure"]);
    assert.equal(noCert.code, 1);
    const noCa = await run(base, ["read", "--url", harness.baseUrl, "--cert", certs.client!.certFile, "--key", certs.client!.keyFile, "--log", "secure"]);
    assert.equal(noCa.code, 1);
    assert.match(noCa.stderr, /certificate/);
    const plain = await run(base, ["read", "--url", harness.baseUrl.replace("https", "http"), "--ca", certs.ca, "--log", "secure"]);
    assert.equal(plain.code, 2);
    assert.match(plain.stderr, /only apply to TLS: use an https:\/\/ URL/);
  });

  test("--server-name: the certificate is checked for that name (a host name, or the URI SAN federation checks) instead of the URL's host", async () => {
    const byName = harness.baseUrl.replace("127.0.0.1", "localhost");
    const tls = ["--url", byName, "--ca", certs.ca, "--cert", certs.client!.certFile, "--key", certs.client!.keyFile];
    const hostMismatch = await run(base, ["logs", "list", ...tls]);
    assert.equal(hostMismatch.code, 1);
    assert.match(hostMismatch.stderr, /localhost/);
    const byUri = await run(base, ["logs", "list", ...tls, "--server-name", NODE]);
    assert.equal(byUri.code, 0, byUri.stderr);
    const wrongUri = await run({ ...base, ANNALS_SERVER_NAME: "spiffe://annals.test/node/other" }, ["logs", "list", ...tls]);
    assert.equal(wrongUri.code, 1);
    assert.match(wrongUri.stderr, /names spiffe:\/\/annals\.test\/node\/mtls, not exactly spiffe:\/\/annals\.test\/node\/other/);
    const wrongHost = await run(base, ["logs", "list", ...tls.map((arg) => arg.replace("localhost", "127.0.0.1")), "--server-name", "annals.example"]);
    assert.equal(wrongHost.code, 1);
    assert.match(wrongHost.stderr, /annals\.example/);
  });
});
