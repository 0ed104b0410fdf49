import assert from "node:assert/strict";
import { test } from "node:test";
import { MAX_PAYLOAD_DEPTH, contentTypeProblem, payloadProblem, textProblem } from "./index.js";

test("text: NUL and lone surrogates are refused, everything else well-formed passes", () => {
  assert.match(textProblem("a\u0000b")!, /NUL/);
  assert.match(textProblem("\ud800")!, /surrogate/);
  assert.match(textProblem("x\udfff")!, /surrogate/);
  assert.equal(textProblem("caf\u00e9 \u{1F600} \u2028"), null);
});

test("payload: depth counts objects and arrays, the payload being level 1", () => {
  let deepest: Record<string, unknown> = { leaf: [1] };
  for (let level = 2; level < MAX_PAYLOAD_DEPTH; level++) deepest = { level: deepest };
  assert.equal(payloadProblem(deepest as never), null, "30 levels, the innermost an array");
  assert.match(payloadProblem({ more: deepest } as never)!, /nests deeper than 30 levels/);
});

test("payload: numbers beyond ±(2^53 − 1) are refused with the path, since they may have lost their value", () => {
  assert.equal(payloadProblem({ n: Number.MAX_SAFE_INTEGER, m: -Number.MAX_SAFE_INTEGER, f: 1.5e-300 }), null);
  assert.match(payloadProblem({ a: { b: [1, 2 ** 53] } })!, /^at a\.b\[1\]: holds the number 9007199254740992, beyond ±\(2\^53 − 1\)/);
  assert.match(payloadProblem({ big: 1e21 })!, /send it as a string/);
  assert.match(payloadProblem({ nan: Number.NaN })!, /NaN/);
});

test("payload: strings and keys follow the text rule, with the path", () => {
  assert.match(payloadProblem({ a: [{ "k\ud800": 1 }] })!, /^at a\[0\]: holds a key that is not well-formed/);
  assert.match(payloadProblem({ s: "x\u0000" })!, /^at s: holds a string that contains a NUL/);
});

test("content types: printable ASCII, 1–255 characters", () => {
  assert.equal(contentTypeProblem("application/x-protobuf; messageType=acme.v1.Order"), null);
  assert.match(contentTypeProblem("")!, /required/);
  assert.match(contentTypeProblem(" text/plain")!, /printable ASCII/);
  assert.match(contentTypeProblem("text/plain\n")!, /printable ASCII/);
  assert.match(contentTypeProblem("t\u00e9xt/plain")!, /printable ASCII/);
  assert.match(contentTypeProblem("a".repeat(256))!, /longer than 255/);
});
