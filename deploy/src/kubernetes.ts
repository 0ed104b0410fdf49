// Rendering the kustomize overlays and components as an operator would
// (`kubectl kustomize`, offline), and what the tests need to reason about the
// rendered objects: which pods a NetworkPolicy lets in.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

export const K8S = fileURLToPath(new URL("../k8s", import.meta.url));

export type Labels = Record<string, string>;
export type K8sObject = { apiVersion?: string; kind: string; metadata: { name: string; namespace?: string; labels?: Labels; annotations?: Labels }; spec?: any; data?: Labels };

function kustomize(dir: string): K8sObject[] {
  const text = execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8" });
  return parseAllDocuments(text).map((document) => document.toJS() as K8sObject);
}

/** The objects of `deploy/k8s/overlays/<overlay>`. */
export function renderOverlay(overlay: string): K8sObject[] {
  return kustomize(`${K8S}/overlays/${overlay}`);
}

/**
 * An overlay with optional components of `deploy/k8s/components` added, as
 * an operator's own overlay would: on top of it, in its namespace.
 */
export function renderWithComponents(overlay: string, components: readonly string[]): K8sObject[] {
  const namespace = /^namespace:\s*(\S+)/m.exec(readFileSync(`${K8S}/overlays/${overlay}/kustomization.yaml`, "utf8"))?.[1];
  const dir = mkdtempSync(join(K8S, ".test-overlay-"));
  try {
    writeFileSync(
      join(dir, "kustomization.yaml"),
      [
        "apiVersion: kustomize.config.k8s.io/v1beta1",
        "kind: Kustomization",
        ...(namespace ? [`namespace: ${namespace}`] : []),
        "resources:",
        `  - ../overlays/${overlay}`,
        "components:",
        ...components.map((component) => `  - ../components/${component}`),
      ].join("\n") + "\n",
    );
    return kustomize(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A pod as NetworkPolicies see it: its namespace (with the namespace's labels) and its own labels. */
export interface PodIdentity {
  namespace: string;
  namespaceLabels?: Labels;
  labels: Labels;
}

/** A pod that policies may isolate, and its named container ports. */
export interface TargetPod extends PodIdentity {
  ports: ReadonlyArray<{ name?: string; containerPort: number }>;
}

const matches = (selector: { matchLabels?: Labels; matchExpressions?: unknown[] } | undefined, labels: Labels) => {
  if (selector?.matchExpressions?.length) throw new Error("matchExpressions are not evaluated by these tests");
  return Object.entries(selector?.matchLabels ?? {}).every(([key, value]) => labels[key] === value);
};

/**
 * Whether the NetworkPolicies among `objects` let `source` open a connection
 * to `target` on `port`, by the Kubernetes rules: a pod no Ingress policy
 * selects takes everything; a selected pod takes what at least one rule of
 * one selecting policy allows. Peers: podSelector alone is the policy's own
 * namespace; namespaceSelector alone is every pod of the matching
 * namespaces; both together, pods matching both. Named ports resolve
 * through the target's container ports. (Namespaces carry the label
 * kubernetes.io/metadata.name, as the API server sets it.)
 */
export function admits(objects: readonly K8sObject[], target: TargetPod, source: PodIdentity, port: number): boolean {
  const namespaceLabels = (pod: PodIdentity) => ({ "kubernetes.io/metadata.name": pod.namespace, ...pod.namespaceLabels });
  const selecting = objects.filter(
    (object) =>
      object.kind === "NetworkPolicy" &&
      (object.metadata.namespace ?? "default") === target.namespace &&
      matches(object.spec.podSelector, target.labels) &&
      ((object.spec.policyTypes as string[] | undefined) ?? ["Ingress"]).includes("Ingress"),
  );
  if (selecting.length === 0) return true;
  const portMatches = (wanted: { port?: number | string }) =>
    wanted.port === undefined ||
    wanted.port === port ||
    (typeof wanted.port === "string" && target.ports.some((candidate) => candidate.name === wanted.port && candidate.containerPort === port));
  return selecting.some((policy) =>
    ((policy.spec.ingress as any[] | undefined) ?? []).some((rule) => {
      if (rule.ports && !rule.ports.some(portMatches)) return false;
      if (!rule.from || rule.from.length === 0) return true;
      return rule.from.some((peer: any) => {
        if (peer.ipBlock) return false;
        const namespaceOk = peer.namespaceSelector ? matches(peer.namespaceSelector, namespaceLabels(source)) : source.namespace === target.namespace;
        const podOk = peer.podSelector ? matches(peer.podSelector, source.labels) : true;
        return namespaceOk && podOk;
      });
    }),
  );
}

/** The pod a Deployment or StatefulSet makes, as a NetworkPolicy target. */
export function workloadPod(workload: K8sObject): TargetPod {
  const template = workload.spec.template;
  return {
    namespace: workload.metadata.namespace ?? "default",
    labels: template.metadata.labels,
    ports: template.spec.containers.flatMap((container: { ports?: TargetPod["ports"] }) => container.ports ?? []),
  };
}
