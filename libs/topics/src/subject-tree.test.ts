import assert from "node:assert/strict";
import { test } from "node:test";
import { SubjectTree } from "./subject-tree.js";
import { subjectMatches } from "./topic.js";

const PATTERNS = ["a", "a.b", "a.*", "a.>", "*", ">", "*.b", "a.*.c", "*.*", "*.>", "a.b.c", "b.>", "a.*.>"];
const SUBJECTS = ["a", "b", "a.b", "a.c", "b.b", "a.b.c", "a.x.c", "a.b.c.d", "c.d.e"];

test("the tree finds exactly the patterns that match, each value once", () => {
  const tree = new SubjectTree<string>();
  for (const pattern of PATTERNS) tree.add(pattern, pattern);
  for (const subject of SUBJECTS) {
    const expected = PATTERNS.filter((pattern) => subjectMatches(pattern, subject)).sort();
    assert.deepEqual([...tree.match(subject)].sort(), expected, subject);
  }
});

test("a value under several matching patterns is found once; removal prunes the tree", () => {
  const tree = new SubjectTree<number>();
  tree.add("a.>", 1);
  tree.add("a.*", 1);
  tree.add("a.b", 2);
  assert.deepEqual([...tree.match("a.b")].sort(), [1, 2]);
  tree.remove("a.*", 1);
  assert.deepEqual([...tree.match("a.b")].sort(), [1, 2], "still under a.>");
  tree.remove("a.>", 1);
  tree.remove("a.b", 2);
  assert.deepEqual([...tree.match("a.b")], []);
  assert.equal(tree.empty, true);
  tree.remove("never.added", 3);
  assert.equal(tree.empty, true);
});
