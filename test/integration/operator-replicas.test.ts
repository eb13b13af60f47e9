// Replicas as a weapon, against a REAL kube-apiserver: a job above the operator's --max-replicas is refused
// whole (Failed, the limit named, no child created), and pods are created in slow-start batches that stop
// at the first failure (a ResourceQuota refuses pods past its limit) and resume once the cause is gone.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { GROUP, VERSION } from "../../crds/steppojob.ts";
import { DEFAULTS } from "../../operator/desired.ts";
import { PLURAL } from "../../crds/names.ts";
import { type RunningOperator, startOperator } from "../../operator/operator.ts";
import { createJob, eventually, getJob, type Harness, jobPods, startHarness } from "../support/operator-harness.ts";

let h: Harness;
let op: RunningOperator;
const LIMIT = 4;

describe("operator replica limit and slow-start creation on a real kube-apiserver", () => {
  before(async () => {
    h = await startHarness();
    op = await startOperator({ clients: h.clients, leaderElection: false, log: () => {}, defaults: { ...DEFAULTS, maxReplicas: LIMIT } });
  });
  after(async () => {
    await op?.stop();
    await h?.stop();
  });

  test("a job above --max-replicas fails with a condition naming the limit, and nothing of it is created", async () => {
    await createJob(h.clients, "huge", { rollout: { replicas: LIMIT + 1, maxReplicas: LIMIT + 1 } });
    const failed = await eventually("Failed", async () => {
      const s = (await getJob(h.clients, "huge")).status;
      return s?.phase === "Failed" ? s : undefined;
    });
    const c = failed.conditions?.find((x) => x.type === "Failed");
    assert.equal(c?.reason, "ReplicasOverLimit");
    assert.match(c?.message ?? "", /spec\.rollout\.replicas 5 and spec\.rollout\.maxReplicas 5 above this operator's limit of 4/);
    assert.deepEqual(await jobPods(h.clients, "huge"), []);
    const cms = await h.clients.core.listNamespacedConfigMap({ namespace: "default" });
    assert.ok(!cms.items.some((m) => m.metadata?.name === "huge-spec"), "no ConfigMap either");
  });

  test("a pod quota stops a pass at the first failed batch (FailedCreate); the rest follow once the quota is lifted", async () => {
    const namespace = "quota";
    await h.clients.core.createNamespace({ body: { metadata: { name: namespace } } });
    await h.clients.core.createNamespacedResourceQuota({ namespace, body: { metadata: { name: "pods" }, spec: { hard: { pods: "1" } } } });
    // No kube-controller-manager here: play its part and publish the quota's status, which admission uses.
    await h.clients.core.replaceNamespacedResourceQuotaStatus({
      namespace,
      name: "pods",
      body: { metadata: { name: "pods", namespace }, spec: { hard: { pods: "1" } }, status: { hard: { pods: "1" }, used: { pods: "0" } } },
    });
    await h.clients.custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: PLURAL,
      body: { apiVersion: `${GROUP}/${VERSION}`, kind: "StepPOJob", metadata: { name: "quoted", namespace }, spec: { rollout: { replicas: 4 } } },
    });
    const pods = async () => (await h.clients.core.listNamespacedPod({ namespace })).items.map((p) => p.metadata!.name!).sort();
    // The first batch (4 of the 5 pods) meets the quota of 1: one pod is created, the fifth is not tried;
    // later passes fail their first batch again and stop there.
    const stopped = await eventually(
      "a pass that stopped after its first batch",
      async () => {
        const ev = await h.clients.core.listNamespacedEvent({ namespace, fieldSelector: "involvedObject.name=quoted" });
        return ev.items.find((e) => e.reason === "FailedCreate" && /created 1 of 5 pod\(s\); stopped after a failed batch \(1 not tried/.test(e.message ?? ""));
      },
      30_000,
    );
    assert.equal(stopped.type, "Warning");
    assert.match(stopped.message ?? "", /exceeded quota/);
    assert.equal((await pods()).length, 1);
    await h.clients.core.deleteNamespacedResourceQuota({ namespace, name: "pods" });
    const all = await eventually("all five pods", async () => ((await pods()).length === 5 ? pods() : undefined), 60_000);
    assert.deepEqual(all, ["quoted-learner-0", "quoted-rollout-0", "quoted-rollout-1", "quoted-rollout-2", "quoted-rollout-3"]);
  });
});
