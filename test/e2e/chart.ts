// helm install of charts/steppo on the test cluster, and its operator Deployment's pods: the real Deployment
// and ReplicaSet controllers (kube-controller-manager) make them, the scheduler binds them to the test node and
// its kubelet runs them; waitDeploymentPods waits until they are Ready.
import type { TestCluster } from "../cluster/cluster.ts";
import { CHART_DIR, makeHelm } from "../support/helm.ts";

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
  /** Extra `--set-string` values (kept strings, e.g. a port number for an EnvVar value). */
  setString?: string[];
  log: (m: string) => void;
}

/**
 * `helm install <release> charts/steppo --namespace <ns> --create-namespace --set nats.url=...`: the chart of
 * the checkout itself (it has no dependencies, so it installs with no network; NATS is the test's own
 * nats-server, as a user installs NATS separately).
 */
export async function installChart(cluster: TestCluster, o: InstallOptions): Promise<InstalledChart> {
  const release = o.release ?? "steppo";
  const namespace = o.namespace ?? "steppo-system";
  const helm = makeHelm(o.log);
  try {
    const args = [
      "install",
      release,
      CHART_DIR,
      "--kubeconfig",
      cluster.kubeconfigPath,
      "--namespace",
      namespace,
      "--create-namespace",
      "--set",
      `nats.url=${o.natsUrl}`,
      ...(o.set ?? []).flatMap((s) => ["--set", s]),
      ...(o.setString ?? []).flatMap((s) => ["--set-string", s]),
    ];
    o.log(`helm ${args.join(" ")}`);
    const r = await helm.run(args);
    if (r.code !== 0) throw new Error(`helm install failed (exit ${r.code}):\n${r.stderr || r.stdout}`);
    const crd = await cluster.kubectl(["wait", "--for=condition=Established", "--timeout=60s", "crd/steppojobs.steppo.dev"]);
    if (crd.code !== 0) throw new Error(`after helm install the StepPOJob CRD is not established: ${crd.stderr || crd.stdout}`);
    return { release, namespace, pods: [], helmOutput: r.stdout };
  } finally {
    helm.remove();
  }
}

/** Waits until the release's Deployments are available, and records their pods (the ReplicaSets' pods). */
export async function waitDeploymentPods(cluster: TestCluster, chart: InstalledChart, log: (m: string) => void, timeoutSeconds = 180): Promise<void> {
  const w = await cluster.kubectl(["wait", "--for=condition=Available", "-n", chart.namespace, `--timeout=${timeoutSeconds}s`, "deployment", "--all"], {
    timeoutMs: (timeoutSeconds + 30) * 1000,
  });
  if (w.code !== 0) {
    const pods = await cluster.kubectl(["get", "pods", "-n", chart.namespace, "-o", "wide"]);
    throw new Error(`the chart's Deployments did not become Available: ${w.stderr || w.stdout}\n${pods.stdout}`);
  }
  const list = await cluster.kubectl([
    "get",
    "pods",
    "-n",
    chart.namespace,
    "--field-selector=status.phase=Running",
    "-o",
    "jsonpath={.items[*].metadata.name}",
  ]);
  chart.pods.push(...list.stdout.trim().split(/\s+/).filter(Boolean));
  log(`operator pod(s) ${chart.pods.join(", ")} Ready (made by the Deployment and ReplicaSet controllers)`);
}
