// Two nodes: B mirrors A's logs with A's checkpoint key registered, and A's
// operator rewrites A's history in A's database (as in issue 17: entries
// deleted after a seq, different ones appended, A's own Verify valid). B must
// stop with FORK within about one heartbeat, name the fork point, keep what
// it has, and hold evidence that verifies offline.
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Code } from "@connectrpc/connect";
import {
  SIGNATURE_TYPE_ED25519,
  appendLeaves,
  createVerifierKey,
  emptyRightEdge,
  encodeRightEdge,
  formatVerifierKey,
  leafHash,
  parseVerifierKey,
  verifyForkEvidence,
} from "@annals/chain";
import { federationV1 } from "@annals/proto";
import { errorReason, signDevToken } from "@annals/runtime";
import { rejects, runProcessToExit } from "@annals/runtime/testing";
import { TEST_SECRET, chainOf, headOf, jsonEntry, startTestNode, until, type TestNode } from "./federation-harness.js";
import { mirrorLogId } from "./identity.js";

const A = "spiffe://acme.example/annals/eu-1";
const B = "spiffe://acme.example/annals/us-1";
const { AuditReason, ReplicationState } = federationV1;
const CLI = fileURLToPath(new URL("../../../libs/cli/dist/main.js", import.meta.url));
const LOGS = ["below", "at", "above", "truncated", "rekeyed"];
/**
 * Bundles B produced, written to $ANNALS_FORK_EVIDENCE_DIR when it is set:
 * that is how docs/merkle/federation/ (checked by check_vectors.py) was made.
 */
const produced: { file: string; verifier_key: string; kind: string; fork_seq: number; evidence: string }[] = [];
/** Detection delays measured here, printed at the end (forks are timed, never asserted on time). */
const delays: string[] = [];

/** Appends `count` entries to A's log, labelled so that two histories differ. */
async function appendMany(node: TestNode, logId: string, count: number, label: string): Promise<void> {
  await node.log.appendBatch({ logId, entries: Array.from({ length: count }, (_, i) => jsonEntry("order.placed", { label, n: i })) });
}

/**
 * What A's operator does, in A's database: delete the entries after `keep`
 * and rebuild the log's tree from the rest, so that A's own Verify is valid.
 * Stale signed checkpoints above `keep` stay until dropStaleCheckpoints, so
 * that the rewrite (with the appends that follow) shows B one new checkpoint.
 */
async function truncateHistory(node: TestNode, logId: string, keep: number): Promise<void> {
  await node.db.transaction(async (tx) => {
    await tx.query("select 1 from log.logs where log_id = $1 for update", [logId]);
    await tx.query("delete from log.entries where log_id = $1 and seq > $2", [logId, keep]);
    const { rows } = await tx.query<{ checksum: string; wall_time_us: bigint }>("select checksum, wall_time_us from log.entries where log_id = $1 order by seq", [logId]);
    const grown = appendLeaves(emptyRightEdge(), rows.map((row) => leafHash(Buffer.from(row.checksum, "hex"))));
    await tx.query("delete from log.tiles where log_id = $1", [logId]);
    for (const update of grown.updates) {
      await tx.query("insert into log.tiles (log_id, level, idx, hashes) values ($1, $2, $3, $4)", [logId, update.tile.level, String(update.tile.index), Buffer.from(update.appended)]);
    }
    const last = rows.at(-1)!;
    await tx.query("update log.logs set last_seq = $2, last_checksum = $3, last_wall_time_us = $4, entry_count = $2, tree_edge = $5 where log_id = $1", [
      logId,
      keep,
      last.checksum,
      String(last.wall_time_us),
      Buffer.from(encodeRightEdge(grown.edge)),
    ]);
  });
}

async function dropStaleCheckpoints(node: TestNode, logId: string, keep: number): Promise<void> {
  await node.db.query("delete from log.checkpoints where log_id = $1 and tree_size > $2", [logId, keep]);
}

async function statusOf(node: TestNode, logId: string): Promise<federationV1.ReplicationStatus> {
  const found = (await node.federation.getReplicationStatus({ nodeId: A })).replications.find((status) => status.logId === logId);
  assert.ok(found, `a replication of ${logId}`);
  return found;
}

