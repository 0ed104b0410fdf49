// Reads never drive signing: GetCheckpoint and the tile API's checkpoint
// serve the stored latest checkpoint and only nudge the checkpointer, which
// signs at most once per interval; a log without any checkpoint gets one at
// once; a restarted service signs for logs left ahead of their checkpoint.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { openCheckpoint, parseVerifierKey } from "@annals/chain";
import { serveComponents, signDevToken } from "@annals/runtime";
import { testServerConfig, until } from "@annals/runtime/testing";
import { createLogComponent } from "./component.js";
import { entry, startLogHarness, TEST_SECRET, type LogHarness } from "./log-harness.js";

const NODE = "spiffe://acme.example/annals/eu-1";
// Long enough that the loop below runs many times within one interval even on a slow machine.
const INTERVAL_MS = 5000;
let harness: LogHarness;

before(async () => {
  harness = await startLogHarness("log_checkpoint_serving", { nodeId: NODE, checkpointIntervalMs: INTERVAL_MS });
});

after(async () => {
  await harness?.close();
});

async function checkpointRows(logId: string): Promise<number> {
  const { rows } = await harness.db.query<{ n: number | string }>(`select count(*) as n from log.checkpoints where log_id = $1`, [logId]);
  return Number(rows[0]!.n);
}

test("polling GetCheckpoint and the tile checkpoint while appending signs no more than the interval allows", async () => {
  const LOG = "serving/poll";
  const token = await signDevToken({ secret: TEST_SECRET, subject: "reader", roles: ["log.read"] });
  const started = Date.now();
  await harness.admin.append({ logId: LOG, entry: entry("poll.x", { i: 0 }) });
  // No checkpoint exists yet: the first read signs one at once.
  const first = await harness.admin.getCheckpoint({ logId: LOG });
  assert.equal(first.treeSize, 1n);
  const POLLS = 40;
  for (let i = 1; i <= POLLS; i++) {
    // Every poll finds the tree ahead of the latest checkpoint: before the fix, each one signed.
    await harness.admin.append({ logId: LOG, entry: entry("poll.x", { i }) });
    const served = await harness.admin.getCheckpoint({ logId: LOG });
    assert.ok(served.treeSize >= 1n && served.treeSize <= BigInt(i + 1));
    const viaTiles = await fetch(`http://127.0.0.1:${harness.server.httpPort}/v1/logs/${encodeURIComponent(LOG)}/checkpoint`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(viaTiles.status, 200);
    const vkey = parseVerifierKey(served.verifierKey);
    assert.ok(openCheckpoint(await viaTiles.text(), [vkey]).checkpoint.size >= 1n);
  }
  const elapsed = Date.now() - started;
  // One signed at once (the first read), then at most one per interval that has passed, plus one in flight.
  const allowed = 2 + Math.floor(elapsed / INTERVAL_MS);
  const rows = await checkpointRows(LOG);
  assert.ok(rows <= allowed, `${rows} checkpoints were signed for ${POLLS * 2} reads in ${elapsed} ms; at most ${allowed} allowed`);
  assert.ok(rows < POLLS, "reads did not sign one checkpoint each");
  // The nudge (and the appends' own timer) still brings the checkpoint up to the head.
  await until("the checkpointer to cover the head", async () => (await harness.admin.getCheckpoint({ logId: LOG })).treeSize === BigInt(POLLS + 1), 60_000);
});

test("a restarted service signs, unasked, for a log whose tree is ahead of its latest checkpoint", async () => {
  const LOG = "serving/restart";
  await harness.admin.append({ logId: LOG, entry: entry("restart.x", { i: 0 }) });
  await harness.admin.getCheckpoint({ logId: LOG }); // the first checkpoint, of size 1
  await harness.admin.appendBatch({ logId: LOG, entries: [entry("restart.x", { i: 1 }), entry("restart.x", { i: 2 })] });
  // Stop before the interval runs out: the timer that would have signed size 3 dies with the process.
  await harness.server.shutdown("restart");
  assert.equal(await checkpointRows(LOG), 1);
  const config = testServerConfig(TEST_SECRET);
  const restarted = await serveComponents({
    name: "test-log_checkpoint_serving-2",
    server: config,
    components: async (context) => [await createLogComponent({ db: harness.db, nodeId: NODE, checkpointIntervalMs: 50 }, context)],
  });
  try {
    // Nobody reads: the startup sweep alone signs the tree of 3.
    await until("the sweep to sign size 3", async () => (await checkpointRows(LOG)) === 2, 60_000);
    const { rows } = await harness.db.query<{ tree_size: bigint }>(`select max(tree_size) as tree_size from log.checkpoints where log_id = $1`, [LOG]);
    assert.equal(BigInt(rows[0]!.tree_size), 3n);
  } finally {
    await restarted.shutdown("test done");
  }
});
