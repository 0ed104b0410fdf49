// The serving side: Pull to a registered peer, its frames, and everything it refuses.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { SignJWT, exportJWK, generateKeyPair } from "jose";
import { createAnnalsClients } from "@annals/client";
import { federationV1, type logV1 } from "@annals/proto";
import { errorReason, retryDelayMs } from "@annals/runtime";
import { rejects } from "@annals/runtime/testing";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { jsonEntry, startTestNode, type TestNode } from "./federation-harness.js";
import { publicPart, type NodeIdentity } from "./identity.js";
import { signPeerToken } from "./peer-token.js";

const A = "spiffe://acme.example/annals/eu-1";
const B = "spiffe://acme.example/annals/us-1";
const { AuditReason } = federationV1;

async function identity(nodeId: string): Promise<NodeIdentity> {
  const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  return { nodeId, privateKey, publicJwk: publicPart(await exportJWK(privateKey)) };
}

type PullRequest = MessageInitShape<typeof federationV1.PullRequestSchema>;
type Frame = federationV1.PullResponse["frame"];

/** Reads a Pull stream with `token` until `enough` holds for the frames so far (or it ends). */
async function pull(node: TestNode, token: string, request: PullRequest, enough: (frames: Frame[]) => boolean): Promise<Frame[]> {
  const client = createAnnalsClients({ baseUrl: node.baseUrl, token }).federation;
  const controller = new AbortController();
  const frames: Frame[] = [];
  try {
    for await (const response of client.pull(request, { signal: controller.signal })) {
      frames.push(response.frame);
      if (enough(frames)) break;
    }
  } finally {
    controller.abort();
  }
  return frames;
}

/** The entries the frames carry, from `entry` and `entries` frames alike. */
const entriesOf = (frames: Frame[]): logV1.Entry[] =>
  frames.flatMap((frame) => (frame.case === "entry" ? [frame.value] : frame.case === "entries" ? frame.value.entries : []));
const untilCaughtUp = (frames: Frame[]) => frames.some((frame) => frame.case === "caughtUp");
const firstFrame = () => true;

