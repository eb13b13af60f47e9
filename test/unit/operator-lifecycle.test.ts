// The operator's production-shape pure parts: the finalizer's plan and status, pod health from pod status,
// the RL status fields from the learner's progress.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import { parseJob } from "../../crds/job-spec.ts";
import { natsJobRef } from "../../core/nats-names.ts";
import type { LearnerProgress } from "../../runtime/nats/runtime-state.ts";
import type { ValidationError } from "../../crds/schema.ts";
import { MAIN_CONTAINERS, RESERVED_ENV_PREFIX, RESERVED_MOUNT_PATHS, RESERVED_VOLUMES } from "../../crds/pod-template.ts";
import { desiredLearnerPod, desiredRolloutPod, type JobObject, specHash } from "../../operator/desired.ts";
import { cleanupStatus, FINALIZER, hasFinalizer, planFinalize, SKIP_NATS_CLEANUP_ANNOTATION } from "../../operator/finalizer.ts";
import { jobStreams } from "../../operator/nats-cleanup.ts";
import { plan } from "../../operator/plan.ts";
import { podProblem } from "../../operator/pod-health.ts";
import { checkProgress } from "../../operator/progress-check.ts";
import { displayFields } from "../../operator/status-fields.ts";

const NOW = new Date("2026-01-01T00:00:00Z");

function job(meta: Partial<JobObject["metadata"]> = {}, spec: Record<string, unknown> = {}): JobObject {
  const j = parseJob({ apiVersion: "steppo.dev/v1alpha1", kind: "StepPOJob", metadata: { name: "j", namespace: "ns" }, spec }, "test") as JobObject;
  Object.assign(j.metadata, { uid: "uid-1", ...meta });
  return j;
}

const pod = (name: string, deleting = false): V1Pod => ({ metadata: { name, ...(deleting ? { deletionTimestamp: NOW } : {}) } });

describe("finalizer", () => {
  test("pods first: live ones deleted, terminating ones waited for; then NATS unless skipped", () => {
    const j = job({ finalizers: [FINALIZER], deletionTimestamp: NOW.toISOString() });
    assert.ok(hasFinalizer(j));
    assert.deepEqual(planFinalize(j, [pod("j-learner-0"), pod("j-rollout-0", true)]), { deletePods: ["j-learner-0"], podsLeft: 2, cleanNats: true });
    assert.deepEqual(planFinalize(j, []), { deletePods: [], podsLeft: 0, cleanNats: true });
    const skip = job({ finalizers: [FINALIZER], annotations: { [SKIP_NATS_CLEANUP_ANNOTATION]: "true" } });
    assert.equal(planFinalize(skip, []).cleanNats, false);
    assert.equal(hasFinalizer(job()), false);
  });

  test("a NATS failure sets CleanupBlocked with the escape hatch, one Event per transition; recovery clears it", () => {
    const j = job();
    const blocked = cleanupStatus(j, "nats://n:4222: TIMEOUT", NOW);
    const c = blocked.status.conditions?.find((x) => x.type === "CleanupBlocked");
    assert.equal(c?.status, "True");
    assert.equal(c?.reason, "NatsUnavailable");
    assert.match(c?.message ?? "", /TIMEOUT.*steppo\.dev\/skip-nats-cleanup=true/);
    assert.deepEqual(
      blocked.events.map((e) => [e.type, e.reason]),
      [["Warning", "NatsCleanupFailed"]],
    );
    j.status = blocked.status;
    assert.deepEqual(cleanupStatus(j, "nats://n:4222: TIMEOUT", NOW).events, [], "no second Event while still blocked");
    const ok = cleanupStatus(j, undefined, NOW);
    assert.equal(ok.status.conditions?.find((x) => x.type === "CleanupBlocked")?.status, "False");
    assert.deepEqual(cleanupStatus(job(), undefined, NOW).status, {}, "never blocked: status untouched");
  });

  test("the streams deleted: trajectories, dead letters, KV bucket, object store", () => {
    assert.deepEqual(jobStreams(natsJobRef({ name: "j", namespace: "ns" })), [
      "steppo-ns_j-traj",
      "steppo-ns_j-dlq",
      "KV_steppo-ns_j",
      "OBJ_steppo-ns_j-weights",
    ]);
  });
});

