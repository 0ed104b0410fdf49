// The alerts and the dashboard may only use metrics the services export: two
// node processes replicate, stream, store keys, verify and fail calls, a kv
// process serves TLS, and their scrapes must hold every metric the rules and
// panels name. Then `promtool test rules` runs every alert, firing and quiet,
// on series whose names and labels are taken from those scrapes.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "yaml";
import { Code, ConnectError } from "@connectrpc/connect";
import { createAnnalsClients, type AnnalsClients } from "@annals/client";
import { createTestDatabase, type TestDatabase } from "@annals/db/testing";
import { signDevToken } from "@annals/runtime";
import { makeTestCertificates, startServiceProcess, type ServiceProcess } from "@annals/runtime/testing";
import { renderOverlay } from "./kubernetes.js";

const MONITORING = fileURLToPath(new URL("../k8s/monitoring", import.meta.url));
const NODE_MAIN = fileURLToPath(new URL("../../services/node/dist/main.js", import.meta.url));
const KV_MAIN = fileURLToPath(new URL("../../services/kv/dist/main.js", import.meta.url));
const SECRET = "monitoring-test-secret-at-least-32-bytes";
const A = "spiffe://acme.example/annals/a";
const B = "spiffe://acme.example/annals/b";

interface Node {
  process: ServiceProcess;
  database: TestDatabase;
  clients: AnnalsClients;
}
const nodes: Node[] = [];
/** A kv process serving its gRPC port over TLS (memory backend: no database), for the certificate metrics. */
let tlsProcess: ServiceProcess;
let certificateDir: string;

async function startNode(label: string, nodeId: string): Promise<Node> {
  const database = await createTestDatabase(label);
  const process = await startServiceProcess({
    script: NODE_MAIN,
    env: { ...database.env, ANNALS_AUTH_JWT_SECRET: SECRET, ANNALS_NODE_ID: nodeId },
  });
  const token = await signDevToken({ secret: SECRET, subject: "ops", roles: ["admin"] });
  const node = { process, database, clients: createAnnalsClients({ baseUrl: `http://127.0.0.1:${process.grpcPort}`, token, unaryTimeoutMs: 60_000 }) };
  nodes.push(node);
  return node;
}

/** Every `annals_…` metric name in a PromQL expression. */
const metricNames = (expression: string) => expression.match(/\b(?:annals|nodejs)_[a-z0-9_]+/g) ?? [];

before(async () => {
  const a = await startNode("monitoring_a", A);
  const b = await startNode("monitoring_b", B);
  const keyOf = async (node: Node) => (await node.clients.federation.getNodeInfo({})).publicKeyJwk;
  await a.clients.federation.registerPeer({ peer: { nodeId: B, url: "http://127.0.0.1:1", publicKeyJwk: await keyOf(b), servedLogs: ["orders"] } });
  await b.clients.federation.registerPeer({ peer: { nodeId: A, url: `http://127.0.0.1:${a.process.grpcPort}`, publicKeyJwk: await keyOf(a), mirroredLogs: ["orders"] } });
  // A stream subscriber on A, then entries it gets, which B also mirrors.
  const controller = new AbortController();
  const delivered = (async () => {
    for await (const frame of a.clients.stream.subscribe({ logId: "orders", kinds: [">"] }, { signal: controller.signal })) {
      if (frame.frame.case === "event") return;
    }
  })();
  await new Promise((resolve) => setTimeout(resolve, 300));
  for (let i = 0; i < 5; i++) await a.clients.stream.publish({ logId: "orders", entry: { kind: "order.placed", body: { case: "payload", value: { i } } } });
  await delivered;
  controller.abort();
  await a.clients.kv.set({ key: new TextEncoder().encode("k"), value: new TextEncoder().encode("v") });
  await a.clients.log.verify({ logId: "orders" });
  // Calls that fail: a replicated entry that does not verify (DATA_LOSS, a server-side failure)
  // and a log that does not exist (NOT_FOUND, the caller's problem).
  const bogus = { logId: "orders", chainLogId: "orders", seq: 1n, kind: "order.placed", body: { case: "payload" as const, value: { forged: true } }, wallTimeUs: 1n, payloadDigest: "0".repeat(64), prevChecksum: "0".repeat(64), checksum: "1".repeat(64) };
  const failures: Array<[() => Promise<unknown>, Code]> = [
    [() => a.clients.log.appendReplicated({ logId: "mirror/acme.example/annals/forger/orders", originNode: "spiffe://acme.example/annals/forger", entries: [bogus] }), Code.DataLoss],
    [() => a.clients.log.getLog({ logId: "no-such-log" }), Code.NotFound],
  ];
  for (const [call, code] of failures) {
    const outcome = await call().then(
      () => "succeeded",
      (error: unknown) => ConnectError.from(error),
    );
    assert.ok(outcome instanceof ConnectError && outcome.code === code, `expected ${Code[code]}, got ${String(outcome)}`);
  }
  certificateDir = mkdtempSync(join(tmpdir(), "annals-monitoring-"));
  const certificates = makeTestCertificates(certificateDir, { kv: "spiffe://acme.example/annals/kv" });
  tlsProcess = await startServiceProcess({
    script: KV_MAIN,
    env: { ANNALS_AUTH_JWT_SECRET: SECRET, ANNALS_KV_BACKEND: "memory", ANNALS_TLS_CERT_FILE: certificates["kv"]!.certFile, ANNALS_TLS_KEY_FILE: certificates["kv"]!.keyFile },
  });
  for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
    const head = await b.clients.log.getLog({ logId: "mirror/acme.example/annals/a/orders" }).then((r) => r.head?.lastSeq, () => 0n);
    if (head === 5n) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
});

