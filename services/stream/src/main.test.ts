import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { inspectService, startServiceProcess, type ServiceProcess } from "@annals/runtime/testing";

let service: ServiceProcess;

before(async () => {
  service = await startServiceProcess({
    script: fileURLToPath(new URL("./main.js", import.meta.url)),
    env: { ANNALS_AUTH_JWT_SECRET: "stream-service-test-secret-at-least-32-bytes" },
  });
});

after(async () => {
  await service?.stop();
});

test("the standalone stream service answers health and reflection to grpc-js and buf curl", async () => {
  const seen = await inspectService(service.grpcPort, "annals.stream.v1.StreamService");
  assert.equal(seen.health, "SERVING");
  assert.ok(seen.listedByReflection);
  assert.ok(seen.methods.includes("annals.stream.v1.StreamService/Subscribe"), `methods: ${seen.methods}`);
});
