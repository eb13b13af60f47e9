// The test cluster's real controllers (test/cluster/cluster.ts): kube-controller-manager creates ServiceAccounts
// and turns a Deployment into a ReplicaSet and a Pod, kube-scheduler reports the pod unschedulable (no node),
// the garbage collector deletes the ReplicaSet and the Pod once the Deployment is deleted, and PodSecurity
// "restricted" refuses a pod that runs as root.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startTestCluster, type TestCluster } from "../cluster/cluster.ts";
import { pollUntil } from "../support/poll.ts";

let cluster: TestCluster;
before(async () => {
  cluster = await startTestCluster();
});
after(async () => {
  await cluster?.stop();
});

const kubectl = async (args: string[], input?: string) => {
  const r = await cluster.kubectl(args, { input });
  assert.equal(r.code, 0, `kubectl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
};

const restrictedPod = {
  securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: "RuntimeDefault" } },
  containers: [
    {
      name: "c",
      image: "steppo.local/none:1",
      securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
    },
  ],
};

test("controller-manager + scheduler: Deployment → ReplicaSet → Pod (unschedulable), garbage-collected on delete", { timeout: 120_000 }, async () => {
  await kubectl(["create", "namespace", "cp"]);
  await pollUntil("the namespace's default ServiceAccount", 30_000, async () =>
    (await cluster.kubectl(["get", "sa/default", "-n", "cp"])).code === 0 ? true : undefined,
  );
  const deployment = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "d", namespace: "cp" },
    spec: { replicas: 1, selector: { matchLabels: { app: "d" } }, template: { metadata: { labels: { app: "d" } }, spec: restrictedPod } },
  };
  await kubectl(["apply", "-f", "-"], JSON.stringify(deployment));
  const pod = await pollUntil("the Deployment's pod, unschedulable", 60_000, async () => {
    const items = JSON.parse(await kubectl(["get", "pods", "-n", "cp", "-o", "json"])).items as {
      metadata: { name: string; ownerReferences?: { kind: string }[] };
      spec: { serviceAccountName?: string };
      status: { conditions?: { type: string; status: string; reason?: string }[] };
    }[];
    const p = items[0];
    const scheduled = p?.status.conditions?.find((c) => c.type === "PodScheduled");
    return scheduled?.status === "False" && scheduled.reason === "Unschedulable" ? p : undefined;
  });
  assert.equal(pod.metadata.ownerReferences?.[0]?.kind, "ReplicaSet");
  assert.equal(pod.spec.serviceAccountName, "default", "the ServiceAccount admission plugin set the pod's account");
  await kubectl(["delete", "deployment/d", "-n", "cp", "--cascade=background", "--wait=false"]);
  await pollUntil("the garbage collector deleting the ReplicaSet and the Pod", 60_000, async () => {
    const left = (await kubectl(["get", "rs,pods", "-n", "cp", "-o", "name"])).trim();
    return left === "" ? true : undefined;
  });
});

test("PodSecurity restricted is enforced: a root pod is refused", { timeout: 60_000 }, async () => {
  const pod = { apiVersion: "v1", kind: "Pod", metadata: { name: "root", namespace: "default" }, spec: { containers: [{ name: "c", image: "x" }] } };
  const r = await cluster.kubectl(["create", "-f", "-"], { input: JSON.stringify(pod) });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /violates PodSecurity "restricted:latest"/);
  const ok = { apiVersion: "v1", kind: "Pod", metadata: { name: "ok", namespace: "default" }, spec: restrictedPod };
  await kubectl(["create", "-f", "-"], JSON.stringify(ok));
});
