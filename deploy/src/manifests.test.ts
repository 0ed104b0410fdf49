// The Kubernetes overlays, rendered with `kubectl kustomize` as an operator
// would, and checked object by object.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { admits, renderOverlay as render, renderWithComponents, workloadPod, type K8sObject } from "./kubernetes.js";

const OPERATIONS = fileURLToPath(new URL("../../docs/operations.md", import.meta.url));

/** The Secrets docs/operations.md ("### Secrets") documents as provided outside the manifests (in prod). */
function documentedSecrets(): string[] {
  const text = readFileSync(OPERATIONS, "utf8");
  const section = text.slice(text.indexOf("### Secrets"), text.indexOf("### Probes"));
  return [...new Set(section.match(/`annals-[a-z-]+`/g)?.map((name) => name.slice(1, -1)) ?? [])];
}

/** Secrets an overlay may use without defining them: none in dev (it generates all), the documented ones in prod. */
const OPERATOR_SECRETS: Record<string, string[]> = { dev: [], prod: documentedSecrets(), small: documentedSecrets() };

for (const overlay of ["dev", "prod", "small"]) {
  describe(`overlay ${overlay}`, () => {
    const objects = render(overlay);
    const of = (kind: string) => objects.filter((object) => object.kind === kind);
    // The annals workloads: the four Deployments, or the node's StatefulSet (small).
    const deployments = [...of("Deployment"), ...of("StatefulSet")].filter((workload) => workload.metadata.labels?.["app.kubernetes.io/name"] === "annals");
    const configOf = (workload: K8sObject): Record<string, string> => {
      const ref = workload.spec.template.spec.containers[0].envFrom[0].configMapRef.name;
      return objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === ref)!.data!;
    };

    test("renders the four services, or the node alone", () => {
      const names = deployments.map((d) => `${d.kind}/${d.metadata.name}`).sort();
      if (overlay === "small") assert.deepEqual(names, ["StatefulSet/annals-node"]);
      else assert.deepEqual(names, ["Deployment/annals-federation", "Deployment/annals-kv", "Deployment/annals-log", "Deployment/annals-stream"]);
    });

    test("every workload: gRPC startup, readiness and liveness probes on its gRPC port, hardened, with requests, limits and a pinned image", () => {
      for (const deployment of deployments) {
        const pod = deployment.spec.template.spec;
        const [container] = pod.containers;
        const name = deployment.metadata.name;
        const portNamed = (wanted: string) => container.ports.find((port: { name: string }) => port.name === wanted)?.containerPort;
        const envOf = (variable: string) => container.env?.find((env: { name: string }) => env.name === variable)?.value;
        const grpcPort = portNamed("grpc");
        const config = configOf(deployment);
        assert.equal(String(grpcPort), config["ANNALS_PORT"], `${name}: the gRPC port is the one the service listens on`);
        // Kubernetes' gRPC probes speak plain text: a TLS gRPC port is probed on the health-only port.
        const tls = envOf("ANNALS_TLS_CERT_FILE") !== undefined;
        const probePort = tls ? portNamed("health") : grpcPort;
        if (tls) assert.equal(String(probePort), envOf("ANNALS_HEALTH_PORT"), `${name}: under TLS, probes use ANNALS_HEALTH_PORT`);
        for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
          assert.equal(container[probe]?.grpc?.port, probePort, `${name}: ${probe} is a gRPC probe on port ${probePort}`);
        }
        assert.match(container.readinessProbe.grpc.service, /^annals\.[a-z]+\.v1\.[A-Za-z]+Service$/, `${name}: readiness asks for its service`);
        assert.equal(pod.securityContext.runAsNonRoot, true, name);
        assert.equal(pod.securityContext.seccompProfile.type, "RuntimeDefault", name);
        assert.equal(container.securityContext.readOnlyRootFilesystem, true, name);
        assert.equal(container.securityContext.allowPrivilegeEscalation, false, name);
        assert.deepEqual(container.securityContext.capabilities.drop, ["ALL"], name);
        for (const kind of ["requests", "limits"]) {
          assert.ok(container.resources[kind].cpu && container.resources[kind].memory, `${name}: ${kind}`);
        }
        // A version tag, a digest, or both (an operator's overlay pins the digest it deploys).
        assert.match(container.image, /^[^:@]+(:[0-9][^:@]*)?(@sha256:[0-9a-f]{64})?$/, `${name}: image ${container.image}`);
        assert.match(container.image, /:[0-9]|@sha256:/, `${name}: image ${container.image} has a version tag or a digest`);
        assert.doesNotMatch(container.image, /:latest$/);
        // Drain (health NOT_SERVING) and grace period of the server fit in the pod's termination grace period.
        const shutdownSeconds = (Number(config["ANNALS_SHUTDOWN_DRAIN_DELAY_MS"]) + Number(config["ANNALS_SHUTDOWN_GRACE_MS"])) / 1000;
        assert.ok(pod.terminationGracePeriodSeconds > shutdownSeconds, `${name}: ${pod.terminationGracePeriodSeconds} s > ${shutdownSeconds} s`);
      }
    });

    test("every Service selects pods that exist", () => {
      const templates = [...of("Deployment"), ...of("StatefulSet")].map((workload) => workload.spec.template.metadata.labels as Record<string, string>);
      for (const service of of("Service")) {
        const selector = service.spec.selector as Record<string, string>;
        assert.ok(
          templates.some((labels) => Object.entries(selector).every(([key, value]) => labels[key] === value)),
          `Service ${service.metadata.name} selects ${JSON.stringify(selector)}`,
        );
      }
    });

    test("every ConfigMap and Secret a pod refers to is defined here or provided by the operator", () => {
      const defined = new Set(objects.filter((o) => o.kind === "ConfigMap" || o.kind === "Secret").map((o) => `${o.kind}/${o.metadata.name}`));
      for (const name of OPERATOR_SECRETS[overlay]!) defined.add(`Secret/${name}`);
      const configMaps = new Map(objects.filter((o) => o.kind === "ConfigMap").map((o) => [o.metadata.name, o.data ?? {}]));
      const secrets = new Map(objects.filter((o) => o.kind === "Secret").map((o) => [o.metadata.name, { ...((o as any).data ?? {}), ...((o as any).stringData ?? {}) }]));
      for (const workload of [...of("Deployment"), ...of("StatefulSet")]) {
        const pod = workload.spec.template.spec;
        for (const container of pod.containers) {
          for (const env of container.env ?? []) {
            const ref = env.valueFrom?.secretKeyRef ?? env.valueFrom?.configMapKeyRef;
            if (!ref) continue;
            const kind = env.valueFrom.secretKeyRef ? "Secret" : "ConfigMap";
            assert.ok(defined.has(`${kind}/${ref.name}`), `${workload.metadata.name}: ${env.name} from ${kind} ${ref.name}`);
            const keys = kind === "Secret" ? secrets.get(ref.name) : configMaps.get(ref.name);
            if (keys) assert.ok(ref.key in keys, `${workload.metadata.name}: ${kind} ${ref.name} has key ${ref.key}`);
          }
          for (const source of container.envFrom ?? []) {
            const ref = source.configMapRef ?? source.secretRef;
            assert.ok(defined.has(`${source.configMapRef ? "ConfigMap" : "Secret"}/${ref.name}`), `${workload.metadata.name}: envFrom ${ref.name}`);
          }
        }
        for (const volume of pod.volumes ?? []) {
          if (volume.secret) assert.ok(defined.has(`Secret/${volume.secret.secretName}`), `${workload.metadata.name}: volume from Secret ${volume.secret.secretName}`);
        }
      }
    });

    const hpaFor = (workload: K8sObject) => of("HorizontalPodAutoscaler").find((hpa) => hpa.spec.scaleTargetRef.kind === workload.kind && hpa.spec.scaleTargetRef.name === workload.metadata.name);
    /** Fewest replicas a workload runs: its HPA's minimum, else its own count (1 when unset). */
    const fewest = (workload: K8sObject): number => hpaFor(workload)?.spec.minReplicas ?? workload.spec.replicas ?? 1;

    test("disruption budgets only guard workloads of 2 or more replicas", () => {
      for (const pdb of of("PodDisruptionBudget")) {
        const selected = deployments.filter((d) => Object.entries(pdb.spec.selector.matchLabels as Record<string, string>).every(([key, value]) => d.spec.template.metadata.labels[key] === value));
        assert.equal(selected.length, 1, `PDB ${pdb.metadata.name} selects one workload`);
        assert.ok(fewest(selected[0]!) >= 2, `PDB ${pdb.metadata.name}: ${selected[0]!.metadata.name} may run ${fewest(selected[0]!)} replica(s)`);
      }
    });

    test("a workload an HPA scales sets no replicas of its own (an apply would reset the scaled-out count)", () => {
      for (const workload of deployments) {
        if (hpaFor(workload)) assert.equal(workload.spec.replicas, undefined, `${workload.metadata.name} has spec.replicas ${workload.spec.replicas} under an HPA`);
      }
    });

    test("Services: h2c only on plain-text gRPC ports, http on the HTTP ports, every port targets one the pods have", () => {
      for (const service of of("Service")) {
        const pods = deployments.filter((d) => Object.entries(service.spec.selector as Record<string, string>).every(([key, value]) => d.spec.template.metadata.labels[key] === value));
        for (const pod of pods) {
          const container = pod.spec.template.spec.containers[0];
          const tls = container.env?.some((env: { name: string }) => env.name === "ANNALS_TLS_CERT_FILE") ?? false;
          for (const port of service.spec.ports) {
            const target = container.ports.find((candidate: { name: string; containerPort: number }) => candidate.name === port.targetPort || candidate.containerPort === port.targetPort);
            assert.ok(target, `${service.metadata.name}:${port.name} targets ${port.targetPort}, which ${pod.metadata.name} does not expose`);
            if (target.name === "http") assert.equal(port.appProtocol, "http", `${service.metadata.name}:${port.name}`);
            if (target.name === "grpc") assert.equal(port.appProtocol, tls ? undefined : "kubernetes.io/h2c", `${service.metadata.name}:${port.name} (${tls ? "TLS" : "h2c"})`);
          }
        }
      }
    });

    test("memory: request equals limit, V8's heap at about 65 % of it, /tmp bounded", () => {
      const mebibytes = (quantity: string) => {
        const match = /^(\d+)(Mi|Gi)$/.exec(quantity);
        assert.ok(match, `memory ${quantity} in Mi or Gi`);
        return Number(match[1]) * (match[2] === "Gi" ? 1024 : 1);
      };
      for (const workload of deployments) {
        const pod = workload.spec.template.spec;
        const container = pod.containers[0];
        const name = workload.metadata.name;
        assert.equal(container.resources.requests.memory, container.resources.limits.memory, `${name}: memory request = limit`);
        const heap = /--max-old-space-size=(\d+)/.exec(container.env.find((env: { name: string }) => env.name === "NODE_OPTIONS")?.value ?? "");
        assert.ok(heap, `${name}: NODE_OPTIONS sets --max-old-space-size`);
        const share = Number(heap[1]) / mebibytes(container.resources.limits.memory);
        assert.ok(share >= 0.6 && share <= 0.7, `${name}: heap is ${(share * 100).toFixed(0)} % of the memory limit`);
        for (const volume of pod.volumes.filter((v: { emptyDir?: unknown }) => v.emptyDir)) assert.ok(volume.emptyDir.sizeLimit, `${name}: emptyDir ${volume.name} has a sizeLimit`);
      }
    });

    test("replicas spread over nodes (required) and zones", () => {
      for (const workload of deployments.filter((d) => (hpaFor(d)?.spec.maxReplicas ?? d.spec.replicas ?? 1) > 1)) {
        const constraints = workload.spec.template.spec.topologySpreadConstraints ?? [];
        const byHost = constraints.find((c: { topologyKey: string }) => c.topologyKey === "kubernetes.io/hostname");
        assert.equal(byHost?.whenUnsatisfiable, "DoNotSchedule", `${workload.metadata.name}: spread over nodes`);
        assert.ok(constraints.some((c: { topologyKey: string }) => c.topologyKey === "topology.kubernetes.io/zone"), `${workload.metadata.name}: spread over zones`);
        for (const constraint of constraints) assert.deepEqual(constraint.labelSelector.matchLabels, workload.spec.selector.matchLabels, `${workload.metadata.name}: spreads its own pods`);
      }
    });

    test("the settings ConfigMap is generated (its name changes with its content, so pods roll)", () => {
      for (const workload of deployments) {
        const name: string = workload.spec.template.spec.containers[0].envFrom[0].configMapRef.name;
        assert.match(name, /^annals-(node-)?config-[a-z0-9]{10}$/, `${workload.metadata.name} reads ${name}`);
      }
    });

    test("the overlay creates the namespace it deploys into", () => {
      const namespaces = new Set(objects.filter((o) => o.kind !== "Namespace" && o.metadata.namespace).map((o) => o.metadata.namespace));
      assert.equal(namespaces.size, 1, [...namespaces].join(", "));
      assert.deepEqual(of("Namespace").map((n) => n.metadata.name), [...namespaces]);
    });

    test("/metrics is on a port of its own that Prometheus reaches and applications do not", () => {
      const prometheus = { namespace: "monitoring", labels: { "app.kubernetes.io/name": "prometheus" } };
      const application = { namespace: "shop", labels: { app: "checkout", "annals.io/client": "true" } };
      for (const workload of deployments) {
        const pod = workloadPod(workload);
        const metrics = pod.ports.find((p) => p.name === "metrics");
        assert.ok(metrics, `${workload.metadata.name} has a metrics port`);
        assert.equal(configOf(workload)["ANNALS_METRICS_PORT"], String(metrics.containerPort), `${workload.metadata.name}: ANNALS_METRICS_PORT is that port`);
        assert.ok(admits(objects, pod, prometheus, metrics.containerPort), `${workload.metadata.name}: Prometheus scrapes it`);
        assert.ok(!admits(objects, pod, application, metrics.containerPort), `${workload.metadata.name}: applications do not reach it`);
      }
    });

    test("applications reach the log and KV ports (or the node) by labelling their pods annals.io/client, from any namespace", () => {
      const client = { namespace: "shop", labels: { app: "checkout", "annals.io/client": "true" } };
      const unlabelled = { namespace: "shop", labels: { app: "checkout" } };
      const neighbour = { namespace: deployments[0]!.metadata.namespace!, labels: { app: "other" } };
      for (const workload of deployments.filter((d) => ["log", "kv", "node"].includes(d.spec.template.metadata.labels["app.kubernetes.io/component"]))) {
        const pod = workloadPod(workload);
        const grpc = pod.ports.find((p) => p.name === "grpc")!.containerPort;
        assert.ok(admits(objects, pod, client, grpc), `${workload.metadata.name}: a labelled client is let in`);
        assert.ok(!admits(objects, pod, unlabelled, grpc), `${workload.metadata.name}: an unlabelled pod is kept out`);
        assert.ok(!admits(objects, pod, neighbour, grpc), `${workload.metadata.name}: an unlabelled pod of its namespace is kept out`);
      }
      const stream = deployments.find((d) => d.metadata.name === "annals-stream");
      const log = deployments.find((d) => d.metadata.name === "annals-log");
      if (stream && log) assert.ok(admits(objects, workloadPod(log), workloadPod(stream), 50051), "the stream service reaches the log service");
    });
  });
}

