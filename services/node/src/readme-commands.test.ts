// Every documented command runs: the `sh` and `js` blocks of README.md, in
// order, against a node started with `npm start` (as the README starts it),
// with the documented addresses filled in (the node runs on free ports and on
// a database of this test's own). A block that cannot run in a test carries a
// `<!-- not-run: reason -->` marker, which is counted and reported; the
// markers are listed in doc-commands.ts. A block that fails fails this test,
// with its output.
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createTestDatabase, type TestDatabase } from "@annals/db/testing";
import { docBlocks, shellCommands } from "./doc-commands.js";
import { PageRun, READY, ROOT, cleanEnv, start, workDir, type Started } from "./doc-runner.js";

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
    try {
      await page?.stopBackground().catch(() => undefined);
      await node?.stop("SIGKILL");
      await database?.drop();
    } finally {
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
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

