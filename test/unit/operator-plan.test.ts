// The operator's pure parts: desired children, the planner's policies, names, conditions and the queue.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import { job } from "../support/plan-fixtures.ts";
import { phaseOf, setCondition } from "../../operator/conditions.ts";
import { DEFAULTS, desiredChildren, desiredLearnerPod, desiredRolloutPod, type JobObject, specHash } from "../../operator/desired.ts";
import { fit, learnerPodName, podIndex, serviceName } from "../../crds/names.ts";
import { type Observed, plan } from "../../operator/plan.ts";
import { WorkQueue } from "../../operator/queue.ts";

const NOW = new Date("2026-01-01T00:00:00Z");

function pod(p: V1Pod, phase: string, extra: Partial<V1Pod["status"]> = {}): V1Pod {
  return { ...p, status: { phase, ...extra } };
}

const running = (p: V1Pod) => pod(p, "Running", { conditions: [{ type: "Ready", status: "True" }] });

describe("desired children", () => {
  test("learner pod: GPU resources, PVC mount, NATS env, owner ref, labels", () => {
    const j = job({ learner: { resources: { limits: { "nvidia.com/gpu": 1 } } }, nats: { url: "nats://n:4222" } });
    const p = desiredLearnerPod(j, 0);
    assert.equal(p.metadata?.name, "j-learner-0");
    assert.deepEqual(p.metadata?.ownerReferences, [
      { apiVersion: "steppo.dev/v1alpha1", kind: "StepPOJob", name: "j", uid: "uid-1", controller: true, blockOwnerDeletion: true },
    ]);
    assert.equal(p.metadata?.labels?.["steppo.dev/role"], "learner");
    assert.equal(p.spec?.containers[0].resources?.limits?.["nvidia.com/gpu"], "1");
    assert.equal(p.spec?.containers[0].env?.find((e) => e.name === "STEPPO_NATS_URL")?.value, "nats://n:4222");
    assert.equal(p.spec?.volumes?.find((v) => v.persistentVolumeClaim)?.persistentVolumeClaim?.claimName, "j-checkpoints");
    assert.equal(p.spec?.restartPolicy, "Never");
  });

  test("rollout pods get their name as worker id; existingClaim means no PVC", () => {
    const j = job({ checkpoint: { existingClaim: "mine" } });
    assert.equal(desiredRolloutPod(j, 3).spec?.containers[0].env?.find((e) => e.name === "STEPPO_WORKER_ID")?.value, "j-rollout-3");
    assert.equal(desiredChildren(j).pvc, undefined);
    assert.equal(desiredLearnerPod(j, 0).spec?.volumes?.find((v) => v.persistentVolumeClaim)?.persistentVolumeClaim?.claimName, "mine");
  });

  // What PodSecurity "restricted" (Kubernetes v1.25+) requires of a pod, checked field by field.
  function assertRestricted(p: V1Pod): void {
    const spec = p.spec!;
    const what = p.metadata?.name;
    assert.equal(spec.automountServiceAccountToken, false, `${what}: no service-account token (the pods never call the API)`);
    assert.equal(spec.securityContext?.runAsNonRoot, true, `${what}: runAsNonRoot`);
    assert.ok((spec.securityContext?.runAsUser ?? 1) !== 0, `${what}: not uid 0`);
    assert.equal(spec.securityContext?.runAsUser, 65532, `${what}: the images' uid`);
    assert.equal(spec.securityContext?.fsGroup, 65532, `${what}: fsGroup kept (checkpoint claim writable)`);
    assert.deepEqual(spec.securityContext?.seccompProfile, { type: "RuntimeDefault" }, `${what}: seccomp`);
    assert.equal(spec.hostNetwork ?? false, false);
    assert.equal(spec.hostPID ?? false, false);
    assert.equal(spec.hostIPC ?? false, false);
    for (const v of spec.volumes ?? []) assert.equal(v.hostPath, undefined, `${what}: no hostPath volume ${v.name}`);
    for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
      const sc = c.securityContext;
      assert.equal(sc?.allowPrivilegeEscalation, false, `${what}/${c.name}: allowPrivilegeEscalation`);
      assert.deepEqual(sc?.capabilities, { drop: ["ALL"] }, `${what}/${c.name}: capabilities`);
      assert.equal(sc?.privileged ?? false, false);
      assert.notEqual(sc?.runAsNonRoot, false);
      assert.notEqual(sc?.runAsUser, 0);
      assert.equal(sc?.readOnlyRootFilesystem, true, `${what}/${c.name}: read-only root filesystem`);
      for (const port of c.ports ?? []) assert.equal(port.hostPort, undefined);
      // A read-only root needs a writable volume wherever the process writes: /tmp (tsx's cache) for both.
      const tmp = c.volumeMounts?.find((m) => m.mountPath === "/tmp");
      assert.ok(tmp && !tmp.readOnly && spec.volumes?.find((v) => v.name === tmp.name)?.emptyDir, `${what}/${c.name}: writable /tmp`);
    }
  }

  test("learner and rollout pods pass PodSecurity restricted", () => {
    const j = job({ nats: { credentialsSecret: "creds" } });
    const learner = desiredLearnerPod(j, 0);
    assertRestricted(learner);
    assertRestricted(desiredRolloutPod(j, 0));
    // The learner writes checkpoints and its run directory onto the claim, both under /var/lib/steppo.
    const data = learner.spec?.containers[0].volumeMounts?.find((m) => m.mountPath === "/var/lib/steppo");
    assert.ok(data && !data.readOnly && learner.spec?.volumes?.find((v) => v.name === data.name)?.persistentVolumeClaim);
  });

  test("pods learn their namespace from the API server and the cluster id from the operator", () => {
    const envOf = (p: V1Pod) => p.spec?.containers[0].env ?? [];
    for (const p of [desiredLearnerPod(job(), 0), desiredRolloutPod(job(), 0)]) {
      assert.deepEqual(envOf(p).find((e) => e.name === "STEPPO_NAMESPACE")?.valueFrom, { fieldRef: { fieldPath: "metadata.namespace" } });
      assert.equal(
        envOf(p).find((e) => e.name === "STEPPO_CLUSTER_ID"),
        undefined,
        "no cluster id: none in the environment",
      );
    }
    const east = { ...DEFAULTS, clusterId: "east" };
    for (const p of [desiredLearnerPod(job(), 0, east), desiredRolloutPod(job(), 0, east)]) {
      assert.equal(envOf(p).find((e) => e.name === "STEPPO_CLUSTER_ID")?.value, "east");
    }
    assert.equal(specHash(job(), { ...DEFAULTS, clusterId: "" }), specHash(job(), DEFAULTS), "an empty cluster id keeps existing pods");
    assert.notEqual(specHash(job(), east), specHash(job(), DEFAULTS), "a new cluster id means new pods (their NATS names change)");
  });

  test("desired children are a pure function of the job", () => {
    assert.deepEqual(desiredChildren(job({ seed: 3 })), desiredChildren(job({ seed: 3 })));
  });
});