describe("prod overlay in particular", () => {
  const objects = render("prod");
  const find = (kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name)!;

  test("CloudNativePG's operator, the instances, annals, the pooler and monitoring reach the database pods; others do not", () => {
    const instance = { namespace: "annals", labels: { "cnpg.io/cluster": "annals-db", "cnpg.io/instanceName": "annals-db-2", role: "replica" }, ports: [] };
    const operator = { namespace: "cnpg-system", labels: { "app.kubernetes.io/name": "cloudnative-pg" } };
    const otherInstance = { namespace: "annals", labels: { "cnpg.io/cluster": "annals-db", "cnpg.io/instanceName": "annals-db-1", role: "primary" } };
    const annals = workloadPod(find("Deployment", "annals-log"));
    const pooler = { namespace: "annals", labels: { "cnpg.io/poolerName": "annals-db-pooler" } };
    const prometheus = { namespace: "monitoring", labels: { "app.kubernetes.io/name": "prometheus" } };
    const stranger = { namespace: "shop", labels: { app: "checkout", "annals.io/client": "true" } };
    for (const port of [8000, 5432]) assert.ok(admits(objects, instance, operator, port), `the operator on ${port}`);
    for (const port of [5432, 8000]) assert.ok(admits(objects, instance, otherInstance, port), `another instance on ${port} (replication, status)`);
    assert.ok(admits(objects, instance, annals, 5432), "annals pods on 5432");
    assert.ok(admits(objects, instance, pooler, 5432), "the pooler on 5432");
    assert.ok(admits(objects, instance, prometheus, 9187), "Prometheus on the exporter port");
    assert.ok(!admits(objects, instance, prometheus, 5432), "Prometheus not on 5432");
    assert.ok(!admits(objects, instance, stranger, 5432), "an application pod not on 5432");
    assert.ok(!admits(objects, instance, annals, 8000), "annals pods not on the status port");
  });

  test("max_connections covers every process's pool and LISTEN connection at the HPAs' maxima, rollout surge included", () => {
    const cluster = find("Cluster", "annals-db");
    const maxConnections = Number(cluster.spec.postgresql.parameters.max_connections);
    const reserved = Number(cluster.spec.postgresql.parameters.superuser_reserved_connections ?? 3);
    // The operator, the exporter and an administrator's psql.
    const headroom = 10;
    let needed = reserved + headroom;
    const explained: string[] = [];
    for (const workload of objects.filter((o) => o.kind === "Deployment")) {
      const container = workload.spec.template.spec.containers[0];
      const env = (name: string) => container.env?.find((e: { name: string }) => e.name === name);
      if (!env("DATABASE_URL")) continue;
      const configName = container.envFrom[0].configMapRef.name;
      const pool = Number(env("ANNALS_DATABASE_POOL_SIZE")?.value ?? objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === configName)!.data!["ANNALS_DATABASE_POOL_SIZE"] ?? 10);
      const hpa = objects.find((o) => o.kind === "HorizontalPodAutoscaler" && o.spec.scaleTargetRef.name === workload.metadata.name);
      const most = hpa?.spec.maxReplicas ?? workload.spec.replicas ?? 1;
      const surgeSpec = workload.spec.strategy?.type === "Recreate" ? 0 : (workload.spec.strategy?.rollingUpdate?.maxSurge ?? "25%");
      const surge = typeof surgeSpec === "string" ? Math.ceil((most * Number(surgeSpec.replace("%", ""))) / 100) : surgeSpec;
      needed += (most + surge) * (pool + 1);
      explained.push(`${workload.metadata.name}: (${most} + ${surge}) x (${pool} + 1)`);
    }
    assert.ok(explained.length >= 2, explained.join("; "));
    assert.ok(maxConnections >= needed, `max_connections ${maxConnections} < ${needed} needed: ${explained.join("; ")} + ${reserved} reserved + ${headroom}`);
  });

  test("the KV service on Redis gets no database URL", () => {
    const kv = find("Deployment", "annals-kv").spec.template.spec.containers[0];
    assert.ok(kv.env.some((e: { name: string }) => e.name === "REDIS_URL"));
    assert.ok(!kv.env.some((e: { name: string }) => e.name === "DATABASE_URL"));
  });

  test("the federation Deployment runs one puller at a time, and its node id is the certificate's URI SAN", () => {
    const federation = find("Deployment", "annals-federation");
    assert.equal(federation.spec.strategy?.type, "Recreate");
    assert.equal(federation.spec.replicas, 1);
    const env = federation.spec.template.spec.containers[0].env;
    assert.deepEqual([env.find((e: { name: string }) => e.name === "ANNALS_NODE_ID").value], find("Certificate", "annals-federation-tls").spec.uris);
  });

  test("the stream HPA scales on subscribers per pod and scales in slowly", () => {
    const hpa = find("HorizontalPodAutoscaler", "annals-stream");
    assert.ok(hpa.spec.metrics.some((m: any) => m.type === "Pods" && m.pods.metric.name === "annals_stream_subscribers"));
    const down = hpa.spec.behavior.scaleDown;
    assert.ok(down.stabilizationWindowSeconds >= 300, "a scale-down window of at least 5 minutes");
    assert.ok(down.policies.every((policy: { type: string; value: number }) => policy.type === "Pods" && policy.value === 1), "one pod at a time");
  });

  test("nightly backups of the database to an object store", () => {
    const cluster = find("Cluster", "annals-db");
    assert.ok(cluster.spec.backup?.barmanObjectStore?.destinationPath, "the Cluster archives to an object store");
    const scheduled = objects.filter((o) => o.kind === "ScheduledBackup");
    assert.ok(scheduled.some((backup) => backup.spec.cluster.name === cluster.metadata.name && backup.spec.method === "barmanObjectStore"));
  });

  test("PodMonitors scrape every annals Deployment on a port it has and the policies open; rules and monitors carry one selector label", () => {
    const monitor = find("PodMonitor", "annals");
    const prometheus = { namespace: "monitoring", labels: { "app.kubernetes.io/name": "prometheus" } };
    for (const deployment of objects.filter((o) => o.kind === "Deployment")) {
      const pod = workloadPod(deployment);
      assert.ok(Object.entries(monitor.spec.selector.matchLabels).every(([key, value]) => pod.labels[key] === value), `${deployment.metadata.name} is selected`);
      for (const endpoint of monitor.spec.podMetricsEndpoints) {
        const port = pod.ports.find((p) => p.name === endpoint.port);
        assert.ok(port, `${deployment.metadata.name} has port ${endpoint.port}`);
        assert.ok(admits(objects, pod, prometheus, port.containerPort), `Prometheus may scrape ${deployment.metadata.name}:${port.containerPort}`);
      }
    }
    const selectorLabels = objects.filter((o) => o.kind === "PrometheusRule" || o.kind === "PodMonitor").map((o) => o.metadata.labels?.["release"]);
    assert.ok(selectorLabels.length >= 3 && selectorLabels.every((label) => label !== undefined && label === selectorLabels[0]), JSON.stringify(selectorLabels));
  });
});

