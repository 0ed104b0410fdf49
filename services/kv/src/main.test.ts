import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { createTestDatabase, type TestDatabase } from "@annals/db/testing";
import { inspectService, startServiceProcess, type ServiceProcess } from "@annals/runtime/testing";

let database: TestDatabase;
let service: ServiceProcess;

before(async () => {
  database = await createTestDatabase("kv_main");
  service = await startServiceProcess({
    script: fileURLToPath(new URL("./main.js", import.meta.url)),
    env: { ...database.env, ANNALS_AUTH_JWT_SECRET: "kv-service-test-secret-at-least-32-bytes" },
  });
});

after(async () => {
  await service?.stop();
  await database?.drop();
});

test("the standalone kv service answers health and reflection to grpc-js and buf curl", async () => {
  const seen = await inspectService(service.grpcPort, "annals.kv.v1.KvService");
  assert.equal(seen.health, "SERVING");
  assert.ok(seen.listedByReflection);
  assert.ok(seen.methods.includes("annals.kv.v1.KvService/Get"), `methods: ${seen.methods}`);
});
