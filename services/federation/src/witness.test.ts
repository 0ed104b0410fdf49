// A node's witness (C2SP tlog-witness) over its HTTP port: every answer the
// spec prescribes for bad input, cosignatures that verify, compare-and-swap
// under concurrent requests, and refused inconsistent checkpoints kept as
// evidence.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  SIGNATURE_TYPE_COSIGNATURE_V1,
  appendLeaves,
  checkNoteSignatures,
  consistencyProof,
  createCosigner,
  createMemoryTileStore,
  createNoteSigner,
  createVerifierKey,
  ed25519PrivateKeyFromSeed,
  emptyRightEdge,
  formatAddCheckpointRequest,
  formatVerifierKey,
  leafHash,
  parseVerifierKey,
  signCheckpoint,
  treeRoot,
  verifyNote,
} from "@annals/chain";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { publishedNote } from "@annals/log";
import { createLogger } from "@annals/runtime";
import { startTestNode, type TestNode } from "./federation-harness.js";
import { Witness, originHash } from "./witness-endpoint.js";
import { listWitnessEvidence } from "./witness-store.js";

const W = "spiffe://acme.example/annals/witness-1";
const ORIGIN = "acme.example/annals/eu-1:orders";
const WITNESS_NAME = "witness-1.acme.example/w";

/** A log in memory: its leaves, tiles, and checkpoints signed with the key of `seed`. */
function memoryLog(label: string, count: number, seed: number, origin = ORIGIN, sharedPrefix?: { label: string; count: number }) {
  const leaves = Array.from({ length: count }, (_, i) => {
    const from = sharedPrefix && i < sharedPrefix.count ? sharedPrefix.label : label;
    return new Uint8Array(createHash("sha256").update(`${from} ${i}`).digest());
  });
  const store = createMemoryTileStore();
  store.applyUpdates(appendLeaves(emptyRightEdge(), leaves.map(leafHash)).updates);
  const signer = createNoteSigner(origin, ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(seed)));
  return {
    signer,
    root: (size: bigint) => treeRoot(size, store.reader),
    proof: (from: bigint, to: bigint) => (from === 0n ? Promise.resolve([]) : consistencyProof(from, to, store.reader)),
    checkpoint: async (size: bigint) => signCheckpoint({ origin, size, rootHash: await treeRoot(size, store.reader), extensions: [] }, [signer]),
  };
}

const log = memoryLog("orders", 64, 7);
// The same origin and key, the same first 10 leaves, then another history.
const forked = memoryLog("rewritten", 64, 7, ORIGIN, { label: "orders", count: 10 });
const stranger = memoryLog("other", 64, 9, "elsewhere.example/log");
const witnessSeed = new Uint8Array(32).fill(42);
const witnessKey = createVerifierKey(WITNESS_NAME, SIGNATURE_TYPE_COSIGNATURE_V1, ed25519PrivateKeyFromSeed(witnessSeed));

let node: TestNode;
const url = (path: string) => `http://127.0.0.1:${node.server.httpPort}/witness/v1/${path}`;

async function post(body: string | Uint8Array): Promise<{ status: number; type: string; text: string }> {
  const response = await fetch(url("add-checkpoint"), { method: "POST", body });
  return { status: response.status, type: response.headers.get("content-type") ?? "", text: await response.text() };
}

async function add(oldSize: bigint, size: bigint, from = log, proofFrom = from) {
  return post(formatAddCheckpointRequest({ oldSize, proof: await proofFrom.proof(oldSize, size), note: await from.checkpoint(size) }));
}

async function storedSize(): Promise<bigint | null> {
  const { rows } = await node.db.query<{ tree_size: bigint }>(`select tree_size from federation.witness_checkpoints where origin = $1`, [ORIGIN]);
  return rows[0] ? BigInt(rows[0].tree_size) : null;
}

before(async () => {
  node = await startTestNode("federation_witness", W, {
    witness: {
      logs: [{ origin: ORIGIN, keys: [log.signer.key] }],
      name: WITNESS_NAME,
      keyJwk: ed25519PrivateKeyFromSeed(witnessSeed).export({ format: "jwk" }),
    },
  });
});

after(async () => {
  await node?.close();
});