describe("optional components", () => {
  test("federation-loadbalancer: a LoadBalancer on the federation pods' gRPC port, which its policy opens to other clusters", () => {
    const objects = renderWithComponents("prod", ["federation-loadbalancer"]);
    const service = objects.find((o) => o.kind === "Service" && o.spec.type === "LoadBalancer")!;
    const federation = objects.find((o) => o.kind === "Deployment" && o.metadata.name === "annals-federation")!;
    const pod = workloadPod(federation);
    assert.ok(Object.entries(service.spec.selector as Record<string, string>).every(([key, value]) => pod.labels[key] === value));
    const port = pod.ports.find((p) => p.name === service.spec.ports[0].targetPort)!;
    assert.equal(port.name, "grpc");
    // Traffic from a load balancer arrives with the peer's (or a node's) address: no pod labels.
    assert.ok(admits(objects, pod, { namespace: "", labels: {} }, port.containerPort));
  });

  test("federation-tlsroute: a passthrough TLS listener routed to the federation Service's gRPC port", () => {
    const objects = renderWithComponents("prod", ["federation-tlsroute"]);
    const gateway = objects.find((o) => o.kind === "Gateway")!;
    const route = objects.find((o) => o.kind === "TLSRoute")!;
    const listener = gateway.spec.listeners.find((l: { name: string }) => l.name === route.spec.parentRefs[0].sectionName);
    assert.equal(listener.tls.mode, "Passthrough", "the pod terminates mTLS itself");
    const backend = route.spec.rules[0].backendRefs[0];
    const service = objects.find((o) => o.kind === "Service" && o.metadata.name === backend.name)!;
    assert.equal(service.spec.ports.find((p: { port: number }) => p.port === backend.port)?.targetPort, "grpc");
  });

  test("pgbouncer: a CNPG Pooler in session mode (LISTEN/NOTIFY) that the database URLs go through", () => {
    const objects = renderWithComponents("prod", ["pgbouncer"]);
    const pooler = objects.find((o) => o.kind === "Pooler")!;
    assert.equal(pooler.spec.pgbouncer.poolMode, "session");
    assert.equal(pooler.spec.cluster.name, "annals-db");
    for (const deployment of objects.filter((o) => o.kind === "Deployment")) {
      const url = deployment.spec.template.spec.containers[0].env.find((e: { name: string }) => e.name === "DATABASE_URL");
      if (url) assert.equal(url.valueFrom.secretKeyRef.name, "annals-db-pooler-app", deployment.metadata.name);
    }
    const poolerPod = { namespace: "annals", labels: { "cnpg.io/poolerName": pooler.metadata.name }, ports: [{ name: "pgbouncer", containerPort: 5432 }] };
    assert.ok(admits(objects, poolerPod, workloadPod(objects.find((o) => o.kind === "Deployment" && o.metadata.name === "annals-log")!), 5432));
    assert.ok(!admits(objects, poolerPod, { namespace: "shop", labels: { "annals.io/client": "true" } }, 5432));
  });

  test("gateway: routes to the stream service's ports, with no request timeout and no buffering for SSE", () => {
    const objects = renderWithComponents("prod", ["gateway"]);
    const stream = objects.find((o) => o.kind === "Service" && o.metadata.name === "annals-stream")!;
    const portNamed = (port: number | string) => stream.spec.ports.find((p: { port: number; name: string }) => p.port === port || p.name === port);
    const http = objects.find((o) => o.kind === "HTTPRoute")!;
    assert.equal(portNamed(http.spec.rules[0].backendRefs[0].port)?.name, "http");
    assert.equal(http.spec.rules[0].timeouts.request, "0s");
    const grpc = objects.find((o) => o.kind === "GRPCRoute")!;
    assert.equal(portNamed(grpc.spec.rules[0].backendRefs[0].port)?.name, "grpc");
    const ingress = objects.find((o) => o.kind === "Ingress")!;
    assert.equal(portNamed(ingress.spec.rules[0].http.paths[0].backend.service.port.name)?.name, "http");
    assert.equal(ingress.metadata.annotations!["nginx.ingress.kubernetes.io/proxy-buffering"], "off");
    assert.ok(Number(ingress.metadata.annotations!["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 600);
  });
});

describe("small overlay", () => {
  test("the node keeps its PGlite data on a persistent volume, one replica", () => {
    const objects = render("small");
    const node = objects.find((o) => o.kind === "StatefulSet")!;
    assert.equal(node.spec.replicas, 1);
    const container = node.spec.template.spec.containers[0];
    const config = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === container.envFrom[0].configMapRef.name)!.data!;
    const dataDir = config["ANNALS_DATA_DIR"]!;
    const mount = container.volumeMounts.find((m: { mountPath: string }) => dataDir === m.mountPath || dataDir.startsWith(`${m.mountPath}/`));
    assert.ok(mount, `ANNALS_DATA_DIR ${dataDir} is on a mounted volume`);
    assert.ok(node.spec.volumeClaimTemplates.some((claim: { metadata: { name: string } }) => claim.metadata.name === mount.name), `${mount.name} is a PersistentVolumeClaim`);
    assert.equal(container.args[0], "node");
  });
});

describe("the image", () => {
  const dockerfile = readFileSync(fileURLToPath(new URL("../docker/Dockerfile", import.meta.url)), "utf8");

  test("base images are a maintained Node.js LTS pinned by digest", () => {
    const froms = [...dockerfile.matchAll(/^FROM\s+(\S+)/gm)].map((match) => match[1]!);
    assert.ok(froms.length >= 2);
    for (const from of froms) {
      assert.match(from, /^node:(\d+)[^@]*@sha256:[0-9a-f]{64}$/, `${from} is pinned by digest`);
      const major = Number(/^node:(\d+)/.exec(from)![1]);
      assert.ok(major >= 22 && major % 2 === 0, `${from}: an LTS line still maintained (Node 20 reached end of life on 2026-04-30)`);
    }
  });

  test("the runtime tree holds compiled code, package manifests and migrations, not sources or tests; the runtime stage drops npm", () => {
    const stages = dockerfile.split(/^FROM /m);
    const build = stages.find((stage) => / AS build\b/.test(stage.split("\n")[0]!))!;
    const runtime = stages.at(-1)!;
    const assembly = build.slice(build.indexOf("RUN mkdir -p /app"));
    assert.ok(assembly.length > 0, "the build stage assembles /app");
    assert.match(assembly, /cp -a "\$pkg\/dist"/, "dist/ of every package");
    assert.match(assembly, /cp -a "\$pkg\/migrations"/, "migrations/ of every package that has them");
    assert.doesNotMatch(assembly, /\/src\b|cp -a libs|cp -a services|bench/, "no sources, whole packages or benchmarks");
    assert.match(assembly, /-name '\*\.test\.js'[^\n]*[\s\S]*-delete/, "compiled tests are deleted");
    assert.deepEqual([...runtime.matchAll(/^COPY (.*)$/gm)].map((m) => m[1]), ["--from=build /app/ ./"], "the runtime stage copies the assembled tree only");
    assert.match(runtime, /rm -rf [^\n]*\/usr\/local\/bin\/npm/, "npm is removed");
    // Every service that migrates has its migrations where its compiled code looks for them (../migrations from dist/).
    for (const dir of ["log", "kv", "federation"]) {
      const component = readFileSync(fileURLToPath(new URL(`../../services/${dir}/src/component.ts`, import.meta.url)), "utf8");
      assert.match(component, /new URL\("\.\.\/migrations", import\.meta\.url\)/, `services/${dir} loads ../migrations`);
    }
  });
});
