// npm run cluster:up — starts a long-lived test cluster (etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler; see cluster.ts; no node) in the
// background, installs the StepPOJob CRD, and prints the admin kubeconfig path. `npm run cluster:down`
// stops it. Options: --no-crd (skip the CRD).
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type ClusterState, CLUSTER_HOME, ownsPid, readState, RUN_DIR, STATE_FILE, statePids } from "./state.ts";
import { runKubectl, startTestCluster } from "./cluster.ts";

const CRD_FILE = fileURLToPath(new URL("../../crds/steppo.dev_steppojobs.yaml", import.meta.url));

function usage(state: ClusterState): string {
  return [
    `server:     ${state.server}`,
    `kubeconfig: ${state.kubeconfigPath}`,
    `kubectl:    ${state.kubectl}`,
    "",
    `  ${state.kubectl} --kubeconfig ${state.kubeconfigPath} get ns`,
    `  export KUBECONFIG=${state.kubeconfigPath}`,
    "",
    `logs in ${state.dir}; stop with: npm run cluster:down`,
  ].join("\n");
}

async function main(): Promise<void> {
  const existing = readState();
  if (existing) {
    if (ownsPid(existing.pids.apiserver, existing.dir) && ownsPid(existing.pids.etcd, existing.dir)) {
      console.log(`a test cluster is already running (since ${existing.startedAt})\n${usage(existing)}`);
      return;
    }
    console.log("cleaning up a test cluster that is no longer running");
    for (const pid of statePids(existing)) if (ownsPid(pid, existing.dir)) process.kill(pid, "SIGKILL");
    rmSync(existing.dir, { recursive: true, force: true });
    rmSync(STATE_FILE, { force: true });
  }
  mkdirSync(CLUSTER_HOME, { recursive: true });
  rmSync(RUN_DIR, { recursive: true, force: true });
  const cluster = await startTestCluster({ dir: RUN_DIR, detached: true });
  const state: ClusterState = {
    dir: cluster.dir,
    kubeconfigPath: cluster.kubeconfigPath,
    server: cluster.server,
    kubectl: cluster.binaries.kubectl,
    pids: cluster.pids,
    startedAt: new Date().toISOString(),
  };
  writeFileSync(STATE_FILE, `${JSON.stringify(state, null, 2)}\n`);
  console.log(
    `test cluster ready in ${(cluster.startupMs / 1000).toFixed(1)} s (kube-apiserver, kube-controller-manager, kube-scheduler ${cluster.binaries.versions.kubernetes}, etcd ${cluster.binaries.versions.etcd})`,
  );
  if (!process.argv.includes("--no-crd")) {
    const kubectl = (args: string[]) => runKubectl(cluster.binaries.kubectl, cluster.kubeconfigPath, args);
    const apply = await kubectl(["apply", "-f", CRD_FILE]);
    const established = apply.code === 0 ? await kubectl(["wait", "--for=condition=Established", "--timeout=30s", "crd/steppojobs.steppo.dev"]) : apply;
    if (established.code !== 0) console.error(`installing the StepPOJob CRD failed:\n${established.stderr || established.stdout}`);
    else console.log(`installed ${join("crds", "steppo.dev_steppojobs.yaml")}`);
  }
  console.log(usage(state));
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