describe("add-checkpoint answers as tlog-witness says", () => {
  test("GetNodeInfo tells the witness's verifier key (type 0x04)", async () => {
    const info = await node.federation.getNodeInfo({});
    assert.equal(info.witnessVerifierKey, formatVerifierKey(witnessKey));
    assert.equal(parseVerifierKey(info.witnessVerifierKey).type, SIGNATURE_TYPE_COSIGNATURE_V1);
  });

  test("404 for an origin it does not witness", async () => {
    const answer = await add(0n, 5n, stranger);
    assert.equal(answer.status, 404);
  });

  test("403 when no trusted key signed, or a trusted key's signature fails", async () => {
    const impostor = memoryLog("orders", 64, 8); // same origin, another key
    assert.equal((await add(0n, 5n, impostor)).status, 403);
    const note = await log.checkpoint(5n);
    // Flip one byte of the signature: the line still names the trusted key and its ID.
    const [text, sigs] = note.split("\n\n");
    const line = sigs!.trimEnd();
    const b64 = line.slice(line.lastIndexOf(" ") + 1);
    const bytes = Buffer.from(b64, "base64");
    bytes[10]! ^= 0xff;
    const forged = `${text}\n\n${line.slice(0, line.lastIndexOf(" ") + 1)}${bytes.toString("base64")}\n`;
    assert.equal((await post(formatAddCheckpointRequest({ oldSize: 0n, proof: [], note: forged }))).status, 403);
    assert.equal(await storedSize(), null, "nothing stored");
  });

  test("400 for bodies that are not old size, proof lines, empty line, checkpoint; and for an old size above the checkpoint's", async () => {
    const note = await log.checkpoint(5n);
    for (const body of [
      `old 0\n${note}`, // no empty line
      `old 00\n\n${note}`, // leading zero
      `old -1\n\n${note}`,
      `new 0\n\n${note}`,
      `old 0\nnot-base64!\n\n${note}`,
      `old 0\n\nacme.example/annals/eu-1:orders\n5\n`, // not a signed note
      `old 0\n\n${note.replace("\n5\n", "\nfive\n")}`, // not a checkpoint
    ]) {
      const answer = await post(body);
      assert.equal(answer.status, 400, `${JSON.stringify(body.slice(0, 40))}: ${answer.text}`);
    }
    assert.equal((await post(new Uint8Array([0x6f, 0x6c, 0x64, 0x20, 0xff, 0x0a, 0x0a]))).status, 400, "not UTF-8");
    // old 9 > size 5: 400 (checked after the signature, before the stored size).
    assert.equal((await post(formatAddCheckpointRequest({ oldSize: 9n, proof: [], note }))).status, 400);
    assert.equal(await storedSize(), null);
  });

  test("200 with a timestamped cosignature line; stored before answering; the monitoring endpoint serves it", async () => {
    const before = BigInt(Math.floor(Date.now() / 1000));
    const answer = await add(0n, 10n);
    assert.equal(answer.status, 200, answer.text);
    assert.match(answer.text, /^\u2014 witness-1\.acme\.example\/w [A-Za-z0-9+/=]+\n$/);
    const cosigned = (await log.checkpoint(10n)) + answer.text;
    const { verified } = checkNoteSignatures(cosigned, [witnessKey]);
    assert.equal(verified.length, 1);
    assert.ok(verified[0]!.timestamp! >= before && verified[0]!.timestamp! <= BigInt(Math.ceil(Date.now() / 1000)));
    assert.equal(await storedSize(), 10n);
    const monitored = await fetch(url(`${originHash(ORIGIN)}/checkpoint`));
    assert.equal(monitored.status, 200);
    const note = await monitored.text();
    assert.equal(verifyNote(note, [log.signer.key]).verified.length, 1);
    assert.equal(checkNoteSignatures(note, [witnessKey]).verified.length, 1);
    assert.equal((await fetch(url(`${originHash("nobody")}/checkpoint`))).status, 404);
  });

  test("409 with the stored size as text/x.tlog.size when the old size is not the one cosigned", async () => {
    const answer = await add(0n, 20n);
    assert.deepEqual([answer.status, answer.type, answer.text], [409, "text/x.tlog.size", "10\n"]);
    const behind = await add(5n, 20n);
    assert.deepEqual([behind.status, behind.text], [409, "10\n"]);
    assert.equal(await storedSize(), 10n);
  });

  test("422 for a proof that does not verify and for the stored size with another root; both kept as evidence", async () => {
    const before = (await listWitnessEvidence(node.db, ORIGIN)).length;
    // The proof from 12 to 20, sent as the proof from 10: it does not verify.
    const wrongProof = await log.proof(12n, 20n);
    const bad = await post(formatAddCheckpointRequest({ oldSize: 10n, proof: wrongProof, note: await log.checkpoint(20n) }));
    assert.equal(bad.status, 422, bad.text);
    const otherRoot = memoryLog("different", 64, 7); // same key and origin, a different tree of 10
    const sameSize = await post(formatAddCheckpointRequest({ oldSize: 10n, proof: [], note: await otherRoot.checkpoint(10n) }));
    assert.equal(sameSize.status, 422, sameSize.text);
    const evidence = await listWitnessEvidence(node.db, ORIGIN);
    assert.equal(evidence.length, before + 2);
    assert.deepEqual(evidence.slice(-2).map((row) => Number(row.status)), [422, 422]);
    assert.equal(evidence.at(-1)!.submitted_note, await otherRoot.checkpoint(10n));
    assert.match(evidence.at(-1)!.cosigned_note!, /^acme\.example\/annals\/eu-1:orders\n10\n/);
    assert.equal(await storedSize(), 10n, "the stored checkpoint did not move");
  });

  test("a fork after the cosigned size is refused (422) and kept; a rewrite of the cosigned size with a wrong old size is a 409 kept too", async () => {
    const before = (await listWitnessEvidence(node.db, ORIGIN)).length;
    // The fork shares leaves 1–10 (the cosigned tree) but not 11–20: its own proof from 10 does verify...
    const forkProof = await add(10n, 20n, forked);
    // ...because a fork after the cosigned size is consistent with it: the witness cannot tell yet. It cosigns.
    assert.equal(forkProof.status, 200, "the fork is consistent with the 10 leaves the witness saw");
    // The log then sends its real size 30: not consistent with the fork's 20 that the witness now holds.
    const real = await add(20n, 30n);
    assert.equal(real.status, 422, real.text);
    const rewritten = memoryLog("again", 64, 7);
    const conflict = await post(formatAddCheckpointRequest({ oldSize: 3n, proof: await rewritten.proof(3n, 20n), note: await rewritten.checkpoint(20n) }));
    assert.deepEqual([conflict.status, conflict.text], [409, "20\n"]);
    const evidence = await listWitnessEvidence(node.db, ORIGIN);
    assert.deepEqual(evidence.slice(before).map((row) => Number(row.status)), [422, 409]);
    assert.equal(await storedSize(), 20n);
  });

  test("concurrent requests from one stored size: exactly one advances it (compare-and-swap), the others get 409", async () => {
    const stored = await storedSize(); // 20, of the forked history
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => add(stored!, stored! + BigInt(i + 1), forked)));
    const statuses = answers.map((answer) => answer.status);
    assert.equal(statuses.filter((status) => status === 200).length, 1, `statuses ${statuses.join(",")}`);
    assert.equal(statuses.filter((status) => status === 409).length, 7);
    const winner = stored! + BigInt(statuses.indexOf(200) + 1);
    assert.equal(await storedSize(), winner);
    for (const answer of answers.filter((a) => a.status === 409)) assert.equal(answer.text, `${winner}\n`);
  });
});