describe("federation catches a forked history", () => {
  let a: TestNode;
  let b: TestNode;
  let dir: string;
  let nodeKey: string;
  let cliEnv: Record<string, string>;
  const annals = (...args: string[]) => runProcessToExit([CLI, ...args], cliEnv);

  before(async () => {
    // A heartbeat a second (the least allowed): detection within about a second of a rewrite.
    a = await startTestNode("forks_a", A, { heartbeatMs: 1000, pullsPerMinute: 10_000 });
    b = await startTestNode("forks_b", B, { replication: { reconcileMs: 200, backoffFirstMs: 50, backoffMaxMs: 500 } });
    dir = mkdtempSync(join(tmpdir(), "annals-forks-"));
    const info = await a.federation.getNodeInfo({});
    nodeKey = info.logVerifierKey;
    assert.match(nodeKey, /^acme\.example\/annals\/eu-1\+[0-9a-f]{8}\+/);
    for (const logId of LOGS) await appendMany(a, logId, 60, "history A");
    await a.federation.registerPeer({ peer: { nodeId: B, url: b.baseUrl, publicKeyJwk: (await b.federation.getNodeInfo({})).publicKeyJwk, servedLogs: ["*"] } });
    await b.federation.registerPeer({ peer: { nodeId: A, url: a.baseUrl, publicKeyJwk: info.publicKeyJwk, logVerifierKey: nodeKey, mirroredLogs: LOGS } });
    cliEnv = { ANNALS_URL: b.baseUrl, ANNALS_TOKEN: await signDevToken({ secret: TEST_SECRET, subject: "ops", roles: ["admin"] }) };
    // B has every log to seq 60 and has accepted A's checkpoint of size 60.
    for (const logId of LOGS) {
      await until(`${logId}: mirror at 60 with checkpoint 60`, async () => {
        const status = await statusOf(b, logId);
        return status.headSeq === 60n && status.checkpointSize === 60n;
      });
    }
  });
  after(async () => {
    if (delays.length > 0) console.log(`detection delays (rewrite on A to FORK on B): ${delays.join("; ")}`);
    const out = process.env.ANNALS_FORK_EVIDENCE_DIR;
    if (out && produced.length > 0) {
      for (const bundle of produced) writeFileSync(join(out, bundle.file), bundle.evidence);
      writeFileSync(join(out, "bundles.json"), `${JSON.stringify(produced.map(({ evidence: _, ...rest }) => rest), null, 2)}\n`);
    }
    await b?.close();
    await a?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("the peer head comes from A's checkpoint, and B's mirror serves A's signed checkpoint unchanged", async () => {
    const status = await statusOf(b, "below");
    assert.deepEqual([status.state, status.peerHeadSeq, status.forkSeq], [ReplicationState.RUNNING, 60n, 0n], status.lastError);
    const origin = await a.log.getCheckpoint({ logId: "below" });
    const mirrored = await b.log.getCheckpoint({ logId: mirrorLogId(A, "below") });
    assert.equal(mirrored.note, origin.note);
    // Proofs on the mirror are the origin's: its tree is the origin's tree.
    const [proofA, proofB] = await Promise.all([a.log.getInclusionProof({ logId: "below", seq: 17n }), b.log.getInclusionProof({ logId: mirrorLogId(A, "below"), seq: 17n })]);
    assert.deepEqual(proofB.hashes, proofA.hashes);
  });

  /** When the last waitForFork saw the replication stop (before the fork point was located). */
  let stopped = 0;
  async function waitForFork(logId: string): Promise<void> {
    try {
      await until(`${logId}: FORK on B`, async () => (await statusOf(b, logId)).state === ReplicationState.INTEGRITY_ERROR, 30_000);
      stopped = Date.now();
      await until(`${logId}: the fork point`, async () => (await statusOf(b, logId)).forkSeq > 0n, 30_000);
    } catch (error) {
      const status = await statusOf(b, logId);
      throw new Error(`${(error as Error).message}; status: ${ReplicationState[status.state]} head ${status.headSeq} checkpoint ${status.checkpointSize}: ${status.lastError}`);
    }
  }

  /**
   * Rewrites log `logId` on A: keeps seqs 1..keep, appends `appended`
   * different entries, then waits for B's FORK and checks what it says.
   */
  async function forkScenario(logId: string, keep: number, appended: number, expected: { finding: string; proves: boolean }) {
    const mirror = mirrorLogId(A, logId);
    const before = await chainOf(b.log, mirror);
    await truncateHistory(a, logId, keep);
    if (appended > 0) await appendMany(a, logId, appended, "history B");
    // From here A serves only the rewritten history.
    const started = Date.now();
    await dropStaleCheckpoints(a, logId, keep);
    await waitForFork(logId);
    delays.push(`${logId}: FORK after ${stopped - started} ms, fork point after ${Date.now() - started} ms`);
    assert.equal((await a.log.verify({ logId })).valid, true, "A's own Verify passes on the rewritten log");
    const status = await statusOf(b, logId);
    assert.equal(status.lastErrorCode, Code.DataLoss);
    assert.match(status.lastError, new RegExp(`^FORK: ${expected.finding}: `));
    assert.equal(status.forkSeq, BigInt(keep + 1), status.lastError);
    // The mirror keeps what it had, and takes nothing more.
    assert.deepEqual(await chainOf(b.log, mirror), before);
    const [record] = (await b.federation.listAuditRecords({ nodeId: A })).records.filter((r) => r.logId === logId && r.reason === AuditReason.FORK);
    assert.equal(record?.seq, BigInt(keep + 1));
    const scrape = await fetch(`http://127.0.0.1:${b.server.httpPort}/metrics`).then((response) => response.text());
    assert.match(scrape, new RegExp(`annals_federation_forks_total\\{[^}]*log="${logId}"[^}]*\\} 1\\b`));
    const evidence = await b.federation.getForkEvidence({ nodeId: A, logId });
    assert.equal(evidence.forkSeq, BigInt(keep + 1));
    assert.match(evidence.detail, new RegExp(`^FORK: ${expected.finding}`));
    assert.equal(evidence.provesMisbehaviour, expected.proves, evidence.detail);
    if (expected.proves) {
      const logKey = createVerifierKey(`${A.slice("spiffe://".length)}:${logId}`, SIGNATURE_TYPE_ED25519, parseVerifierKey(nodeKey).publicKey);
      const verdict = verifyForkEvidence(evidence.evidence, logKey);
      assert.equal(verdict.provesMisbehaviour, true, verdict.provesMisbehaviour ? "" : verdict.reason);
      produced.push({ file: `${logId}.evidence`, verifier_key: formatVerifierKey(logKey), kind: verdict.kind, fork_seq: Number(evidence.forkSeq), evidence: evidence.evidence });
      // Offline, with the CLI: exported by `annals federation evidence`, checked with only A's node key.
      const exported = await annals("federation", "evidence", "--peer", A, "--log", logId);
      assert.equal(exported.code, 0, exported.stderr);
      assert.equal(exported.stdout, evidence.evidence);
      const file = join(dir, `${logId}.evidence`);
      writeFileSync(file, exported.stdout);
      const checked = await annals("verify-evidence", file, "--key", nodeKey);
      assert.equal(checked.code, 0, checked.stdout + checked.stderr);
      assert.match(checked.stdout, /proves misbehaviour of acme\.example\/annals\/eu-1:/);
      // The same bundle with another log's key proves nothing.
      const stranger = createVerifierKey("acme.example/annals/eu-9", SIGNATURE_TYPE_ED25519, generateKeyPairSync("ed25519").publicKey);
      const refused = await annals("verify-evidence", file, "--key", `${stranger.name}+${stranger.keyId.toString(16).padStart(8, "0")}+${Buffer.concat([Buffer.from([1]), stranger.publicKey]).toString("base64")}`);
      assert.equal(refused.code, 1, refused.stdout);
    }
    return evidence;
  }

  test("rewrite below the cursor (new head 40 < 60): TRUNCATED, fork point 31, evidence proves it", async () => {
    await forkScenario("below", 30, 10, { finding: "TRUNCATED", proves: true });
  });

  test("rewrite exactly at the cursor (new head 60 = 60, another root): SAME_SIZE, fork point 31", async () => {
    await forkScenario("at", 30, 30, { finding: "SAME_SIZE", proves: true });
  });

  test("rewrite above the cursor (new head 80 > 60): INCONSISTENT, fork point 31 (not 61)", async () => {
    await forkScenario("above", 30, 50, { finding: "INCONSISTENT", proves: true });
  });

  test("truncation with nothing appended: TRUNCATED, fork point 46; two consistent checkpoints prove no fork offline", async () => {
    const evidence = await forkScenario("truncated", 45, 0, { finding: "TRUNCATED", proves: false });
    const file = join(dir, "truncated.evidence");
    writeFileSync(file, evidence.evidence);
    const checked = await annals("verify-evidence", file, "--key", nodeKey);
    assert.equal(checked.code, 1);
    assert.match(checked.stdout, /proves nothing: .*consistent/);
  });

  test("a checkpoint signed by a key B did not register: FORK (UNVERIFIED_SIGNATURE) naming the first seq no registered key vouches for", async () => {
    // B's registration names another key than the one A signs with (as if A's key had been replaced behind B's
    // back): A's checkpoints are now signed by a key B did not register. The key is the peer's, for all its logs;
    // "rekeyed" is the one still running (the others stopped at their forks already).
    const { publicKey } = generateKeyPairSync("ed25519");
    const other = createVerifierKey(A.slice("spiffe://".length), SIGNATURE_TYPE_ED25519, publicKey);
    const changed = await annals("peers", "update", A, "--log-key", formatVerifierKey(other));
    assert.equal(changed.code, 0, changed.stderr);
    assert.equal(changed.stdout.trim(), `updated ${A}: log_verifier_key`);
    const started = Date.now();
    await waitForFork("rekeyed");
    delays.push(`rekeyed: FORK ${stopped - started} ms after B's registration changed`);
    const status = await statusOf(b, "rekeyed");
    assert.match(status.lastError, /^FORK: UNVERIFIED_SIGNATURE: /);
    assert.equal(status.forkSeq, 61n);
    assert.equal((await b.federation.getForkEvidence({ nodeId: A, logId: "rekeyed" })).provesMisbehaviour, false);
    // Back to A's real key for what follows.
    assert.equal((await annals("peers", "update", A, "--log-key", nodeKey)).code, 0);
  });

  test("recovery: reset is refused for a fork; quarantine keeps the mirror readable and marked; re-mirror pulls A's history afresh", async () => {
    // A's rewritten "below" history is what B mirrors again once the operator trusts A again.
    const rejected = await rejects(b.federation.resetReplication({ nodeId: A, logId: "below" }), Code.FailedPrecondition);
    assert.equal(errorReason(rejected), "FORK");
    const early = await rejects(b.federation.reMirror({ nodeId: A, logId: "below" }), Code.FailedPrecondition);
    assert.equal(errorReason(early), "NOT_QUARANTINED");
    const quarantined = await annals("federation", "quarantine", "--peer", A, "--log", "below");
    assert.equal(quarantined.code, 0, quarantined.stderr);
    assert.match(quarantined.stdout, /\tquarantined\t/);
    const old = mirrorLogId(A, "below");
    assert.equal((await headOf(b.log, old)), 60n, "the quarantined mirror stays readable");
    await rejects(b.log.append({ logId: old, entry: jsonEntry("x", {}) }), Code.FailedPrecondition);
    const status = await annals("federation", "status", "--peer", A);
    assert.equal(status.code, 1);
    assert.match(status.stdout, /below → mirror\/acme\.example\/annals\/eu-1\/below\tquarantined\t.*fork at seq 31\tquarantined: mirror\/acme\.example\/annals\/eu-1\/below/);
    // The evidence is still there to export.
    assert.equal((await b.federation.getForkEvidence({ nodeId: A, logId: "below" })).forkSeq, 31n);
    const remirrored = await annals("federation", "re-mirror", "--peer", A, "--log", "below");
    assert.equal(remirrored.code, 0, remirrored.stderr);
    const next = `${old}.2`;
    assert.match(remirrored.stdout, new RegExp(`below → ${next.replace(/[./]/g, "\\$&")}\\t`));
    try {
      await until("the new mirror to hold A's rewritten history", async () => (await headOf(b.log, next)) === 40n);
    } catch (error) {
      const now = await statusOf(b, "below");
      throw new Error(`${(error as Error).message}; status: ${ReplicationState[now.state]} ${now.mirrorLogId} head ${now.headSeq}: ${now.lastError}`);
    }
    assert.deepEqual(
      (await chainOf(b.log, next)).map((line) => line.split(":")[1]),
      (await chainOf(a.log, "below")).map((line) => line.split(":")[1]),
    );
    await until("the new mirror to accept A's checkpoint", async () => (await statusOf(b, "below")).checkpointSize === 40n);
    const after = await statusOf(b, "below");
    assert.deepEqual([after.state, after.mirrorLogId, after.forkSeq, after.quarantinedMirrorLogIds], [ReplicationState.RUNNING, next, 0n, [old]]);
    const reasons = (await b.federation.listAuditRecords({ nodeId: A })).records.filter((r) => r.logId === "below").map((r) => AuditReason[r.reason]);
    assert.deepEqual(reasons.slice(0, 3), ["RE_MIRROR", "QUARANTINE", "FORK"]);
    // Quarantine is for forks only.
    assert.equal(errorReason(await rejects(b.federation.quarantineMirror({ nodeId: A, logId: "unmirrored" }), Code.FailedPrecondition)), "NOT_FORKED");
    assert.equal(errorReason(await rejects(b.federation.getForkEvidence({ nodeId: A, logId: "unmirrored" }), Code.NotFound)), "NO_EVIDENCE");
  });
});