describe("plan", () => {
  const all = (j: JobObject): Observed => {
    const p = plan(j, { pods: [] }, NOW);
    const d = desiredChildren(j);
    return { pods: p.create.filter((o) => o.kind === "Pod") as V1Pod[], configMap: d.configMap, service: d.service, pvc: d.pvc };
  };

  test("a new job: every child is created, phase Created", () => {
    const p = plan(job({ rollout: { replicas: 2 } }), { pods: [] }, NOW);
    assert.deepEqual(p.create.map((o) => `${o.kind}/${o.metadata?.name}`).sort(), [
      "ConfigMap/j-spec",
      "PersistentVolumeClaim/j-checkpoints",
      "Pod/j-learner-0",
      "Pod/j-rollout-0",
      "Pod/j-rollout-1",
      "Service/j-learner",
    ]);
    assert.equal(p.status.phase, "Created");
    assert.deepEqual(p.status.rollout, { ready: 0, desired: 2 });
  });

  test("re-planning the observed state creates nothing (idempotent)", () => {
    const j = job({ rollout: { replicas: 2 } });
    const obs = all(j);
    const p = plan(j, obs, NOW);
    assert.deepEqual(p.create, []);
    assert.deepEqual(p.deletePods, []);
  });

  test("learner failure: next incarnation until backoffLimit, then Failed and cleanup", () => {
    const j = job({ rollout: { replicas: 1 }, runPolicy: { backoffLimit: 1 } });
    const obs = all(j);
    obs.pods = obs.pods.map((p) => (p.metadata?.name === "j-learner-0" ? pod(p, "Failed") : running(p)));
    const p1 = plan(j, obs, NOW);
    assert.deepEqual(
      p1.create.map((o) => o.metadata?.name),
      ["j-learner-1"],
    );
    assert.equal(p1.status.phase, "Restarting");
    assert.equal(p1.status.restarts, 1);
    assert.ok(p1.events.some((e) => e.reason === "LearnerFailed" && e.type === "Warning"));
    // The failed incarnation is kept; the new one fails too: backoff exhausted.
    j.status = p1.status;
    obs.pods.push(pod(desiredLearnerPod(j, 1), "Failed"));
    const p2 = plan(j, obs, NOW);
    assert.equal(p2.status.phase, "Failed");
    assert.deepEqual(p2.create, []);
    assert.deepEqual(p2.deletePods, ["j-rollout-0"], "cleanPodPolicy Running deletes the running rollout pod");
    assert.ok(p2.status.completionTime);
  });

  test("a stale status does not reuse an old learner index", () => {
    const j = job({ rollout: { replicas: 0 } }, { restarts: 0 });
    const obs = all(j);
    obs.pods = [pod(desiredLearnerPod(j, 0), "Failed"), pod(desiredLearnerPod(j, 1), "Pending")];
    const p = plan(j, obs, NOW);
    assert.deepEqual(p.create, []);
    assert.equal(p.status.restarts, 1);
  });

  test("failed rollout pod is deleted (then recreated under the same name); surplus pods are deleted", () => {
    const j = job({ rollout: { replicas: 1 } });
    const obs = all(j);
    obs.pods = obs.pods.map((p) => (p.metadata?.name === "j-rollout-0" ? pod(p, "Failed") : p));
    obs.pods.push(desiredRolloutPod(j, 5));
    const p = plan(j, obs, NOW);
    assert.deepEqual(p.deletePods.sort(), ["j-rollout-0", "j-rollout-5"]);
    assert.ok(p.events.some((e) => e.reason === "RolloutPodReplaced"));
  });

  test("a rollout pod that exited 0 (the learner marked the job done) is finished, not replaced", () => {
    const j = job({ rollout: { replicas: 1 } });
    const obs = all(j);
    obs.pods = obs.pods.map((p) => (p.metadata?.name === "j-rollout-0" ? pod(p, "Succeeded") : p));
    const p = plan(j, obs, NOW);
    assert.deepEqual(p.deletePods, []);
    assert.deepEqual(p.create, []);
    assert.ok(!p.events.some((e) => e.reason === "RolloutPodReplaced"));
  });

  test("suspend deletes every pod, keeps the rest; resume flips the condition", () => {
    const j = job({ rollout: { replicas: 1 }, runPolicy: { suspend: true } });
    const obs = all(job({ rollout: { replicas: 1 } }));
    const p = plan(j, obs, NOW);
    assert.deepEqual(p.deletePods.sort(), ["j-learner-0", "j-rollout-0"]);
    assert.equal(p.status.phase, "Suspended");
    const resumed = job({ rollout: { replicas: 1 } }, p.status);
    const r = plan(resumed, { ...obs, pods: [] }, NOW);
    assert.equal(r.create.filter((o) => o.kind === "Pod").length, 2);
    assert.equal(r.status.conditions?.find((c) => c.type === "Suspended")?.status, "False");
  });

  test("activeDeadlineSeconds: requeue until the deadline, then Failed", () => {
    const j = job({ runPolicy: { activeDeadlineSeconds: 60 } }, { startTime: "2026-01-01T00:00:00Z" });
    const obs = all(j);
    assert.equal(plan(j, obs, new Date("2026-01-01T00:00:30Z")).requeueAfterMs, 30_000);
    const late = plan(j, obs, new Date("2026-01-01T00:01:00Z"));
    assert.equal(late.status.phase, "Failed");
    assert.equal(late.status.conditions?.find((c) => c.type === "Failed")?.reason, "DeadlineExceeded");
  });

  test("ttlSecondsAfterFinished: requeue, then delete the job", () => {
    const done = setCondition([], "Succeeded", "True", "LearnerSucceeded", "", NOW).conditions;
    const j = job({ runPolicy: { ttlSecondsAfterFinished: 10 } }, { conditions: done, completionTime: "2026-01-01T00:00:00Z" });
    assert.equal(plan(j, { pods: [] }, new Date("2026-01-01T00:00:04Z")).requeueAfterMs, 6000);
    assert.equal(plan(j, { pods: [] }, new Date("2026-01-01T00:00:10Z")).deleteJob, true);
  });

  test("learner success → Succeeded; progress from the termination message", () => {
    const j = job({ rollout: { replicas: 0 }, runPolicy: { cleanPodPolicy: "None" } });
    const obs = all(j);
    obs.pods = [
      pod(obs.pods[0], "Succeeded", {
        containerStatuses: [
          {
            name: "learner",
            image: "",
            imageID: "",
            ready: false,
            restartCount: 0,
            state: { terminated: { exitCode: 0, message: '{"update":30,"successRate":0.8}' } },
          },
        ],
      }),
    ];
    const p = plan(j, obs, NOW);
    assert.equal(p.status.phase, "Succeeded");
    assert.equal(p.status.update, 30);
    assert.equal(p.status.successRate, 0.8);
    assert.deepEqual(p.deletePods, []);
  });

  test("termination-message values the status schema would refuse are ignored", () => {
    const j = job({ rollout: { replicas: 0 }, runPolicy: { cleanPodPolicy: "None" } });
    for (const message of ['{"update":-1,"successRate":7}', '{"update":1.5,"successRate":"high"}', '{"update":"30","successRate":-0.1}']) {
      const obs = all(j);
      obs.pods = [
        pod(obs.pods[0], "Succeeded", {
          containerStatuses: [{ name: "learner", image: "", imageID: "", ready: false, restartCount: 0, state: { terminated: { exitCode: 0, message } } }],
        }),
      ];
      const p = plan(j, obs, NOW);
      assert.equal(p.status.update, undefined, message);
      assert.equal(p.status.successRate, undefined, message);
    }
  });
});

