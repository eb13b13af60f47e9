// helm install of charts/steppo on the test cluster, and its operator Deployment's pods. The test cluster
// has no kube-controller-manager, so nothing turns a Deployment into pods: startDeploymentPods does the
// ReplicaSet controller's one job here — it creates `spec.replicas` pods from the Deployment's pod template
// (same labels, service account, command, args, env, ports, probes) — and the node agent runs them.
import type { TestCluster } from "../cluster/cluster.ts";
import { CHART_DIR, makeHelm, stageChart } from "../support/helm.ts";

export interface InstalledChart {
  release: string;
  namespace: string;
  /** Pods created from the chart's Deployments (filled by startDeploymentPods). */
  pods: string[];
  helmOutput: string;
}

export interface InstallOptions {
  natsUrl: string;
  release?: string;
  namespace?: string;
  /** Extra `--set` values. */
  set?: string[];
  log: (m: string) => void;
}

/**
 * `helm install <release> charts/steppo --namespace <ns> --create-namespace --set nats.url=... --set
 * nats.install=false`. Helm refuses a chart whose declared dependencies are not in its charts/ directory,
 * whatever their condition, and the optional NATS chart can only be fetched over the network: the staged
 * copy of test/support/helm.ts (charts/steppo without that one entry; with nats.install=false it renders
 * the same) is what gets installed.
 */
export async function installChart(cluster: TestCluster, o: InstallOptions): Promise<InstalledChart> {
  const release = o.release ?? "steppo";
  const namespace = o.namespace ?? "steppo-system";
  const staged = stageChart(cluster.dir);
  if (staged.removed.length > 0)
    o.log(`installing ${CHART_DIR} staged without its dependencies ${staged.removed.map((d) => d.name).join(", ")} (nats.install=false)`);
  const helm = makeHelm(o.log);
  try {
    const args = [
      "install",
      release,
      staged.dir,
      "--kubeconfig",
      cluster.kubeconfigPath,
      "--namespace",
      namespace,
      "--create-namespace",
      "--set",
      `nats.url=${o.natsUrl}`,
      "--set",
      "nats.install=false",
      ...(o.set ?? []).flatMap((s) => ["--set", s]),
    ];
    o.log(`helm ${args.join(" ")}`);
    const r = await helm.run(args);
    if (r.code !== 0) throw new Error(`helm install failed (exit ${r.code}):\n${r.stderr || r.stdout}`);
    const crd = await cluster.kubectl(["wait", "--for=condition=Established", "--timeout=60s", "crd/steppojobs.steppo.dev"]);
    if (crd.code !== 0) throw new Error(`after helm install the StepPOJob CRD is not established: ${crd.stderr || crd.stdout}`);
    return { release, namespace, pods: [], helmOutput: r.stdout };
  } finally {
    helm.remove();
    staged.remove();
  }
}

interface Deployment {
  metadata: { name: string };
  spec: {
    replicas?: number;
    template: { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> }; spec: Record<string, unknown> };
  };
}

/** Creates the pods of the release's Deployments (the missing ReplicaSet controller) and waits until they are Ready. */
export async function startDeploymentPods(cluster: TestCluster, chart: InstalledChart, log: (m: string) => void, timeoutSeconds = 120): Promise<void> {
  const list = await cluster.kubectl(["get", "deployments", "-n", chart.namespace, "-o", "json"]);
  if (list.code !== 0) throw new Error(`listing the chart's Deployments: ${list.stderr}`);
  const deployments = (JSON.parse(list.stdout) as { items: Deployment[] }).items;
  if (deployments.length === 0) throw new Error(`helm install created no Deployment in namespace ${chart.namespace}`);
  for (const d of deployments) {
    const replicas = d.spec.replicas ?? 1;
    for (let i = 0; i < replicas; i++) {
      const name = `${d.metadata.name}-${i}`;
      const pod = {
        apiVersion: "v1",
        kind: "Pod",
        metadata: {
          name,
          namespace: chart.namespace,
          labels: d.spec.template.metadata?.labels ?? {},
          annotations: d.spec.template.metadata?.annotations ?? {},
        },
        spec: d.spec.template.spec,
      };
      const r = await cluster.kubectl(["create", "-f", "-"], { input: JSON.stringify(pod) });
      if (r.code !== 0) throw new Error(`creating pod ${name} from Deployment ${d.metadata.name}'s template: ${r.stderr}`);
      log(`created pod ${chart.namespace}/${name} from Deployment ${d.metadata.name}'s template`);
      chart.pods.push(name);
    }
  }
  const w = await cluster.kubectl(
    ["wait", "--for=condition=Ready", "-n", chart.namespace, `--timeout=${timeoutSeconds}s`, ...chart.pods.map((p) => `pod/${p}`)],
    {
      timeoutMs: (timeoutSeconds + 30) * 1000,
    },
  );
  if (w.code !== 0) throw new Error(`the operator pod(s) did not become Ready: ${w.stderr || w.stdout}`);
}
