// `annals kv …` against a running kv service.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { signDevToken } from "@annals/runtime";
import { runProcessToExit } from "@annals/runtime/testing";
import { TEST_SECRET, startKvHarness, type KvHarness } from "./kv-harness.js";

const CLI = fileURLToPath(new URL("../../../libs/cli/dist/main.js", import.meta.url));
let harness: KvHarness;
let env: Record<string, string>;

before(async () => {
  harness = await startKvHarness("kv_cli", "postgres");
  env = { ANNALS_URL: harness.baseUrl, ANNALS_TOKEN: await signDevToken({ secret: TEST_SECRET, subject: "cli", roles: ["kv.read", "kv.write"] }) };
});
after(async () => {
  await harness?.close();
});

const annals = (...args: string[]) => runProcessToExit([CLI, "kv", ...args], env);

test("annals kv set, get, ttl, incr, scan and del", async () => {
  assert.deepEqual(await annals("set", "cli:greeting", "hello wörld", "--ttl", "3600000").then((r) => [r.code, r.stdout.trim()]), [0, "OK"]);
  assert.deepEqual(await annals("get", "cli:greeting").then((r) => [r.code, r.stdout]), [0, "hello wörld\n"]);
  // An hour, so that a slow machine (each command is a new Node.js process) stays well inside it.
  const ttl = Number((await annals("ttl", "cli:greeting")).stdout);
  assert.ok(ttl > 3_000_000 && ttl <= 3_600_000, `ttl ${ttl}`);
  assert.deepEqual(await annals("set", "cli:greeting", "again", "--nx").then((r) => [r.code, r.stdout.trim()]), [1, "not written (the key exists)"]);
  assert.equal((await annals("incr", "cli:count", "--by", "5")).stdout.trim(), "5");
  assert.equal((await annals("incr", "cli:count")).stdout.trim(), "6");
  const scan = await annals("scan", "--prefix", "cli:", "--values");
  assert.equal(scan.stdout, "cli:count\t6\ncli:greeting\thello wörld\n");
  assert.equal((await annals("del", "cli:count", "cli:greeting", "cli:missing")).stdout.trim(), "2");
  const missing = await annals("get", "cli:greeting");
  assert.deepEqual([missing.code, missing.stderr.trim()], [1, 'no key "cli:greeting"']);
});

test("annals kv: usage errors exit 2 with the usage text; server errors exit 1 with the message", async () => {
  const usage = await annals("set", "only-a-key");
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /kv set takes KEY VALUE/);
  assert.match(usage.stderr, /annals kv scan/);
  assert.equal((await annals("frobnicate")).code, 2);
  assert.equal((await annals("incr", "k", "--by", "1.5")).code, 2);
  await annals("set", "cli:text", "not a number");
  const failed = await annals("incr", "cli:text");
  assert.equal(failed.code, 1);
  assert.match(failed.stderr, /not a decimal 64-bit integer/);
});
