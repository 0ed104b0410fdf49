import assert from "node:assert/strict";
import { test } from "node:test";
import { toHex } from "./bytes.js";
import { decodeEntryBundle, encodeEntryBundle } from "./entry-bundle.js";

test("entries are uint16 big-endian length-prefixed", () => {
  const checksum = new Uint8Array(32).fill(0xab);
  const bundle = encodeEntryBundle([checksum, new Uint8Array([1, 2, 3])]);
  assert.equal(toHex(bundle.subarray(0, 3)), "0020ab");
  assert.equal(toHex(bundle.subarray(34)), "0003010203");
  assert.deepEqual(decodeEntryBundle(bundle).map(toHex), [toHex(checksum), "010203"]);
});

test("bad bundles are refused", () => {
  assert.throws(() => encodeEntryBundle([]), { name: "TileError", reason: "bad-bundle" });
  assert.throws(() => encodeEntryBundle(Array.from({ length: 257 }, () => new Uint8Array(1))), { name: "TileError" });
  assert.throws(() => encodeEntryBundle([new Uint8Array(0x10000)]), { name: "TileError", message: /at most 65535/ });
  assert.throws(() => decodeEntryBundle(new Uint8Array([0x00])), { name: "TileError", message: /inside the length/ });
  assert.throws(() => decodeEntryBundle(new Uint8Array([0x00, 0x20, 1, 2])), { name: "TileError", message: /truncated/ });
  assert.throws(() => decodeEntryBundle(new Uint8Array()), { name: "TileError", message: /at least one/ });
  assert.throws(() => decodeEntryBundle(new Uint8Array(2 * 257)), { name: "TileError", message: /at most 256/ });
  assert.equal(decodeEntryBundle(new Uint8Array(2 * 256)).length, 256);
});