const waiting = (name: string, reason: string, message = `${reason} message`, extra: Partial<V1Pod["status"]> = {}): V1Pod => ({
  metadata: { name },
  status: {
    phase: "Pending",
    containerStatuses: [{ name: "learner", image: "x", imageID: "", ready: false, restartCount: 0, state: { waiting: { reason, message } } }],
    ...extra,
  },
});

describe("pod health", () => {
  test("image pull, crash loop (with its OOM cause), unschedulable; a healthy or terminating pod is no problem", () => {
    assert.deepEqual(podProblem(waiting("a", "ImagePullBackOff", 'Back-off pulling image "nope"')), {
      pod: "a",
      reason: "ImagePullBackOff",
      message: 'container learner: Back-off pulling image "nope"',
    });
    assert.equal(podProblem(waiting("a", "ErrImagePull"))?.reason, "ErrImagePull");
    const crash = waiting("c", "CrashLoopBackOff", "back-off 10s");
    crash.status!.containerStatuses![0].lastState = { terminated: { exitCode: 137, reason: "OOMKilled" } };
    assert.equal(podProblem(crash)?.reason, "OOMKilled");
    assert.match(podProblem(crash)?.message ?? "", /back-off 10s \(last exit: OOMKilled, code 137\)/);
    const unsched: V1Pod = {
      metadata: { name: "u" },
      status: { phase: "Pending", conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message: "0/3 nodes have nvidia.com/gpu" }] },
    };
    assert.deepEqual(podProblem(unsched), { pod: "u", reason: "Unschedulable", message: "0/3 nodes have nvidia.com/gpu" });
    assert.equal(podProblem(waiting("ok", "ContainerCreating")), undefined);
    assert.equal(podProblem({ metadata: { name: "p" }, status: { phase: "Pending" } }), undefined);
    assert.equal(podProblem({ ...waiting("d", "ImagePullBackOff"), metadata: { name: "d", deletionTimestamp: NOW } }), undefined);
  });

  test("the planner: PodsHealthy=False with the reason and a Warning Event once; True again when the pod starts", () => {
    const j = job();
    const l0 = waiting("j-learner-0", "ImagePullBackOff", 'Back-off pulling image "ghcr.io/x/nope"');
    l0.metadata = { ...desiredLearnerPod(j, 0).metadata, ...l0.metadata };
    const p = plan(j, { pods: [l0] }, NOW);
    const c = p.status.conditions?.find((x) => x.type === "PodsHealthy");
    assert.equal(c?.status, "False");
    assert.equal(c?.reason, "ImagePullBackOff");
    assert.match(c?.message ?? "", /pod j-learner-0: ImagePullBackOff: container learner: Back-off pulling image/);
    assert.deepEqual(
      p.events.filter((e) => e.reason === "PodsUnhealthy").map((e) => e.type),
      ["Warning"],
    );
    j.status = p.status;
    assert.equal(plan(j, { pods: [l0] }, NOW).events.filter((e) => e.reason === "PodsUnhealthy").length, 0, "told once");
    const started: V1Pod = { metadata: l0.metadata, status: { phase: "Running", conditions: [{ type: "Ready", status: "True" }] } };
    assert.equal(plan(j, { pods: [started] }, NOW).status.conditions?.find((x) => x.type === "PodsHealthy")?.status, "True");
    assert.equal(
      plan(job(), { pods: [started] }, NOW).status.conditions?.find((x) => x.type === "PodsHealthy"),
      undefined,
      "never stuck: no condition",
    );
  });
});