describe("names and conditions", () => {
  test("long names are shortened deterministically; services start with a letter", () => {
    const long = "a".repeat(100);
    assert.equal(fit(long, 63).length, 63);
    assert.equal(fit(long, 63), fit(long, 63));
    assert.notEqual(fit(long, 63), fit(`${long}b`, 63));
    assert.match(serviceName("1job"), /^[a-z]/);
    assert.equal(podIndex("j", "learner", learnerPodName("j", 12)), 12);
    assert.equal(podIndex("j", "learner", "j-learner-x"), undefined);
  });

  test("lastTransitionTime moves only on a flip; phase follows the most significant condition", () => {
    const a = setCondition([], "Running", "True", "R", "m", NOW);
    const b = setCondition(a.conditions, "Running", "True", "R", "m2", new Date("2026-02-01T00:00:00Z"));
    assert.equal(a.changed, true);
    assert.equal(b.changed, false);
    assert.equal(b.conditions[0].lastTransitionTime, a.conditions[0].lastTransitionTime);
    assert.equal(phaseOf(setCondition(b.conditions, "Failed", "True", "F", "", NOW).conditions), "Failed");
  });
});

describe("work queue", () => {
  test("de-duplicates, never hands one key to two workers, re-queues keys added while processing", async () => {
    const q = new WorkQueue();
    q.add("a");
    q.add("a");
    q.add("b");
    assert.equal(q.length, 2);
    const k = await q.get();
    assert.equal(k, "a");
    q.add("a"); // while processing: held back
    assert.equal(await q.get(), "b");
    q.done("b");
    assert.equal(q.length, 0);
    q.done("a");
    assert.equal(q.length, 1);
    assert.equal(await q.get(), "a");
    q.shutdown();
    assert.equal(await q.get(), undefined);
  });

  test("rate-limited adds back off exponentially per key; forget resets", () => {
    const q = new WorkQueue({ baseDelayMs: 10 });
    assert.equal(q.addRateLimited("x"), 10);
    assert.equal(q.addRateLimited("x"), 20);
    assert.equal(q.addRateLimited("x"), 40);
    q.forget("x");
    assert.equal(q.addRateLimited("x"), 10);
    q.shutdown();
  });
});
