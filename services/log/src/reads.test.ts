import assert from "node:assert/strict";
import { test } from "node:test";
import { withinPageBytes } from "./reads.js";
import type { EntryRow } from "./store.js";

function row(seq: number, payloadBytes: number, binary = false): EntryRow {
  return {
    seq: BigInt(seq),
    payload: binary ? null : { s: "x".repeat(payloadBytes - 8) },
    binary_payload: binary ? new Uint8Array(payloadBytes) : null,
  } as EntryRow;
}

test("a page is cut after the entry that passes ~1 MiB of payloads; one entry always fits", () => {
  const rows = [row(1, 300_000), row(2, 300_000, true), row(3, 300_000), row(4, 300_000), row(5, 10)];
  assert.deepEqual(withinPageBytes(rows).map((r) => r.seq), [1n, 2n, 3n]);
  assert.deepEqual(withinPageBytes([row(1, 3_000_000), row(2, 10)]).map((r) => r.seq), [1n], "a single large entry goes alone");
  const small = Array.from({ length: 1000 }, (_, i) => row(i + 1, 100));
  assert.equal(withinPageBytes(small).length, 1000);
});