after(async () => {
  await tlsProcess?.stop();
  for (const node of nodes) {
    await node.process.stop();
    await node.database.drop();
  }
  if (certificateDir) rmSync(certificateDir, { recursive: true, force: true });
});

/** One series of a /metrics exposition. */
interface Series {
  name: string;
  labels: Record<string, string>;
}

/** The series of a Prometheus text exposition (comments and values left out). */
function parseExposition(text: string): Series[] {
  return text
    .split("\n")
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => {
      const name = line.split(/[{ ]/, 1)[0]!;
      const body = line.includes("{") ? line.slice(line.indexOf("{") + 1, line.lastIndexOf("}")) : "";
      const labels = Object.fromEntries([...body.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]));
      return { name, labels };
    });
}

/** Every series the scraped processes export, labelled as the PodMonitor's relabelling makes them. */
async function scrapeAll(): Promise<Series[]> {
  const targets = [...nodes.map((node, i) => ({ process: node.process, pod: `annals-node-${i}`, component: "node" })), { process: tlsProcess, pod: "annals-kv-0", component: "kv" }];
  const series: Series[] = [];
  for (const target of targets) {
    const text = await fetch(`http://127.0.0.1:${target.process.httpPort}/metrics`).then((response) => response.text());
    for (const one of parseExposition(text)) series.push({ name: one.name, labels: { ...one.labels, job: "annals", namespace: "annals", pod: target.pod, component: target.component } });
  }
  return series;
}

type Rule = { alert: string; expr: string; labels?: Record<string, string>; annotations?: Record<string, string> };
const rules = () => parse(readFileSync(`${MONITORING}/prometheus-rules.yaml`, "utf8")) as { spec: { groups: { name: string; rules: Rule[] }[] } };

test("every metric the alert rules and the dashboard use is exported by a running node", async () => {
  const scraped = new Set((await scrapeAll()).map((series) => series.name).filter((name) => name.startsWith("annals_") || name.startsWith("nodejs_")));
  const all = rules();
  // The platform group watches what Kubernetes and CloudNativePG export, not annals.
  const annalsGroups = { spec: { groups: all.spec.groups.filter((group) => group.name === "annals") } };
  const dashboard = JSON.parse(readFileSync(`${MONITORING}/grafana-dashboard.json`, "utf8")) as { panels: { title: string; targets: { expr: string }[] }[] };
  const used = [
    ...annalsGroups.spec.groups.flatMap((group) => group.rules.map((rule) => [`alert ${rule.alert}`, rule.expr] as const)),
    ...dashboard.panels.flatMap((panel) => panel.targets.map((target) => [`panel "${panel.title}"`, target.expr] as const)),
  ];
  assert.ok(used.length >= 20, `${used.length} expressions`);
  const alerts = all.spec.groups.flatMap((group) => group.rules.map((rule) => rule.alert));
  for (const wanted of ["AnnalsFederationIntegrityError", "AnnalsReplicationLagging", "AnnalsVerifyFailed", "AnnalsHighErrorRate", "AnnalsSlowConsumerDisconnects", "AnnalsCertificateExpiresSoon", "AnnalsComponentDown", "AnnalsPodCrashLooping", "AnnalsDatabaseDown"]) {
    assert.ok(alerts.includes(wanted), `alert ${wanted}`);
  }
  for (const [where, expression] of used) {
    const names = metricNames(expression);
    assert.ok(names.length > 0, `${where} names a metric`);
    for (const name of names) assert.ok(scraped.has(name), `${where} uses ${name}, which no running node exports (exported: ${[...scraped].sort().join(", ")})`);
  }
});

