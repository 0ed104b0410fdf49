// AppendReplicated checks a batch's entries before it takes the mirror's head
// lock (so a puller's next batch is checked while the one before it is
// stored); what it refuses, and which entry it names, is still what a walk
// from the mirror's head finds first.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ConnectError, Code } from "@connectrpc/connect";
import { clone } from "@bufbuild/protobuf";
import { logV1, rpcDetails } from "@annals/proto";
import { errorReason } from "@annals/runtime";
import { entry, startLogHarness, type LogHarness } from "./log-harness.js";

const ORIGIN_NODE = "spiffe://acme.example/annals/eu-1";
let origin: LogHarness;
let holder: LogHarness;
let entries: logV1.Entry[];

before(async () => {
  origin = await startLogHarness("replicate_origin", { nodeId: ORIGIN_NODE });
  holder = await startLogHarness("replicate_holder", { nodeId: "spiffe://acme.example/annals/us-1" });
  for (let first = 0; first < 3000; first += 1000) {
    await origin.admin.appendBatch({ logId: "orders", entries: Array.from({ length: 1000 }, (_, i) => entry("o.x", { i: first + i })) });
  }
  entries = [];
  while (entries.length < 3000) entries.push(...(await origin.admin.read({ logId: "orders", fromSeq: BigInt(entries.length + 1), pageSize: 1000 })).entries);
});
after(async () => {
  await holder?.close();
  await origin?.close();
});

/** The DATA_LOSS an AppendReplicated ends with: its message and ErrorInfo metadata. */
async function refusal(call: Promise<unknown>): Promise<{ message: string; seq: string | undefined; problem: string | undefined }> {
  try {
    await call;
  } catch (error) {
    const failure = ConnectError.from(error);
    assert.equal(failure.code, Code.DataLoss, failure.message);
    const info = failure.findDetails(rpcDetails.ErrorInfoSchema)[0];
    return { message: failure.rawMessage, seq: info?.metadata["seq"], problem: info?.metadata["problem"] };
  }
  assert.fail("AppendReplicated succeeded");
}

test("batches sent together to one mirror: each commits after the one before it or is refused as not contiguous, never stored out of order", async () => {
  const mirror = "mirror/acme.example/annals/eu-1/orders";
  const batches = [entries.slice(0, 1000), entries.slice(1000, 2000), entries.slice(2000, 3000)];
  let pending = batches;
  for (let round = 0; pending.length > 0 && round < 3; round++) {
    const outcomes = await Promise.allSettled(pending.map((batch) => holder.admin.appendReplicated({ logId: mirror, originNode: ORIGIN_NODE, entries: batch })));
    for (const outcome of outcomes) {
      if (outcome.status === "fulfilled") continue;
      const failure = ConnectError.from(outcome.reason);
      assert.deepEqual([failure.code, errorReason(failure)], [Code.FailedPrecondition, "MIRROR_NOT_CONTIGUOUS"], failure.message);
    }
    pending = pending.filter((_, i) => outcomes[i]!.status === "rejected");
  }
  assert.equal(pending.length, 0);
  const verified = await holder.admin.verify({ logId: mirror });
  assert.deepEqual([verified.valid, verified.checkedCount], [true, 3000n]);
  assert.equal((await holder.admin.getLog({ logId: mirror })).head?.entryCount, 3000n);
});

test("a batch that does not link to the mirror's head is refused at its first entry, before a later entry's problem", async () => {
  const mirror = "mirror/acme.example/annals/eu-1/links";
  await holder.admin.appendReplicated({ logId: mirror, originNode: ORIGIN_NODE, entries: entries.slice(0, 10) });
  // Seq 11 with another prev_checksum (its own checksum no longer recomputes either), and seq 15 with a wrong checksum.
  const batch = entries.slice(10, 20).map((each) => clone(logV1.EntrySchema, each));
  batch[0]!.prevChecksum = "0".repeat(64);
  batch[4]!.checksum = "1".repeat(64);
  const first = await refusal(holder.admin.appendReplicated({ logId: mirror, originNode: ORIGIN_NODE, entries: batch }));
  assert.deepEqual([first.seq, first.problem], ["11", "CHECKSUM"]);
  assert.match(first.message, /replicated entry 11 of "orders" does not verify: checksum, link$/);

  // Linked to the head, the first problem after it is the one named.
  batch[0] = entries[10]!;
  const later = await refusal(holder.admin.appendReplicated({ logId: mirror, originNode: ORIGIN_NODE, entries: batch }));
  assert.deepEqual([later.seq, later.problem], ["15", "CHECKSUM"]);

  // Only the link wrong: seq 11 of another history of the log (the same origin, other payloads) recomputes, but links to that history's seq 10.
  const fork = await startLogHarness("replicate_fork", { nodeId: ORIGIN_NODE });
  try {
    await fork.admin.appendBatch({ logId: "orders", entries: Array.from({ length: 20 }, (_, i) => entry("o.x", { i, fork: true })) });
    const forked = (await fork.admin.read({ logId: "orders", fromSeq: 11n, pageSize: 10 })).entries;
    const unlinked = await refusal(holder.admin.appendReplicated({ logId: mirror, originNode: ORIGIN_NODE, entries: forked }));
    assert.deepEqual([unlinked.seq, unlinked.problem], ["11", "LINK"]);
    assert.match(unlinked.message, /does not verify: link$/);
  } finally {
    await fork.close();
  }
  assert.equal((await holder.admin.getLog({ logId: mirror })).head?.lastSeq, 10n, "nothing was stored");
});
