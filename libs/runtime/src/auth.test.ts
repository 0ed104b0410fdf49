import assert from "node:assert/strict";
import { test } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { SignJWT } from "jose";
import { createAuthenticator } from "./auth.js";
import { readServerConfig } from "./server-config.js";
import { ConfigError } from "./config.js";

const SECRET = "auth-test-secret-that-is-at-least-32-bytes";

function token(claims: { iat?: number; exp?: number }): Promise<string> {
  let jwt = new SignJWT({ roles: ["x"] }).setProtectedHeader({ alg: "HS256" }).setSubject("erin");
  if (claims.iat !== undefined) jwt = jwt.setIssuedAt(claims.iat);
  if (claims.exp !== undefined) jwt = jwt.setExpirationTime(claims.exp);
  return jwt.sign(new TextEncoder().encode(SECRET));
}

test("exp is required by default; ANNALS_AUTH_REQUIRE_EXP=false lets tokens without it in", async () => {
  const now = Math.floor(Date.now() / 1000);
  const eternal = `Bearer ${await token({ iat: now })}`;
  const strict = createAuthenticator(readServerConfig({ ANNALS_AUTH_JWT_SECRET: SECRET }, { grpcPort: 0, httpPort: 0, allowAuthOff: false }).auth);
  await assert.rejects(strict.authenticate(eternal), (error: unknown) => {
    assert.equal(ConnectError.from(error).code, Code.Unauthenticated);
    assert.match(ConnectError.from(error).rawMessage, /claim "exp" is required/);
    return true;
  });
  const lenient = createAuthenticator(
    readServerConfig({ ANNALS_AUTH_JWT_SECRET: SECRET, ANNALS_AUTH_REQUIRE_EXP: "false" }, { grpcPort: 0, httpPort: 0, allowAuthOff: false }).auth,
  );
  assert.equal((await lenient.authenticate(eternal)).subject, "erin");
});

test("the clock skew is a setting: with 0, a token issued 5 s ahead is refused", async () => {
  const now = Math.floor(Date.now() / 1000);
  const ahead = `Bearer ${await token({ iat: now + 5, exp: now + 600 })}`;
  const exact = createAuthenticator(
    readServerConfig({ ANNALS_AUTH_JWT_SECRET: SECRET, ANNALS_AUTH_CLOCK_SKEW_MS: "0" }, { grpcPort: 0, httpPort: 0, allowAuthOff: false }).auth,
  );
  await assert.rejects(exact.authenticate(ahead), (error: unknown) => ConnectError.from(error).code === Code.Unauthenticated);
  const tolerant = createAuthenticator(readServerConfig({ ANNALS_AUTH_JWT_SECRET: SECRET }, { grpcPort: 0, httpPort: 0, allowAuthOff: false }).auth);
  assert.equal((await tolerant.authenticate(ahead)).subject, "erin");
  assert.throws(
    () => readServerConfig({ ANNALS_AUTH_JWT_SECRET: SECRET, ANNALS_AUTH_CLOCK_SKEW_MS: "soon" }, { grpcPort: 0, httpPort: 0, allowAuthOff: false }),
    (error: unknown) => error instanceof ConfigError && error.variable === "ANNALS_AUTH_CLOCK_SKEW_MS",
  );
});
