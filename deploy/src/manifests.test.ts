// The Kubernetes overlays, rendered with `kubectl kustomize` as an operator
// would, and checked object by object.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

const K8S = fileURLToPath(new URL("../k8s", import.meta.url));

type K8sObject = { kind: string; metadata: { name: string; labels?: Record<string, string> }; spec?: any; data?: Record<string, string> };

function render(overlay: string): K8sObject[] {
  const text = execFileSync("kubectl", ["kustomize", `${K8S}/overlays/${overlay}`], { encoding: "utf8" });
  return parseAllDocuments(text).map((document) => document.toJS() as K8sObject);
}

const OPERATIONS = fileURLToPath(new URL("../../docs/operations.md", import.meta.url));

/** The Secrets docs/operations.md ("### Secrets") documents as provided outside the manifests (in prod). */
function documentedSecrets(): string[] {
  const text = readFileSync(OPERATIONS, "utf8");
  const section = text.slice(text.indexOf("### Secrets"), text.indexOf("### Probes"));
  return [...new Set(section.match(/`annals-[a-z-]+`/g)?.map((name) => name.slice(1, -1)) ?? [])];
}

/** Secrets an overlay may use without defining them: none in dev (it generates all), the documented ones in prod. */
const OPERATOR_SECRETS: Record<string, string[]> = { dev: [], prod: documentedSecrets() };

for (const overlay of ["dev", "prod"]) {
  describe(`overlay ${overlay}`, () => {
    const objects = render(overlay);
    const of = (kind: string) => objects.filter((object) => object.kind === kind);
    const deployments = of("Deployment");

    test("renders the four services", () => {
      assert.deepEqual(deployments.map((d) => d.metadata.name).sort(), ["annals-federation", "annals-kv", "annals-log", "annals-stream"]);
    });

    test("every Deployment: gRPC startup, readiness and liveness probes on its gRPC port, hardened, with requests, limits and a pinned image", () => {
      for (const deployment of deployments) {
        const pod = deployment.spec.template.spec;
        const [container] = pod.containers;
        const name = deployment.metadata.name;
        const portNamed = (wanted: string) => container.ports.find((port: { name: string }) => port.name === wanted)?.containerPort;
        const envOf = (variable: string) => container.env?.find((env: { name: string }) => env.name === variable)?.value;
        const grpcPort = portNamed("grpc");
        const config = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === "annals-config")!.data!;
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
        assert.match(container.image, /^[^:]+:[0-9][^:]*$/, `${name}: image ${container.image} has a version tag`);
        assert.doesNotMatch(container.image, /:latest$/);
        // Drain (health NOT_SERVING) and grace period of the server fit in the pod's termination grace period.
        const shutdownSeconds = (Number(config["ANNALS_SHUTDOWN_DRAIN_DELAY_MS"]) + Number(config["ANNALS_SHUTDOWN_GRACE_MS"])) / 1000;
        assert.ok(pod.terminationGracePeriodSeconds > shutdownSeconds, `${name}: ${pod.terminationGracePeriodSeconds} s > ${shutdownSeconds} s`);
      }
    });

    test("every Service selects pods that exist", () => {
      const templates = [...deployments, ...of("StatefulSet")].map((workload) => workload.spec.template.metadata.labels as Record<string, string>);
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
      for (const workload of [...deployments, ...of("StatefulSet")]) {
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

    if (overlay === "prod") {
      test("disruption budgets only guard Deployments of 2 or more replicas; autoscalers start at 3", () => {
        const pdbs = of("PodDisruptionBudget");
        assert.ok(pdbs.length >= 3);
        for (const pdb of pdbs) {
          const selected = deployments.filter((d) =>
            Object.entries(pdb.spec.selector.matchLabels as Record<string, string>).every(([key, value]) => d.spec.template.metadata.labels[key] === value),
          );
          assert.equal(selected.length, 1, `PDB ${pdb.metadata.name} selects one Deployment`);
          assert.ok(selected[0]!.spec.replicas >= 2, `PDB ${pdb.metadata.name}: ${selected[0]!.metadata.name} has ${selected[0]!.spec.replicas} replicas`);
        }
        for (const hpa of of("HorizontalPodAutoscaler")) assert.equal(hpa.spec.minReplicas, 3, hpa.metadata.name);
      });
    }
  });
}
