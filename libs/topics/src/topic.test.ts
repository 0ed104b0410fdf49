import assert from "node:assert/strict";
import { test } from "node:test";
import { KindFilter, kindProblem, patternProblem } from "./topic.js";

test("kinds are dotted tokens of letters, digits, _ and -", () => {
  for (const kind of ["order", "order.placed", "a.b-c.d_e.9"]) assert.equal(kindProblem(kind), null, kind);
  const bad: [string, RegExp][] = [
    ["", /required/],
    ["order.", /empty token/],
    [".order", /empty token/],
    ["a..b", /empty token/],
    ["order.*", /letters, digits/],
    ["order.>", /letters, digits/],
    ["order placed", /letters, digits/],
    ["x".repeat(256), /longer than 255/],
  ];
  for (const [kind, problem] of bad) assert.match(kindProblem(kind) ?? "valid", problem, JSON.stringify(kind));
});

test("patterns allow * as any token and > only last", () => {
  for (const pattern of ["order.*", "order.>", ">", "*", "*.placed", "a.*.c.>"]) assert.equal(patternProblem(pattern), null, pattern);
  const bad: [string, RegExp][] = [
    ["", /empty/],
    ["a..b", /empty token/],
    ["a.>.b", /> only as the last/],
    ["a.b*", /token "b\*"/],
    ["a.>x", /token ">x"/],
  ];
  for (const [pattern, problem] of bad) assert.match(patternProblem(pattern) ?? "valid", problem, pattern);
});

test("matching follows NATS subjects: * is exactly one token, > one or more trailing tokens", () => {
  const table: [string[], string, boolean][] = [
    [["order.*"], "order.placed", true],
    [["order.*"], "order", false],
    [["order.*"], "order.item.added", false],
    [["order.>"], "order.placed", true],
    [["order.>"], "order.item.added", true],
    [["order.>"], "order", false],
    [[">"], "anything.at.all", true],
    [["*"], "one", true],
    [["*"], "one.two", false],
    [["*.placed"], "order.placed", true],
    [["*.placed"], "order.shipped", false],
    [["a.*.c.>"], "a.b.c.d.e", true],
    [["a.*.c.>"], "a.b.c", false],
    [["order.placed"], "order.placed", true],
    [["order.placed"], "order.placed.x", false],
    [["order.*", "audit.>"], "audit.login", true],
    [["order.*", "audit.>"], "billing.paid", false],
    [[], "no.filter.matches.all", true],
  ];
  for (const [patterns, kind, expected] of table) {
    assert.equal(new KindFilter(patterns).matches(kind), expected, `${patterns.join(",")} vs ${kind}`);
  }
});
