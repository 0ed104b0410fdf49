// The alerts and the dashboard may only use metrics the services export: two
// node processes replicate, stream, store keys and verify, and their scrapes
// must hold every metric the rules and panels name.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { createAnnalsClients, type AnnalsClients } from "@annals/client";
import { createTestDatabase, type TestDatabase } from "@annals/db/testing";
import { signDevToken } from "@annals/runtime";
import { startServiceProcess, type ServiceProcess } from "@annals/runtime/testing";

const MONITORING = fileURLToPath(new URL("../k8s/monitoring", import.meta.url));
const NODE_MAIN = fileURLToPath(new URL("../../services/node/dist/main.js", import.meta.url));
const SECRET = "monitoring-test-secret-at-least-32-bytes";
const A = "spiffe://acme.example/annals/a";
const B = "spiffe://acme.example/annals/b";

interface Node {
  process: ServiceProcess;
  database: TestDatabase;
  clients: AnnalsClients;
}
const nodes: Node[] = [];

async function startNode(label: string, nodeId: string): Promise<Node> {
  const database = await createTestDatabase(label);
  const internal = await signDevToken({ secret: SECRET, subject: nodeId, roles: ["log.read", "log.write", "log.replicate"] });
  const process = await startServiceProcess({
    script: NODE_MAIN,
    env: { ...database.env, ANNALS_AUTH_JWT_SECRET: SECRET, ANNALS_INTERNAL_TOKEN: internal, ANNALS_NODE_ID: nodeId },
  });
  const token = await signDevToken({ secret: SECRET, subject: "ops", roles: ["admin"] });
  const node = { process, database, clients: createAnnalsClients({ baseUrl: `http://127.0.0.1:${process.grpcPort}`, token, unaryTimeoutMs: 60_000 }) };
  nodes.push(node);
  return node;
}

/** Every `annals_…` metric name in a PromQL expression. */
const metricNames = (expression: string) => expression.match(/\bannals_[a-z0-9_]+/g) ?? [];

before(async () => {
  const a = await startNode("monitoring_a", A);
  const b = await startNode("monitoring_b", B);
  const keyOf = async (node: Node) => (await node.clients.federation.getNodeInfo({})).publicKeyJwk;
  await a.clients.federation.registerPeer({ peer: { nodeId: B, url: "http://127.0.0.1:1", publicKeyJwk: await keyOf(b), servedLogs: ["orders"] } });
  await b.clients.federation.registerPeer({ peer: { nodeId: A, url: `http://127.0.0.1:${a.process.grpcPort}`, publicKeyJwk: await keyOf(a), mirroredLogs: ["orders"] } });
  // A stream subscriber on A, then entries it gets, which B also mirrors.
  const controller = new AbortController();
  const delivered = (async () => {
    for await (const frame of a.clients.stream.subscribe({ logId: "orders", topics: [">"] }, { signal: controller.signal })) {
      if (frame.frame.case === "event") return;
    }
  })();
  await new Promise((resolve) => setTimeout(resolve, 300));
  for (let i = 0; i < 5; i++) await a.clients.stream.publish({ logId: "orders", topic: "order.placed", payload: { i } });
  await delivered;
  controller.abort();
  await a.clients.kv.set({ key: new TextEncoder().encode("k"), value: new TextEncoder().encode("v") });
  await a.clients.log.verify({ logId: "orders" });
  for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
    const head = await b.clients.log.getLog({ logId: "mirror/acme.example/annals/a/orders" }).then((r) => r.head?.lastSeq, () => 0n);
    if (head === 5n) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
});

after(async () => {
  for (const node of nodes) {
    await node.process.stop();
    await node.database.drop();
  }
});

test("every metric the alert rules and the dashboard use is exported by a running node", async () => {
  const scraped = new Set<string>();
  for (const node of nodes) {
    const text = await fetch(`http://127.0.0.1:${node.process.httpPort}/metrics`).then((response) => response.text());
    for (const line of text.split("\n")) if (line.startsWith("annals_")) scraped.add(line.split(/[{ ]/, 1)[0]!);
  }
  const rules = parse(readFileSync(`${MONITORING}/prometheus-rules.yaml`, "utf8")) as { spec: { groups: { rules: { alert: string; expr: string }[] }[] } };
  const dashboard = JSON.parse(readFileSync(`${MONITORING}/grafana-dashboard.json`, "utf8")) as { panels: { title: string; targets: { expr: string }[] }[] };
  const used = [
    ...rules.spec.groups.flatMap((group) => group.rules.map((rule) => [`alert ${rule.alert}`, rule.expr] as const)),
    ...dashboard.panels.flatMap((panel) => panel.targets.map((target) => [`panel "${panel.title}"`, target.expr] as const)),
  ];
  assert.ok(used.length >= 20, `${used.length} expressions`);
  const alerts = rules.spec.groups.flatMap((group) => group.rules.map((rule) => rule.alert));
  for (const wanted of ["AnnalsFederationIntegrityError", "AnnalsReplicationLagging", "AnnalsVerifyFailed", "AnnalsHighErrorRate", "AnnalsSlowConsumerDisconnects"]) {
    assert.ok(alerts.includes(wanted), `alert ${wanted}`);
  }
  for (const [where, expression] of used) {
    const names = metricNames(expression);
    assert.ok(names.length > 0, `${where} names a metric`);
    for (const name of names) assert.ok(scraped.has(name), `${where} uses ${name}, which no running node exports (exported: ${[...scraped].sort().join(", ")})`);
  }
});