describe("RL status fields", () => {
  const progress: LearnerProgress = {
    phase: "training",
    update: 12,
    updates: 30,
    envSteps: 4800,
    trainSuccess: 0.41666,
    testSuccess: 0.5,
    lastCheckpoint: { update: 10, path: "ckpt-10", at: "2026-01-01T00:00:00Z" },
    demand: { waitSecondsLastUpdate: 0, waitSecondsPerUpdate: 0, backlog: 0, staleDrops: 0, workers: 2 },
    trajectories: { published: 0, consumed: 0, stale: 0, deadLettered: 0, duplicates: 0, inFlight: 0 },
    policyLag: { mean: 0.43751, max: 2 },
    rates: { envStepsPerSecond: 123.4567, episodesPerSecond: 9.87654 },
    updatedAt: "2026-01-01T00:00:00Z",
  };

  test("from the learner's progress: version, lag, throughput, train and held-out success, the UPDATE and READY strings", () => {
    assert.equal(checkProgress(progress).ok, true);
    const p = plan(job({}, { training: { updates: 30 }, rollout: { replicas: 2 } }), { pods: [], progress }, NOW);
    assert.deepEqual(p.status.training, {
      learnerPhase: "training",
      policyVersion: 12,
      updates: 30,
      envSteps: 4800,
      envStepsPerSecond: 123.457,
      episodesPerSecond: 9.877,
      policyLag: { mean: 0.438, max: 2 },
      trainSuccess: 0.417,
      heldOutSuccess: 0.5,
      updatedAt: "2026-01-01T00:00:00Z",
    });
    assert.equal(p.status.progress, "12/30");
    assert.equal(p.status.ready, "0/2");
    assert.equal(p.status.successRate, 0.5);
    assert.equal(p.status.lastCheckpoint?.update, 10);
    assert.deepEqual(displayFields({ update: 3, rollout: { ready: 1, desired: 4 } }, 50), { progress: "3/50", ready: "1/4" });
  });

  test("a bad lag or rate refuses the record (it would break the status patch)", () => {
    assert.match((checkProgress({ ...progress, policyLag: { mean: -1, max: 0 } }) as { problem: string }).problem, /policyLag\.mean/);
    assert.match(
      (checkProgress({ ...progress, rates: { envStepsPerSecond: "fast", episodesPerSecond: 1 } }) as { problem: string }).problem,
      /rates\.envStepsPerSecond/,
    );
  });
});