describe("federation: Pull", () => {
  let a: TestNode;
  let b: NodeIdentity;
  let token: () => Promise<string>;
  before(async () => {
    a = await startTestNode("federation_pull", A);
    b = await identity(B);
    token = () => signPeerToken(b, A);
    await a.federation.registerPeer({ peer: { nodeId: B, url: "https://b.example", publicKeyJwk: JSON.stringify(b.publicJwk), servedLogs: ["orders", "eu/*"] } });
    await a.log.appendBatch({ logId: "orders", entries: [1, 2, 3, 4, 5].map((i) => jsonEntry("order.placed", { i })) });
  });
  after(async () => {
    await a?.close();
  });

  test("without batch frames: one entry frame per entry after after_seq, with the chain fields, caught_up at the head, then live", async () => {
    const reading = pull(a, await token(), { logId: "orders", afterSeq: 1n }, (frames) => entriesOf(frames).length === 5);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await a.log.append({ logId: "orders", entry: jsonEntry("order.paid", { i: 6 }) });
    const frames = await reading;
    assert.deepEqual(
      frames.map((frame) => frame.case),
      ["entry", "entry", "entry", "entry", "caughtUp", "entry"],
      "a puller that did not ask for batches never gets an entries frame",
    );
    assert.deepEqual(frames[4]!.value, { ...frames[4]!.value, seq: 5n });
    const entries = entriesOf(frames);
    assert.deepEqual(entries.map((e) => e.seq), [2n, 3n, 4n, 5n, 6n]);
    const stored = await a.log.read({ logId: "orders", fromSeq: 2n, pageSize: 5 });
    assert.deepEqual(entries.map((e) => [e.checksum, e.prevChecksum, e.payloadDigest]), stored.entries.map((e) => [e.checksum, e.prevChecksum, e.payloadDigest]));
    assert.ok(entries.every((e) => e.chainLogId === "orders"));
  });

  test("with max_entries_per_frame: entries frames of at most that many, in order, then caught_up", async () => {
    const head = (await a.log.getLog({ logId: "orders" })).head!.lastSeq;
    const frames = await pull(a, await token(), { logId: "orders", afterSeq: 0n, maxEntriesPerFrame: 2 }, untilCaughtUp);
    const batches = frames.flatMap((frame) => (frame.case === "entries" ? [frame.value.entries.length] : []));
    assert.ok(batches.some((size) => size === 2), `batch sizes ${batches}`);
    assert.ok(batches.every((size) => size >= 1 && size <= 2), `batch sizes ${batches}`);
    assert.deepEqual(entriesOf(frames).map((e) => e.seq), Array.from({ length: Number(head) }, (_, i) => BigInt(i + 1)));
    assert.deepEqual(frames.at(-1), { case: "caughtUp", value: frames.at(-1)!.value });
    assert.equal((frames.at(-1)!.value as logV1.CaughtUp).seq, head);
  });

  test("an idle stream sends heartbeats with the log's head and its time", { timeout: 30_000 }, async () => {
    const head = (await a.log.getLog({ logId: "orders" })).head!.lastSeq;
    const frames = await pull(a, await token(), { logId: "orders", afterSeq: head }, (seen) => seen.some((frame) => frame.case === "heartbeat"));
    const beat = frames.find((frame) => frame.case === "heartbeat")!.value;
    const last = (await a.log.getEntry({ logId: "orders", selector: { case: "seq", value: head } })).entry!;
    assert.deepEqual([beat.headSeq, beat.lastSeq], [head, head]);
    assert.ok(Math.abs(timestampMs(beat.headTime!) - Number(last.wallTimeUs / 1000n)) <= 1, "head_time is the head entry's wall time");
  });

  test("after a compaction: after_seq 0 starts with the anchor; after_seq inside the compacted range or past the head is OUT_OF_RANGE", async () => {
    await a.log.appendBatch({ logId: "eu/compacted", entries: [1, 2, 3, 4].map((i) => jsonEntry("x", { i })) });
    await a.log.compact({ logId: "eu/compacted", retain: { case: "beforeSeq", value: 3n } });
    const stored = (await a.log.getLog({ logId: "eu/compacted" })).head!;
    assert.equal(stored.anchor?.seq, 2n);
    const frames = await pull(a, await token(), { logId: "eu/compacted", afterSeq: 0n }, untilCaughtUp);
    assert.deepEqual(frames.map((frame) => frame.case), ["anchor", "entry", "entry", "caughtUp"]);
    assert.deepEqual(frames[0]!.value, { ...frames[0]!.value, seq: 2n, checksum: stored.anchor.checksum });
    assert.deepEqual(entriesOf(frames).map((e) => e.seq), [3n, 4n]);
    assert.equal(entriesOf(frames)[0]!.prevChecksum, stored.anchor.checksum, "the first entry links to the anchor");

    // Resuming at the anchor needs no anchor frame; before it, the entries are gone.
    assert.deepEqual((await pull(a, await token(), { logId: "eu/compacted", afterSeq: 2n }, untilCaughtUp)).map((frame) => frame.case), ["entry", "entry", "caughtUp"]);
    const compacted = await rejects(pull(a, await token(), { logId: "eu/compacted", afterSeq: 1n }, firstFrame), Code.OutOfRange);
    assert.equal(errorReason(compacted), "SEQ_COMPACTED");
    const pastHead = await rejects(pull(a, await token(), { logId: "eu/compacted", afterSeq: 5n }, firstFrame), Code.OutOfRange);
    assert.equal(errorReason(pastHead), "SEQ_PAST_HEAD");
    // At the head: nothing to send but the caught_up frame.
    assert.deepEqual(await pull(a, await token(), { logId: "eu/compacted", afterSeq: 4n }, firstFrame), [{ case: "caughtUp", value: frames.at(-1)!.value }]);
  });

  test("bad requests are INVALID_ARGUMENT naming the field; a log that is not here is NOT_FOUND", async () => {
    await rejects(pull(a, await token(), { logId: "orders", afterSeq: -1n }, firstFrame), Code.InvalidArgument, /^after_seq: /);
    await rejects(pull(a, await token(), { logId: "orders", maxEntriesPerFrame: 1001 }, firstFrame), Code.InvalidArgument, /^max_entries_per_frame: /);
    await rejects(pull(a, await token(), { logId: "orders", maxEntriesPerFrame: -1 }, firstFrame), Code.InvalidArgument, /^max_entries_per_frame: /);
    const missing = await rejects(pull(a, await token(), { logId: "eu/nothing" }, firstFrame), Code.NotFound, /does not exist here/);
    assert.equal(errorReason(missing), "LOG_NOT_FOUND");
  });

  test("refused: no token, an unknown issuer, another key, another audience, an expired token, a log not served; each audited as a refused Pull", async () => {
    const client = (token?: string) => createAnnalsClients({ baseUrl: a.baseUrl, ...(token ? { token } : {}) }).federation;
    const first = async (token: string | undefined, logId = "orders") => {
      for await (const _ of client(token).pull({ logId })) return;
    };
    const before = (await a.federation.listAuditRecords({})).records.length;
    assert.equal(errorReason(await rejects(first(undefined), Code.Unauthenticated, /needs a peer token/)), "PEER_TOKEN_MISSING");
    const unknown = await rejects(first(await signPeerToken(await identity("spiffe://acme.example/annals/nobody"), A)), Code.Unauthenticated, /no peer .* is registered/);
    assert.equal(errorReason(unknown), "PEER_UNKNOWN");
    const impostor = { ...(await identity(B)) };
    const forged = await rejects(first(await signPeerToken(impostor, A)), Code.Unauthenticated, /signature does not verify/);
    assert.equal(errorReason(forged), "PEER_TOKEN_INVALID");
    await rejects(first(await signPeerToken(b, "spiffe://acme.example/annals/elsewhere")), Code.Unauthenticated, /"aud" claim/);
    const now = Math.floor(Date.now() / 1000);
    const expired = await new SignJWT({}).setProtectedHeader({ alg: "EdDSA" }).setIssuer(B).setSubject(B).setAudience(A).setIssuedAt(now - 600).setExpirationTime(now - 300).sign(b.privateKey);
    await rejects(first(expired), Code.Unauthenticated, /expired/);
    const notServed = await rejects(first(await signPeerToken(b, A), "payments"), Code.PermissionDenied, /may not pull log "payments"/);
    assert.equal(errorReason(notServed), "LOG_NOT_SERVED");
    const records = (await a.federation.listAuditRecords({})).records;
    assert.equal(records.length - before, 6, JSON.stringify(records.map((r) => r.message)));
    assert.ok(records.slice(0, 6).every((record) => record.reason === AuditReason.PULL_REFUSED));
    assert.match(records[0]!.message, /^LOG_NOT_SERVED: peer "spiffe:\/\/acme\.example\/annals\/us-1" may not pull log "payments"/);
    assert.deepEqual([records[0]!.nodeId, records[0]!.logId], [B, "payments"]);
    assert.ok(records.some((record) => /^PEER_TOKEN_INVALID: .*signature/.test(record.message) && record.nodeId === B));
    assert.ok(records.some((record) => /^PEER_UNKNOWN: no peer .* is registered here$/.test(record.message)));
    assert.ok(records[0]!.time && records[0]!.lastTime && timestampMs(records[0]!.time) <= Date.now());
    await rejects((await a.clientsWith(["log.read"])).federation.listAuditRecords({}), Code.PermissionDenied);
  });

  test("refusals cannot fill the audit trail: repeats are one record with a count, a window adds few records, a claimed issuer is cut short", async () => {
    const client = (token: string) => createAnnalsClients({ baseUrl: a.baseUrl, token }).federation;
    const first = async (token: string) => {
      for await (const _ of client(token).pull({ logId: "orders" })) return;
    };
    const nobody = await signPeerToken(await identity("spiffe://flood.example/annals/nobody"), A);
    const before = (await a.federation.listAuditRecords({ pageSize: 1000 })).records.length;
    for (let round = 0; round < 6; round++) {
      await Promise.all(Array.from({ length: 50 }, () => rejects(first(nobody), Code.Unauthenticated)));
    }
    let records = (await a.federation.listAuditRecords({ pageSize: 1000 })).records;
    assert.equal(records.length - before, 1, "300 identical refusals, one record");
    assert.equal(records[0]!.count, 300n);
    assert.equal(records[0]!.nodeId, "spiffe://flood.example/annals/nobody");
    assert.match(records[0]!.source, /^(ipv4:)?127\.0\.0\.1$|^(ipv6:)?\[?::1\]?$|^ipv6:\[::ffff:127\.0\.0\.1\]$/);
    assert.ok(timestampMs(records[0]!.lastTime!) >= timestampMs(records[0]!.time!));

    // Made-up issuers, each different, one of them 5,000 characters long.
    const unsigned = (iss: string) => new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setIssuer(iss).setAudience(A).sign(new TextEncoder().encode("x".repeat(32)));
    const long = `spiffe://flood.example/${"x".repeat(5000)}`;
    await rejects(first(await unsigned(long)), Code.Unauthenticated, /^no peer "spiffe:\/\/flood\.example\/x{77}…" is registered here$/);
    await Promise.all(Array.from({ length: 200 }, async (_, i) => rejects(first(await unsigned(`spiffe://flood.example/n${i}`)), Code.Unauthenticated)));
    records = (await a.federation.listAuditRecords({ pageSize: 1000 })).records;
    assert.ok(records.length - before <= 2 + 20 + 1, `201 different refusals added ${records.length - before - 1} records`);
    const overflow = records.find((record) => record.reason === AuditReason.REFUSALS_AGGREGATED);
    assert.ok(overflow, "the refusals past the cap are counted in one record");
    assert.match(overflow.message, /^more than 20 different Pull refusals within 60000 ms/);
    assert.ok(records.every((record) => record.nodeId.length <= 101));
    const total = records.slice(0, records.length - before).reduce((sum, record) => sum + record.count, 0n);
    assert.equal(total, 300n + 201n, "every refusal is counted somewhere");
  });

  test("a disabled peer is refused; enabled again it pulls", async () => {
    await a.federation.updatePeer({ peer: { nodeId: B, status: federationV1.PeerStatus.DISABLED }, updateMask: { paths: ["status"] } });
    const refused = await rejects(pull(a, await token(), { logId: "orders" }, firstFrame), Code.PermissionDenied, /disabled/);
    assert.equal(errorReason(refused), "PEER_DISABLED");
    await a.federation.updatePeer({ peer: { nodeId: B, status: federationV1.PeerStatus.ACTIVE }, updateMask: { paths: ["status"] } });
    assert.equal((await pull(a, await token(), { logId: "orders" }, firstFrame)).length, 1);
  });

  test("a peer that starts too many Pulls in a minute gets RESOURCE_EXHAUSTED with a retry delay", async () => {
    await a.restart({ pullsPerMinute: 2 });
    await pull(a, await token(), { logId: "orders" }, firstFrame);
    await pull(a, await token(), { logId: "orders" }, firstFrame);
    const limited = await rejects(pull(a, await token(), { logId: "orders" }, firstFrame), Code.ResourceExhausted, /this minute/);
    assert.equal(errorReason(limited), "PULL_RATE_LIMITED");
    const delay = retryDelayMs(limited) ?? 0;
    assert.ok(delay > 0 && delay <= 60_000, `retry after ${delay} ms`);
  });
});
