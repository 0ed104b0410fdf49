// Subject matching checked against the real NATS server on 127.0.0.1:4222:
// every subject is published to NATS, every pattern subscribed, and annals
// must match exactly the pairs NATS delivered.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { connect } from "@nats-io/transport-node";
import { SubjectTree } from "./subject-tree.js";
import { KindFilter, subjectMatches } from "./topic.js";

const NATS_URL = process.env.ANNALS_TEST_NATS_URL ?? "127.0.0.1:4222";
const PATTERNS = ["foo", "foo.*", "foo.>", "*", ">", "*.bar", "foo.*.baz", "foo*", "foo*.>", "*.*", "*.>", "foo.bar", "bar.>", "foo.*.>", "*.*.*", "foo.bar.>", "f.>"];
const SUBJECTS = ["foo", "foo.bar", "foo.bar.baz", "foo.baz", "foo.qux.baz", "bar.foo", "bar", "foo*", "foo*.bar", "foobar", "foo.bar.baz.qux", "f", "f.o.o", "x.bar"];

async function natsSkipReason(): Promise<string | false> {
  try {
    const nc = await connect({ servers: NATS_URL, timeout: 2000, reconnect: false });
    await nc.close();
    return false;
  } catch (error) {
    const reason = `no NATS at ${NATS_URL} (${(error as Error).message}); start it or set ANNALS_TEST_NATS_URL`;
    if (process.env.ANNALS_TEST_REQUIRE_NATS === "1") throw new Error(`ANNALS_TEST_REQUIRE_NATS=1 but ${reason}`);
    return reason;
  }
}

test("annals matches subjects × patterns exactly as the NATS server delivers them", { skip: await natsSkipReason() }, async () => {
  const nc = await connect({ servers: NATS_URL });
  // A literal first token of our own keeps this run apart from anything else on the server.
  const scope = `annals_${randomBytes(4).toString("hex")}`;
  const delivered = new Map<string, Set<string>>(PATTERNS.map((pattern) => [pattern, new Set()]));
  try {
    for (const pattern of PATTERNS) {
      nc.subscribe(`${scope}.${pattern}`, {
        callback: (_error, message) => {
          delivered.get(pattern)!.add(message.subject.slice(scope.length + 1));
        },
      });
    }
    await nc.flush();
    for (const subject of SUBJECTS) nc.publish(`${scope}.${subject}`, subject);
    await nc.flush();
    // Deliveries to this client follow the flush's PONG; give the callbacks a moment to run.
    await new Promise((resolve) => setTimeout(resolve, 200));
  } finally {
    await nc.close();
  }
  const tree = new SubjectTree<string>();
  for (const pattern of PATTERNS) tree.add(pattern, pattern);
  let pairs = 0;
  for (const pattern of PATTERNS) {
    const filter = new KindFilter([pattern]);
    for (const subject of SUBJECTS) {
      const nats = delivered.get(pattern)!.has(subject);
      assert.equal(subjectMatches(pattern, subject), nats, `subjectMatches(${pattern}, ${subject})`);
      assert.equal(filter.matches(subject), nats, `KindFilter(${pattern}).matches(${subject})`);
      assert.equal(tree.match(subject).has(pattern), nats, `SubjectTree: ${pattern} for ${subject}`);
      pairs += Number(nats);
    }
  }
  // The table is not trivially empty: NATS delivered plenty of pairs, and checked cases of each kind.
  assert.ok(pairs > 30, `${pairs} matching pairs`);
  assert.equal(delivered.get("foo.>")!.has("foo"), false, "foo.> does not match foo");
  assert.equal(delivered.get("foo*")!.has("foo*"), true, "foo* is a literal");
  assert.equal(delivered.get("foo*")!.has("foobar"), false);
});
