// A mirror keeps its origin's signed checkpoints (AppendReplicated.checkpoints)
// after checking each against its own tree, and serves them as its own.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { entry, rejects, startLogHarness, type LogHarness } from "./log-harness.js";

const ORIGIN_NODE = "spiffe://acme.example/annals/eu-1";
const MIRROR = "mirror/acme.example/annals/eu-1/orders";
let origin: LogHarness;
let holder: LogHarness;

before(async () => {
  origin = await startLogHarness("mirror_cp_origin", { nodeId: ORIGIN_NODE });
  holder = await startLogHarness("mirror_cp_holder", { nodeId: "spiffe://acme.example/annals/us-1" });
  await origin.admin.appendBatch({ logId: "orders", entries: Array.from({ length: 9 }, (_, i) => entry("o.x", { i })) });
  await origin.admin.appendBatch({ logId: "other", entries: [entry("o.x", {})] });
});
after(async () => {
  await holder?.close();
  await origin?.close();
});

test("the origin's checkpoints are kept with the entries or alone, served unchanged; a bad one is INVALID_ARGUMENT naming it and nothing is written", async () => {
  const entries = (await origin.admin.read({ logId: "orders", pageSize: 100 })).entries;
  const at = async (size: bigint) => (await origin.admin.getCheckpoint({ logId: "orders", treeSize: size })).note || (await origin.admin.getCheckpoint({ logId: "orders" })).note;
  const latest = (await origin.admin.getCheckpoint({ logId: "orders" })).note;
  assert.match(latest, /\n9\n/);
  // Before the mirror exists, checkpoints alone have nowhere to go.
  await rejects(holder.admin.appendReplicated({ logId: MIRROR, originNode: ORIGIN_NODE, checkpoints: [latest] }), Code.NotFound);
  // A checkpoint past the entries sent with it is refused with them.
  await rejects(holder.admin.appendReplicated({ logId: MIRROR, originNode: ORIGIN_NODE, entries: entries.slice(0, 5), checkpoints: [latest] }), Code.InvalidArgument, /^checkpoints\[0\]: has size 9; the mirror holds 1 to 5 leaves/);
  assert.equal((await holder.admin.getLog({ logId: MIRROR }).catch(() => undefined))?.head?.lastSeq ?? 0n, 0n, "nothing was written");
  await holder.admin.appendReplicated({ logId: MIRROR, originNode: ORIGIN_NODE, entries });
  await rejects(holder.admin.getCheckpoint({ logId: MIRROR }), Code.FailedPrecondition, /origin's have not arrived/);
  const otherLog = (await origin.admin.getCheckpoint({ logId: "other" })).note;
  const cases: [string, RegExp][] = [
    ["not a note", /^checkpoints\[0\]: is not a signed checkpoint note/],
    [otherLog, /^checkpoints\[0\]: is for origin "acme\.example\/annals\/eu-1:other", not the mirror's origin acme\.example\/annals\/eu-1:orders/],
    [latest.replace(/\n9\n(.{10})/, (_, root: string) => `\n9\n${root === "AAAAAAAAAA" ? "BBBBBBBBBB" : "AAAAAAAAAA"}`), /^checkpoints\[0\]: has root [0-9a-f]+ at size 9, but the mirror's tree has/],
  ];
  for (const [note, message] of cases) await rejects(holder.admin.appendReplicated({ logId: MIRROR, originNode: ORIGIN_NODE, checkpoints: [note] }), Code.InvalidArgument, message);
  await rejects(holder.admin.appendReplicated({ logId: MIRROR, originNode: ORIGIN_NODE }), Code.InvalidArgument, /^entries: must hold at least one entry \(or checkpoints\)/);
  await holder.admin.appendReplicated({ logId: MIRROR, originNode: ORIGIN_NODE, checkpoints: [latest] });
  const served = await holder.admin.getCheckpoint({ logId: MIRROR });
  assert.deepEqual([served.note, served.treeSize], [latest, 9n]);
  assert.equal((await holder.admin.getCheckpoint({ logId: MIRROR, treeSize: 9n })).note, await at(9n));
  // Proofs on the mirror are the origin's.
  const [mine, theirs] = await Promise.all([holder.admin.getConsistencyProof({ logId: MIRROR, fromSize: 3n, toSize: 9n }), origin.admin.getConsistencyProof({ logId: "orders", fromSize: 3n, toSize: 9n })]);
  assert.deepEqual(mine.hashes, theirs.hashes);
});