describe("pod templates", () => {
  const template = {
    metadata: { labels: { team: "rl" }, annotations: { "prometheus.io/scrape": "true" } },
    spec: {
      env: [{ name: "HF_HOME", value: "/cache" }],
      volumes: [{ name: "cache", emptyDir: {} }],
      volumeMounts: [{ name: "cache", mountPath: "/cache" }],
      imagePullSecrets: [{ name: "regcred" }],
      serviceAccountName: "trainer",
      nodeSelector: { pool: "gpu" },
      affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [] } } },
      tolerations: [{ key: "gpu", operator: "Exists" }],
      priorityClassName: "high",
      containers: [{ name: "log-shipper", image: "fluent-bit:3" }],
    },
  };

  test("merged over the generated pod: additions only, the operator's fields kept", () => {
    const j = job({ labels: { "kueue.x-k8s.io/queue-name": "team-a" } }, { learner: { template, nodeSelector: { zone: "a" } } });
    const plain = desiredLearnerPod(job(), 0);
    const p = desiredLearnerPod(j, 0);
    assert.equal(p.metadata?.labels?.team, "rl");
    assert.equal(p.metadata?.labels?.["kueue.x-k8s.io/queue-name"], "team-a");
    assert.equal(p.metadata?.labels?.["steppo.dev/role"], "learner");
    assert.equal(p.metadata?.annotations?.["prometheus.io/scrape"], "true");
    const [main, side] = p.spec!.containers;
    assert.deepEqual(main.command, plain.spec!.containers[0].command);
    assert.deepEqual(main.env?.slice(0, -1), plain.spec!.containers[0].env);
    assert.deepEqual(main.env?.at(-1), { name: "HF_HOME", value: "/cache" });
    assert.deepEqual(main.volumeMounts?.at(-1), { name: "cache", mountPath: "/cache" });
    assert.equal(side.name, "log-shipper");
    assert.deepEqual(p.spec?.volumes?.at(-1), { name: "cache", emptyDir: {} });
    assert.deepEqual(p.spec?.nodeSelector, { zone: "a", pool: "gpu" });
    assert.equal(p.spec?.serviceAccountName, "trainer");
    assert.equal(p.spec?.automountServiceAccountToken, false);
    assert.equal(p.spec?.priorityClassName, "high");
    assert.deepEqual(p.spec?.imagePullSecrets, [{ name: "regcred" }]);
    assert.ok(p.spec?.affinity?.nodeAffinity);
    assert.deepEqual(p.spec?.tolerations, [{ key: "gpu", operator: "Exists" }]);
    assert.notEqual(specHash(j), specHash(job()), "a template change replaces the pods");
    assert.equal(desiredRolloutPod(j, 0).metadata?.labels?.team, undefined, "the learner's template only");
    assert.equal(desiredRolloutPod(j, 0).metadata?.labels?.["kueue.x-k8s.io/queue-name"], "team-a");
  });

  test("the reserved names are exactly what the operator uses", () => {
    const j = job({}, { nats: { credentialsSecret: "nats" } });
    for (const p of [desiredLearnerPod(j, 0), desiredRolloutPod(j, 0)]) {
      for (const v of p.spec?.volumes ?? []) assert.ok((RESERVED_VOLUMES as readonly string[]).includes(v.name), v.name);
      for (const m of p.spec?.containers[0].volumeMounts ?? []) assert.ok((RESERVED_MOUNT_PATHS as readonly string[]).includes(m.mountPath), m.mountPath);
      for (const e of p.spec?.containers[0].env ?? []) assert.ok(e.name.startsWith(RESERVED_ENV_PREFIX), e.name);
      assert.ok((MAIN_CONTAINERS as readonly string[]).includes(p.spec!.containers[0].name));
    }
  });

  test("spec.model.volume: mounted read-only at spec.model.source in the learner's and every rollout pod's main container", () => {
    const model = { source: "/models/qwen", volume: { persistentVolumeClaim: { claimName: "models" }, subPath: "qwen2.5-0.5b" } };
    const j = job({}, { model, rollout: { replicas: 2 }, learner: { template } });
    const mount = { name: "model", mountPath: "/models/qwen", readOnly: true, subPath: "qwen2.5-0.5b" };
    for (const p of [desiredLearnerPod(j, 0), desiredRolloutPod(j, 0), desiredRolloutPod(j, 1)]) {
      const [main, ...sidecars] = p.spec!.containers;
      assert.deepEqual(
        main.volumeMounts?.filter((m) => m.name === "model" || m.mountPath === model.source),
        [mount],
        p.metadata?.name,
      );
      assert.deepEqual(
        p.spec?.volumes?.filter((v) => v.name === "model"),
        [{ name: "model", persistentVolumeClaim: { claimName: "models", readOnly: true } }],
      );
      for (const c of sidecars) assert.equal(c.volumeMounts, undefined, "a sidecar mounts what its own template says");
    }
    // The learner's template is merged beside it, as without the volume.
    assert.deepEqual(desiredLearnerPod(j, 0).spec?.containers[0].volumeMounts?.at(-1), { name: "cache", mountPath: "/cache" });
    assert.notEqual(
      specHash(j),
      specHash(job({}, { model: { source: model.source }, rollout: { replicas: 2 }, learner: { template } })),
      "a new volume replaces the pods",
    );

    const tiny = job({}, { model: { source: "/models/tiny", volume: { configMap: { name: "tiny-model" } } } });
    for (const p of [desiredLearnerPod(tiny, 0), desiredRolloutPod(tiny, 0)]) {
      assert.deepEqual(
        p.spec?.containers[0].volumeMounts?.find((m) => m.name === "model"),
        { name: "model", mountPath: "/models/tiny", readOnly: true },
      );
      assert.deepEqual(
        p.spec?.volumes?.find((v) => v.name === "model"),
        { name: "model", configMap: { name: "tiny-model" } },
      );
    }
  });

  test("without spec.model.volume the operator mounts no model: the templates do", () => {
    const own = { spec: { volumes: [{ name: "model", emptyDir: {} }], volumeMounts: [{ name: "model", mountPath: "/models/qwen", readOnly: true }] } };
    const j = job({}, { model: { source: "/models/qwen" }, learner: { template: own } });
    const learner = desiredLearnerPod(j, 0);
    assert.deepEqual(
      learner.spec?.volumes?.filter((v) => v.name === "model"),
      [{ name: "model", emptyDir: {} }],
      "the template's, once",
    );
    assert.deepEqual(
      learner.spec?.containers[0].volumeMounts?.filter((m) => m.mountPath === "/models/qwen"),
      [own.spec.volumeMounts[0]],
    );
    const rollout = desiredRolloutPod(j, 0);
    assert.equal(
      rollout.spec?.volumes?.some((v) => v.name === "model"),
      false,
    );
    assert.equal(
      rollout.spec?.containers[0].volumeMounts?.some((m) => m.mountPath === "/models/qwen"),
      false,
    );
  });

  test("a template declaring the model's volume name or a mount at its path is refused beside spec.model.volume, never merged over it", () => {
    const model = { source: "/models/qwen", volume: { persistentVolumeClaim: { claimName: "models" } } };
    const refusedWith = (spec: Record<string, unknown>) => {
      try {
        parseJob({ apiVersion: "steppo.dev/v1alpha1", kind: "StepPOJob", metadata: { name: "j" }, spec: { model, ...spec } }, "test");
        return [];
      } catch (err) {
        return (err as ValidationError).errors.map((e) => `${e.path}: ${e.message}`);
      }
    };
    assert.match(
      refusedWith({ learner: { template: { spec: { volumes: [{ name: "model", emptyDir: {} }] } } } }).join(),
      /^spec\.learner\.template\.spec\.volumes: the volume name model is the operator's when spec\.model\.volume is set/,
    );
    assert.match(
      refusedWith({ rollout: { template: { spec: { volumeMounts: [{ name: "hf", mountPath: "/models/qwen/" }] } } } }).join(),
      /^spec\.rollout\.template\.spec\.volumeMounts: .*a template mount may neither use that volume nor be at or inside that path$/,
    );
  });

  test("the loader refuses what would break the operator's pod", () => {
    const refused = (spec: Record<string, unknown>) => {
      try {
        parseJob({ apiVersion: "steppo.dev/v1alpha1", kind: "StepPOJob", metadata: { name: "j" }, spec }, "test");
        return [];
      } catch (err) {
        return (err as ValidationError).errors.map((e) => `${e.path}: ${e.message}`);
      }
    };
    const t = (spec: Record<string, unknown>, metadata?: Record<string, unknown>) => ({ learner: { template: { spec, ...(metadata ? { metadata } : {}) } } });
    assert.match(
      refused(t({ env: [{ name: "STEPPO_NATS_URL", value: "x" }] })).join(),
      /spec\.learner\.template\.spec\.env\[0\]\.name: env vars named STEPPO_\*/,
    );
    assert.match(refused(t({ volumes: [{ name: "checkpoints", emptyDir: {} }] })).join(), /volumes\[0\]\.name: volume names/);
    assert.match(refused(t({ volumeMounts: [{ name: "x", mountPath: "/var/lib/steppo/" }] })).join(), /volumeMounts\[0\]\.mountPath: mount paths/);
    assert.match(
      refused({ rollout: { template: { spec: { containers: [{ name: "rollout", command: ["sh"] }] } } } }).join(),
      /rollout\.template\.spec\.containers\[0\]\.name: container names/,
    );
    assert.match(refused(t({}, { labels: { "steppo.dev/role": "x" } })).join(), /template\.metadata\.labels: labels steppo\.dev\/\*/);
    assert.match(refused(t({ command: ["sh"] })).join(), /template\.spec\.command: unknown field/);
    assert.deepEqual(refused(t(template.spec, template.metadata)), []);
  });
});
