// The process-based node agent (test/node-agent) against a REAL kube-apiserver: pods created with kubectl
// are scheduled onto its node, run as local processes (here `sh`, so the tests are quick), and report
// their status; volumes, env, ports, graceful deletion, restart policies, scheduling by resources, the
// service-account token and `kubectl logs` through the API server.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import { type Clients, loadKubeConfig, makeClients } from "../../operator/kube.ts";
import { startTestCluster, type TestCluster } from "../cluster/cluster.ts";
import { NodeAgent } from "../node-agent/agent.ts";
import { HOST_PORTS_ANNOTATION } from "../node-agent/pod-runner.ts";
import { eventually } from "../support/operator-harness.ts";

let cluster: TestCluster;
let agent: NodeAgent;
let c: Clients;
const quiet = () => {};

async function apply(manifest: string): Promise<void> {
  const r = await cluster.kubectl(["apply", "-f", "-"], { input: manifest });
  assert.equal(r.code, 0, r.stderr);
}

async function pod(name: string): Promise<V1Pod | undefined> {
  try {
    return await c.core.readNamespacedPod({ namespace: "default", name });
  } catch {
    return undefined;
  }
}

function waitPhase(name: string, phase: string, timeoutMs = 30_000): Promise<V1Pod> {
  return eventually(`pod ${name} ${phase}`, async () => ((await pod(name))?.status?.phase === phase ? pod(name) : undefined), timeoutMs);
}

function shPod(name: string, script: string, extra = ""): string {
  return `
apiVersion: v1
kind: Pod
metadata: {name: ${name}}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    command: [sh, -c, ${JSON.stringify(script)}]
${extra}`;
}

