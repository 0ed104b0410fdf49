// The image's entrypoint, started as the container starts it (outside a container).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { createTestDatabase, type TestDatabase } from "@annals/db/testing";
import { inspectService, runProcessToExit, startServiceProcess } from "@annals/runtime/testing";

const ENTRYPOINT = fileURLToPath(new URL("../docker/entrypoint.mjs", import.meta.url));
const SECRET = "entrypoint-test-secret-at-least-32-bytes";
const SERVICES: Record<string, string> = {
  log: "annals.log.v1.LogService",
  kv: "annals.kv.v1.KvService",
  federation: "annals.federation.v1.FederationService",
  stream: "annals.stream.v1.StreamService",
  node: "annals.log.v1.LogService",
};

describe("annals-entrypoint", () => {
  let database: TestDatabase;
  before(async () => {
    database = await createTestDatabase("entrypoint");
  });
  after(async () => {
    await database?.drop();
  });

  for (const [command, service] of Object.entries(SERVICES)) {
    test(`\`${command}\` starts that service, serving ${service}`, async () => {
      const process = await startServiceProcess({ command: ["node", ENTRYPOINT, command], env: { ...database.env, ANNALS_AUTH_JWT_SECRET: SECRET } });
      try {
        assert.equal((await inspectService(process.grpcPort, service)).health, "SERVING");
      } finally {
        const exit = await process.stop("SIGTERM");
        assert.equal(exit.code, 0, process.output());
      }
    });
  }

  test("`annals` runs the CLI with its arguments; anything else is a usage error", async () => {
    const cli = await runProcessToExit([ENTRYPOINT, "annals", "verify"], {});
    assert.equal(cli.code, 2);
    assert.match(cli.stderr, /verify takes one FILE/);
    const unknown = await runProcessToExit([ENTRYPOINT, "shell"], {});
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /usage: annals-entrypoint <log\|kv\|federation\|stream\|node\|annals>/);
  });
});
