// The `annals` CLI's export commands against a running log service:
// export → verify offline → import into another log, and a damaged file.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { signDevToken } from "@annals/runtime";
import { runProcessToExit } from "@annals/runtime/testing";
import { entry, startLogHarness, TEST_SECRET, type LogHarness } from "./log-harness.js";

const CLI = fileURLToPath(new URL("../../../libs/cli/dist/main.js", import.meta.url));

let harness: LogHarness;
let dir: string;
let env: Record<string, string>;

before(async () => {
  harness = await startLogHarness("log_cli");
  dir = mkdtempSync(join(tmpdir(), "annals-cli-"));
  env = { ANNALS_URL: harness.baseUrl, ANNALS_TOKEN: await signDevToken({ secret: TEST_SECRET, subject: "cli", roles: ["admin"] }) };
});

after(async () => {
  await harness?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const annals = (...args: string[]) => runProcessToExit([CLI, ...args], env);

test("annals export, verify and import: the copy holds the same entries and verifies", async () => {
  await harness.admin.appendBatch({
    logId: "source",
    entries: [
      entry("order.placed", { id: 1, total: 2.5 }, { requestId: "o-1", sourceId: "shop", simTime: 10.25, metadata: { region: "eu" } }),
      entry("order.paid", { id: 1, note: "ünïcödé ✓" }, { sourceId: "shop" }),
      entry("order.secret", { card: "4111" }),
      entry("order.shipped", { id: 1 }),
    ],
  });
  await harness.admin.redact({ logId: "source", seq: 3n, reason: "card number" });

  const file = join(dir, "source.jsonl");
  const exported = await annals("export", "--log", "source", "--out", file);
  assert.equal(exported.code, 0, exported.stderr);
  const verified = await annals("verify", file);
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  assert.match(verified.stdout, /valid export of log "source", 5 entries up to seq 5/);

  const imported = await annals("import", file, "--log", "copy");
  assert.equal(imported.code, 0, imported.stderr);
  assert.match(imported.stdout, /imported 3 entries into log "copy" \(seqs 1\.\.3\); already there: 0; skipped 1 redacted and 1 service entries/);

  const source = (await harness.admin.read({ logId: "source" })).entries;
  const copy = (await harness.admin.read({ logId: "copy" })).entries;
  const kept = source.filter((e) => e.redaction === undefined && !e.kind.startsWith("annals."));
  const fields = (e: (typeof copy)[number]) => ({ uuid: e.uuid, kind: e.kind, body: e.body, contentType: e.contentType, sourceId: e.sourceId, simTime: e.simTime, metadata: e.metadata, requestId: e.requestId });
  assert.deepEqual(copy.map(fields), kept.map(fields));
  assert.equal((await harness.admin.verify({ logId: "copy" })).valid, true);

  // A second import meets the uuids already there.
  const again = await annals("import", file, "--log", "copy");
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already taken/);
});

test("annals verify names the line and seq of a changed byte, and of a cut-off file", async () => {
  await harness.admin.appendBatch({ logId: "damaged", entries: [1, 2, 3].map((n) => entry("d.e", { n })) });
  const file = join(dir, "damaged.jsonl");
  assert.equal((await annals("export", "--log", "damaged", "--out", file)).code, 0);
  const original = readFileSync(file, "utf8");

  const tampered = join(dir, "tampered.jsonl");
  writeFileSync(tampered, original.replace('"n":2', '"n":7'));
  const result = await annals("verify", tampered);
  assert.equal(result.code, 1);
  assert.match(result.stdout, /INVALID/);
  assert.match(result.stdout, /line 3, seq 2: payload_digest/);

  const cut = join(dir, "cut.jsonl");
  writeFileSync(cut, original.split("\n").slice(0, 3).join("\n") + "\n");
  const truncated = await annals("verify", cut);
  assert.equal(truncated.code, 1);
  assert.match(truncated.stdout, /truncated/);

  const refused = await annals("import", tampered, "--log", "never");
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /does not verify; nothing was imported/);
  assert.equal((await harness.admin.listLogs({ prefix: "never" })).logs.length, 0);
});

test("annals export and import refuse bad usage with status 2", async () => {
  for (const args of [["verify"], ["export"], ["export", "--log", "x", "--from", "-1"], ["import", "f.jsonl"], ["nope"]]) {
    const result = await annals(...args);
    assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    assert.match(result.stderr, /usage:/);
  }
});