describe("node agent: pods as local processes on a real kube-apiserver", () => {
  before(async () => {
    cluster = await startTestCluster();
    agent = await NodeAgent.start({ kubeconfig: cluster.kubeconfigPath, gpus: 1, log: process.env.STEPPO_TEST_VERBOSE ? undefined : quiet });
    c = makeClients(loadKubeConfig(cluster.kubeconfigPath));
  });
  after(async () => {
    await agent?.stop();
    await cluster?.stop();
  });

  test("the node registers Ready with its capacity and renews its lease", async () => {
    const node = await c.core.readNode({ name: agent.nodeName });
    assert.equal(node.status?.conditions?.find((x) => x.type === "Ready")?.status, "True");
    assert.equal(node.status?.allocatable?.["nvidia.com/gpu"], "1");
    assert.equal(node.status?.addresses?.[0]?.address, "127.0.0.1");
    const lease = await c.coordination.readNamespacedLease({ namespace: "kube-node-lease", name: agent.nodeName });
    assert.equal(lease.spec?.holderIdentity, agent.nodeName);
  });

  test("volumes, env, $(VAR), port remap; a non-zero exit fails the pod with its code; kubectl logs", async () => {
    await apply(`
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {greeting: hello from a configmap}
---
apiVersion: v1
kind: Secret
metadata: {name: sec}
stringData: {password: s3cret}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
${shPod(
  "vol",
  'cat /etc/cfg/greeting; echo; cat /etc/sec/password; echo; echo "name=$POD_NAME ns=$POD_NS port=$PORT pw=$PW arg=$1"; echo kept > /data/out.txt; exit 3',
  `    args: [x, "$(POD_NAME)-arg"]
    env:
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: POD_NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    - {name: PW, valueFrom: {secretKeyRef: {name: sec, key: password}}}
    - {name: PORT, value: "9464"}
    ports: [{containerPort: 9464, name: metrics}]
    volumeMounts:
    - {name: cfg, mountPath: /etc/cfg}
    - {name: sec, mountPath: /etc/sec}
    - {name: data, mountPath: /data}
  volumes:
  - {name: cfg, configMap: {name: cfg}}
  - {name: sec, secret: {secretName: sec}}
  - {name: data, persistentVolumeClaim: {claimName: data}}`,
)}`);
    const p = await waitPhase("vol", "Failed");
    assert.equal(p.spec?.nodeName, agent.nodeName, "bound by the agent's scheduler");
    const term = p.status?.containerStatuses?.[0]?.state?.terminated;
    assert.equal(term?.exitCode, 3);
    assert.equal(term?.reason, "Error");
    assert.equal(p.status?.podIP, "127.0.0.1");
    const ports = JSON.parse(p.metadata?.annotations?.[HOST_PORTS_ANNOTATION] ?? "{}") as Record<string, number>;
    const hostPort = ports["main/9464"];
    assert.ok(hostPort > 0 && hostPort !== 9464, `a host port other than 9464: ${hostPort}`);
    const logs = await cluster.kubectl(["logs", "vol"]);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /hello from a configmap/);
    assert.match(logs.stdout, /s3cret/);
    assert.match(logs.stdout, new RegExp(`name=vol ns=default port=${hostPort} pw=s3cret arg=vol-arg`));
    const get = await cluster.kubectl(["get", "pod", "vol", "--no-headers"]);
    assert.match(get.stdout, /vol\s+0\/1\s+Error\s+0/);
  });

  test("a claim's directory outlives the pod; exit 0 → Succeeded", async () => {
    await apply(
      shPod(
        "reader",
        "cat /data/out.txt",
        `    volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]`,
      ),
    );
    const p = await waitPhase("reader", "Succeeded");
    assert.equal(p.status?.containerStatuses?.[0]?.state?.terminated?.reason, "Completed");
    assert.match(agent.readLog("default", "reader"), /^kept$/m);
  });

  test("deletion: SIGTERM to the process, then the agent removes the pod", async () => {
    await apply(shPod("graceful", 'trap "echo got SIGTERM; exit 0" TERM; echo started; while true; do sleep 0.1; done'));
    await eventually("graceful Ready", async () => {
      const p = await pod("graceful");
      return p?.status?.conditions?.some((x) => x.type === "Ready" && x.status === "True") ? true : undefined;
    });
    const [proc] = agent.processes().filter((x) => x.pod === "graceful");
    assert.ok(proc, "a running process");
    const t0 = Date.now();
    const del = await cluster.kubectl(["delete", "pod", "graceful", "--wait=true", "--timeout=30s"]);
    assert.equal(del.code, 0, del.stderr);
    assert.ok(Date.now() - t0 < 10_000, "gone well before the 30 s grace period");
    assert.equal(await pod("graceful"), undefined);
    assert.throws(() => process.kill(proc.pid, 0), "the process is gone");
    const log = readFileSync(agent.logPath("default", "graceful") ?? "", "utf8");
    assert.match(log, /got SIGTERM/);
  });

  test("a process that ignores SIGTERM is SIGKILLed after terminationGracePeriodSeconds", async () => {
    await apply(
      shPod("stubborn", 'trap "echo ignoring" TERM; while true; do sleep 0.1; done').replace(
        "restartPolicy: Never",
        "restartPolicy: Never\n  terminationGracePeriodSeconds: 2",
      ),
    );
    await waitPhase("stubborn", "Running");
    const t0 = Date.now();
    const del = await cluster.kubectl(["delete", "pod", "stubborn", "--wait=true", "--timeout=30s"]);
    assert.equal(del.code, 0, del.stderr);
    const took = Date.now() - t0;
    assert.ok(took >= 1800 && took < 15_000, `killed after the 2 s grace period (took ${took} ms)`);
    assert.equal(agent.processes().filter((x) => x.pod === "stubborn").length, 0);
  });

  test("restartPolicy OnFailure restarts a failed container in place", async () => {
    await apply(
      shPod(
        "retry",
        "if [ -f /work/once ]; then echo second; exit 0; fi; touch /work/once; echo first; exit 1",
        `    volumeMounts: [{name: w, mountPath: /work}]
  volumes: [{name: w, emptyDir: {}}]`,
      ).replace("restartPolicy: Never", "restartPolicy: OnFailure"),
    );
    const p = await waitPhase("retry", "Succeeded");
    const cs = p.status?.containerStatuses?.[0];
    assert.equal(cs?.restartCount, 1);
    assert.equal(cs?.lastState?.terminated?.exitCode, 1);
    const prev = await cluster.kubectl(["logs", "retry", "--previous"]);
    assert.match(prev.stdout, /first/);
  });

  test("scheduling by resources: a second GPU pod waits Unschedulable until the first finishes", async () => {
    const gpu = `    resources: {limits: {nvidia.com/gpu: 1}}`;
    await apply(shPod("gpu-a", "sleep 3", gpu));
    await waitPhase("gpu-a", "Running");
    await apply(shPod("gpu-b", "echo got the gpu", gpu));
    const waiting = await eventually("gpu-b unschedulable", async () => {
      const p = await pod("gpu-b");
      const cond = p?.status?.conditions?.find((x) => x.type === "PodScheduled");
      return cond?.status === "False" ? cond : undefined;
    });
    assert.equal(waiting.reason, "Unschedulable");
    assert.match(waiting.message ?? "", /Insufficient nvidia.com\/gpu/);
    assert.equal((await pod("gpu-b"))?.spec?.nodeName, undefined);
    await waitPhase("gpu-a", "Succeeded");
    await waitPhase("gpu-b", "Succeeded");
  });

  test("a pod's service account: its token as KUBECONFIG, with exactly that account's RBAC", async () => {
    await apply(`
apiVersion: v1
kind: ServiceAccount
metadata: {name: reader}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader}
rules: [{apiGroups: [""], resources: [pods], verbs: [get, list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader-pods}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects: [{kind: ServiceAccount, name: reader, namespace: default}]
---
${shPod(
  "sa",
  `${cluster.binaries.kubectl} get pod sa -o name; ${cluster.binaries.kubectl} get secrets 2>&1 | head -1; cat /var/run/secrets/kubernetes.io/serviceaccount/namespace`,
).replace("restartPolicy: Never", "restartPolicy: Never\n  serviceAccountName: reader")}`);
    await waitPhase("sa", "Succeeded");
    const log = agent.readLog("default", "sa");
    assert.match(log, /^pod\/sa$/m, log);
    assert.match(log, /forbidden.*system:serviceaccount:default:reader/i, log);
    assert.match(log, /^default$/m, log);
  });
});

test("the node agent's directory and processes are gone after stop()", async () => {
  assert.ok(agent, "the describe block ran");
  await agent.stop();
  assert.equal(existsSync(agent.dir), false);
  assert.equal(agent.processes().length, 0);
});
