import assert from "node:assert/strict";
import { test } from "node:test";
import { fromBase64, toHex } from "./bytes.js";
import { checkpointsEqual, formatCheckpoint, logOrigin, openCheckpoint, parseCheckpoint, parseLogOrigin, signCheckpoint } from "./checkpoint.js";
import { emptyRoot } from "./merkle-hash.js";
import { ARCHE_CHECKPOINT } from "./note-vectors.js";
import { createNoteSigner, parseNote } from "./signed-note.js";
import { ed25519PrivateKeyFromSeed, parseVerifierKey } from "./verifier-key.js";

const origin = logOrigin("spiffe://acme.example/annals/eu-1", "orders");
const signer = createNoteSigner(origin, ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(5)));

test("the tlog-checkpoint example's body parses and formats back", () => {
  const text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
  const checkpoint = parseCheckpoint(text);
  assert.equal(checkpoint.origin, "example.com/behind-the-sofa");
  assert.equal(checkpoint.size, 20852163n);
  assert.equal(toHex(checkpoint.rootHash), toHex(fromBase64("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")!));
  assert.equal(formatCheckpoint(checkpoint), text);
  const withExtensions = `${text}ext one\nExtendo\n`;
  assert.deepEqual(parseCheckpoint(withExtensions).extensions, ["ext one", "Extendo"]);
  assert.equal(formatCheckpoint(parseCheckpoint(withExtensions)), withExtensions);
});

test("a real checkpoint opens under its log key", () => {
  const opened = openCheckpoint(ARCHE_CHECKPOINT.note, [parseVerifierKey(ARCHE_CHECKPOINT.logVkey)], { origin: "arche2025h1.staging.ct.transparency.dev" });
  assert.equal(opened.checkpoint.size, ARCHE_CHECKPOINT.size);
});

test("annals checkpoints sign and open, and the origin is checked", () => {
  const checkpoint = { origin, size: 0n, rootHash: emptyRoot(), extensions: [] };
  const note = signCheckpoint(checkpoint, [signer]);
  assert.equal(parseNote(note).text, `${origin}\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n`);
  const opened = openCheckpoint(note, [signer.key], { origin });
  assert.ok(checkpointsEqual(opened.checkpoint, checkpoint));
  assert.equal(opened.note, note);
  assert.throws(() => openCheckpoint(note, [signer.key], { origin: "other" }), { name: "CheckpointError", reason: "wrong-origin" });
  const other = createNoteSigner(origin, ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(6)));
  assert.throws(() => openCheckpoint(note, [other.key]), { name: "NoteError", reason: "unverified" });
});

test("every malformed checkpoint body is refused", () => {
  const root = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
  const bad = [
    "", "o\n1\n", `o\n1\n${root}`, `\n1\n${root}\n`, `o\n\n${root}\n`, `o\n01\n${root}\n`, `o\n-1\n${root}\n`, `o\n+1\n${root}\n`,
    `o\n1.0\n${root}\n`, `o\n 1\n${root}\n`, `o\n9223372036854775808\n${root}\n`, `o\n99999999999999999999999\n${root}\n`,
    "o\n1\nAAAA\n", `o\n1\n${root.slice(0, -1)}\n`, `o\n1\n${root.replace("=", "")}\n`, `o\n1\n${root}\n\n`, `o\n1\n${root}\next\n\n`,
  ];
  for (const text of bad) assert.throws(() => parseCheckpoint(text), { name: "CheckpointError", reason: "malformed" }, JSON.stringify(text));
  assert.equal(parseCheckpoint(`o\n9223372036854775807\n${root}\n`).size, (1n << 63n) - 1n);
  assert.throws(() => formatCheckpoint({ origin: "o", size: 1n << 63n, rootHash: emptyRoot(), extensions: [] }), { name: "ProofError" });
  assert.throws(() => formatCheckpoint({ origin: "o", size: 1n, rootHash: emptyRoot(), extensions: [""] }), { name: "CheckpointError" });
});

test("origins name the node and the log, and split back", () => {
  assert.equal(origin, "acme.example/annals/eu-1:orders");
  assert.deepEqual(parseLogOrigin("acme.example/annals/eu-1:team/orders"), { nodeId: "spiffe://acme.example/annals/eu-1", logId: "team/orders" });
  // With "/" as the separator these two would collide.
  assert.notEqual(logOrigin("spiffe://a.example/x/log/y", "z"), logOrigin("spiffe://a.example/x", "y/log/z"));
  for (const [node, log] of [["acme.example/annals", "orders"], ["spiffe://", "orders"], ["spiffe://a:b/c", "orders"], ["spiffe://a/b", ""], ["spiffe://a/b", "x:y"], ["spiffe://a/b", "x y"], ["spiffe://a/b", "x+y"]]) {
    assert.throws(() => logOrigin(node!, log!), { name: "CheckpointError", reason: "bad-origin" }, `${node} ${log}`);
  }
  assert.throws(() => parseLogOrigin("example.com/log"), { name: "CheckpointError", reason: "bad-origin" });
});