test("autoscalers scale on metrics a running node exports", async () => {
  const scraped = new Set((await scrapeAll()).map((series) => series.name));
  for (const hpa of renderOverlay("prod").filter((o) => o.kind === "HorizontalPodAutoscaler")) {
    for (const metric of hpa.spec.metrics.filter((m: { type: string }) => m.type === "Pods")) {
      assert.ok(scraped.has(metric.pods.metric.name), `${hpa.metadata.name} scales on ${metric.pods.metric.name}, which no process exports`);
    }
  }
});

test("promtool: every alert fires on the series the processes export, and stays quiet when it should", async () => {
  const scraped = await scrapeAll();
  /** A scraped series by name (and labels it must have): the test fails if the processes export none. */
  const series = (name: string, labels: Record<string, string> = {}, also: (one: Series) => boolean = () => true): Series => {
    const found = scraped.find((one) => one.name === name && Object.entries(labels).every(([key, value]) => one.labels[key] === value) && also(one));
    assert.ok(found, `no scraped series ${name}${JSON.stringify(labels)}; scraped ${name}: ${JSON.stringify(scraped.filter((one) => one.name === name).map((one) => one.labels))}`);
    return found;
  };
  const text = (one: Series) => `${one.name}{${Object.entries(one.labels).map(([key, value]) => `${key}="${value}"`).join(",")}}`;
  const only = (labels: Record<string, string>, keys: string[]) => Object.fromEntries(keys.map((key) => [key, labels[key]!]));
  // The kube-state-metrics and CNPG series cannot be scraped here; these use their documented names and labels.
  const platform = (name: string, labels: Record<string, string>): Series => ({ name, labels: { namespace: "annals", ...labels } });

  const all = rules().spec.groups.flatMap((group) => group.rules);
  const ruleOf = (alert: string) => all.find((rule) => rule.alert === alert)!;
  const expected = (alert: string, labels: Record<string, string>) => {
    const rule = ruleOf(alert);
    const annotations = Object.fromEntries(
      Object.entries(rule.annotations ?? {}).map(([key, template]) => {
        const value = template.replace(/\{\{ \$labels\.([a-z_]+) \}\}/g, (_, label: string) => labels[label] ?? "");
        assert.doesNotMatch(value, /\{\{/, `${alert}.${key}: only {{ $labels.x }} is expanded by this test`);
        return [key, value];
      }),
    );
    return { exp_labels: { ...labels, ...rule.labels }, exp_annotations: annotations };
  };
  type Case = { alert: string; input: Array<[Series, string]>; at: string; fires: Record<string, string>[] };
  const cases: Case[] = [];
  const both = (alert: string, at: string, firing: Array<[Series, string]>, quiet: Array<[Series, string]>, labels: Record<string, string>[]) =>
    cases.push({ alert, input: firing, at, fires: labels }, { alert, input: quiet, at, fires: [] });

  const integrity = series("annals_federation_integrity_errors", { log: "orders" });
  both("AnnalsFederationIntegrityError", "10m", [[integrity, "0x5 1x10"]], [[integrity, "0x15"]], [only(integrity.labels, ["peer", "log"])]);
  const lag = series("annals_federation_lag_seconds", { log: "orders" });
  both("AnnalsReplicationLagging", "20m", [[lag, "600x30"]], [[lag, "100x30"]], [only(lag.labels, ["peer", "log"])]);
  const verifyFailed = series("annals_log_verify_runs_total", { valid: "false" });
  const verifyPassed = series("annals_log_verify_runs_total", { valid: "true" });
  both("AnnalsVerifyFailed", "10m", [[verifyFailed, "0x5 1x10"], [verifyPassed, "0+1x15"]], [[verifyFailed, "0x15"], [verifyPassed, "0+1x15"]], [{}]);
  // The failed calls made above, as the exporter labels them.
  const failed = (one: Series) => one.labels["rpc_grpc_status_code"] !== "OK";
  const dataLoss = series("annals_rpc_server_duration_seconds_count", { rpc_service: "annals.log.v1.LogService", rpc_method: "AppendReplicated" }, failed);
  const notFound = series("annals_rpc_server_duration_seconds_count", { rpc_service: "annals.log.v1.LogService", rpc_method: "GetLog" }, failed);
  const succeeded = series("annals_rpc_server_duration_seconds_count", { rpc_service: "annals.log.v1.LogService", rpc_method: "Append", rpc_grpc_status_code: "OK" });
  both("AnnalsHighErrorRate", "15m", [[succeeded, "0+100x20"], [dataLoss, "0+10x20"]], [[succeeded, "0+100x20"], [notFound, "0+50x20"]], [{ rpc_service: "annals.log.v1.LogService" }]);
  const slow = series("annals_stream_slow_consumer_disconnects_total");
  both("AnnalsSlowConsumerDisconnects", "25m", [[slow, "0+10x30"]], [[slow, "0+1x30"]], [{}]);
  // promtool's clock starts at 0: expiries are placed relative to the evaluation time (20m = 1200 s).
  const expiry = series("annals_tls_certificate_expiry_timestamp_seconds", { role: "server", kind: "certificate" });
  const expiryLabels = only(expiry.labels, ["namespace", "pod", "role", "kind"]);
  both("AnnalsCertificateExpiresSoon", "20m", [[expiry, `${1200 + 3 * 86400}x30`]], [[expiry, `${1200 + 30 * 86400}x30`]], [expiryLabels]);
  both("AnnalsCertificateExpiresToday", "20m", [[expiry, `${1200 + 3600}x30`]], [[expiry, `${1200 + 3 * 86400}x30`]], [expiryLabels]);

  const [log0, log1] = ["annals-log-0", "annals-log-1"].map((pod) => platform("up", { job: "annals", pod, component: "log" }));
  both("AnnalsComponentDown", "12m", [[log0!, "1x5 0x10"], [log1!, "1x5 0x10"]], [[log0!, "1x5 0x10"], [log1!, "1x15"]], [{ namespace: "annals", component: "log" }]);
  both("AnnalsPodNotScraped", "20m", [[log0!, "1x5 0x20"], [log1!, "1x25"]], [[log0!, "1x15 0x10"], [log1!, "1x25"]], [log0!.labels]);
  const restarts = platform("kube_pod_container_status_restarts_total", { pod: "annals-stream-7d9f-x2", container: "stream" });
  both("AnnalsPodCrashLooping", "20m", [[restarts, "0+1x20"]], [[restarts, "0x5 1x15"]], [restarts.labels]);
  const up = platform("cnpg_collector_up", { cluster: "annals-db", pod: "annals-db-1" });
  both("AnnalsDatabaseDown", "12m", [[up, "1x5 0x10"]], [[up, "1x15"]], [{ namespace: "annals", pod: "annals-db-1" }]);
  const backends = platform("cnpg_backends_total", { cluster: "annals-db", pod: "annals-db-1", datname: "annals", usename: "annals", state: "idle" });
  const maxConnections = platform("cnpg_pg_settings_setting", { cluster: "annals-db", pod: "annals-db-1", name: "max_connections" });
  both("AnnalsDatabaseConnectionsNearLimit", "15m", [[backends, "180x20"], [maxConnections, "200x20"]], [[backends, "120x20"], [maxConnections, "200x20"]], [{ namespace: "annals", pod: "annals-db-1" }]);
  const replicationLag = platform("cnpg_pg_replication_lag", { cluster: "annals-db", pod: "annals-db-2" });
  both("AnnalsDatabaseReplicationLagging", "15m", [[replicationLag, "120x20"]], [[replicationLag, "5x20"]], [{ namespace: "annals", pod: "annals-db-2" }]);

  const tested = new Set(cases.map((c) => c.alert));
  for (const rule of all) assert.ok(tested.has(rule.alert), `alert ${rule.alert} has no promtool case`);

  const dir = mkdtempSync(join(tmpdir(), "annals-promtool-"));
  try {
    writeFileSync(join(dir, "rules.yaml"), stringify({ groups: rules().spec.groups }));
    const tests = cases.map((c) => ({
      interval: "1m",
      input_series: c.input.map(([one, values]) => ({ series: text(one), values })),
      alert_rule_test: [{ eval_time: c.at, alertname: c.alert, exp_alerts: c.fires.map((labels) => expected(c.alert, labels)) }],
    }));
    writeFileSync(join(dir, "tests.yaml"), stringify({ rule_files: ["rules.yaml"], evaluation_interval: "1m", tests }));
    try {
      execFileSync("promtool", ["test", "rules", join(dir, "tests.yaml")], { encoding: "utf8", stdio: "pipe" });
    } catch (error) {
      const failure = error as { stdout?: string; stderr?: string; message: string };
      assert.fail(`promtool test rules failed:\n${failure.stdout ?? ""}${failure.stderr ?? failure.message}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
