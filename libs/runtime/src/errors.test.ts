import assert from "node:assert/strict";
import { test } from "node:test";
import { rpcDetails } from "@annals/proto";
import { Code } from "@connectrpc/connect";
import { clip, invalidArgument, MAX_ERROR_TEXT, notFound, rpcError } from "./errors.js";

const huge = "x".repeat(64 * 1024);

test("clip keeps short text and cuts long text, saying how long it was", () => {
  assert.equal(clip("orders"), "orders");
  assert.equal(clip("a".repeat(MAX_ERROR_TEXT)), "a".repeat(MAX_ERROR_TEXT));
  assert.equal(clip(huge), `${"x".repeat(MAX_ERROR_TEXT)}… (65536 characters)`);
});

test("errors that echo a 64 KiB input stay small enough for any client's trailer limit", () => {
  const errors = [
    notFound("peer", huge),
    invalidArgument("name", `"${huge}" is not a valid name`, { value: huge }),
    rpcError(Code.FailedPrecondition, huge, { reason: "X", metadata: { key: huge } }),
  ];
  for (const error of errors) {
    assert.ok(error.rawMessage.length < 2 * MAX_ERROR_TEXT, `message of ${error.rawMessage.length} characters`);
    const [info] = error.findDetails(rpcDetails.ErrorInfoSchema);
    assert.ok(info, "ErrorInfo kept");
    for (const value of Object.values(info.metadata)) assert.ok(value.length < 2 * MAX_ERROR_TEXT);
    for (const violation of error.findDetails(rpcDetails.BadRequestSchema).flatMap((b) => b.fieldViolations)) {
      assert.ok(violation.description.length < 2 * MAX_ERROR_TEXT);
    }
  }
  assert.equal(errors[0]!.code, Code.NotFound);
  assert.match(errors[0]!.rawMessage, /^peer "x+… \(65536 characters\)" not found$/);
});
