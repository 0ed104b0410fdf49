import assert from "node:assert/strict";
import { test } from "node:test";
import { ConnectError, Code } from "@connectrpc/connect";
import { principalFromClaims } from "@annals/runtime";
import { grantsLog, localLogIdProblem, logIdProblem, requireLogAccess } from "./index.js";

test("log ids: slash-separated segments; no dot segments, no dot at a segment's ends; mirror/ is federation's", () => {
  for (const good of ["orders", "eu/orders", "a.b/c-d_e", "mirror/acme.example/annals/eu-1/orders"]) assert.equal(logIdProblem(good), null, good);
  for (const bad of ["", ".", "..", "a/../b", ".a", "a.", "/a", "a/", "a//b", "a b", "x".repeat(257)]) assert.notEqual(logIdProblem(bad), null, bad);
  assert.match(localLogIdProblem("mirror/x") ?? "", /reserved for federation mirrors/);
  assert.match(localLogIdProblem("x".repeat(129)) ?? "", /longer than 128/);
  assert.equal(localLogIdProblem("x".repeat(128)), null);
});

test("the logs claim narrows a token to the logs it names; no claim or admin: every log; a malformed claim: none", () => {
  const token = (claims: Record<string, unknown>) => principalFromClaims({ sub: "t", roles: ["log.read"], ...claims });
  assert.equal(grantsLog(token({}), "orders"), true);
  const narrow = token({ logs: ["orders", "eu/*"] });
  assert.deepEqual(["orders", "eu/a", "eu/a/b", "ordersx", "eu", "us/a"].map((log) => grantsLog(narrow, log)), [true, true, true, false, false, false]);
  assert.equal(grantsLog(token({ logs: "orders refunds" }), "refunds"), true, "a space-separated string");
  assert.equal(grantsLog(token({ logs: 42 }), "orders"), false, "a malformed claim grants nothing");
  assert.equal(grantsLog(principalFromClaims({ sub: "a", roles: ["admin"], logs: ["x"] }), "orders"), true);
  assert.throws(
    () => requireLogAccess(narrow, "us/a"),
    (error: unknown) => error instanceof ConnectError && error.code === Code.PermissionDenied && /us\/a/.test(error.rawMessage),
  );
});
