import assert from "node:assert/strict";
import { test } from "node:test";
import { EventNames } from "./event-name.js";

test("an event is named by the most specific matching pattern, whatever the patterns' order", () => {
  const cases: [string[], string, string | undefined][] = [
    [["identity.>"], "identity.formed", "formed"],
    [["identity.>", ">"], "identity.formed", "formed"],
    [[">", "identity.>"], "identity.formed", "formed"],
    [["a.>", "a.b.>"], "a.b.c", "c"],
    [["a.>", "a.b.>"], "a.x.y", "x.y"],
    [["a.*.c", "a.b.>"], "a.b.c", "c"],
    [["x.*", "x.>"], "x.y", "y"],
    [["*.t3.>"], "evt.t3.created", "evt.t3.created"],
    [["a.b"], "a.b", "b"],
    [["a.b.c"], "a.b.c", "c"],
    [["a.>"], "b.c", undefined],
  ];
  for (const [patterns, kind, name] of cases) {
    assert.equal(new EventNames(patterns).nameOf(kind), name, `${kind} under ${patterns.join(", ")}`);
    assert.equal(new EventNames([...patterns].reverse()).nameOf(kind), name, `${kind} under ${[...patterns].reverse().join(", ")}`);
  }
});