describe("the vectors of docs/merkle.md", () => {
  test("the witness answers the vectors' add-checkpoint requests with their exact cosignature lines; the log publishes their note", async () => {
    const vectors = JSON.parse(readFileSync(new URL("../../../docs/merkle/vectors.json", import.meta.url), "utf8")) as {
      witnessed: {
        origin: string;
        verifier_key: string;
        witnesses: { key_seed: string }[];
        requests: { witness: number; timestamp: string; body: string; response: string }[];
        published_note: string;
      };
    };
    const wd = vectors.witnessed;
    const logger = createLogger({ name: "witness-vectors", level: "error" });
    let served = 0;
    for (const [index, { key_seed }] of wd.witnesses.entries()) {
      const requests = wd.requests.filter((request) => request.witness === index);
      if (requests.length === 0) continue;
      // Each vector witness starts from nothing stored (they share this database's table).
      await node.db.query(`delete from federation.witness_checkpoints where origin = $1`, [wd.origin]);
      let clock = 0n;
      const witness = new Witness({
        db: node.db,
        cosigner: createCosigner(`acme.example/annals/w${index + 1}`, ed25519PrivateKeyFromSeed(Buffer.from(key_seed, "hex"))),
        logs: [{ origin: wd.origin, keys: [parseVerifierKey(wd.verifier_key)] }],
        now: () => clock,
        logger,
      });
      for (const request of requests) {
        clock = BigInt(request.timestamp);
        const answer = await witness.addCheckpoint(new TextEncoder().encode(request.body));
        assert.deepEqual([answer.status, answer.body], [200, request.response]);
        served++;
      }
    }
    assert.equal(served, wd.requests.length);
    const note = wd.requests[1]!.body.slice(wd.requests[1]!.body.indexOf("\n\n") + 2);
    assert.equal(publishedNote(note, wd.requests.slice(1).map((request) => request.response.trimEnd())), wd.published_note);
  });
});
