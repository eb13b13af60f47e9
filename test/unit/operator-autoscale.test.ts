// The autoscaler's pure decision function, its place in the plan, and spec-hash driven pod replacement.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import { parseJob } from "../../crds/job-spec.ts";
import type { LearnerProgress } from "../../runtime/nats/runtime-state.ts";
import { type PreviousAutoscalerStatus, autoscale, scaleBounds } from "../../operator/autoscaler.ts";
import { desiredChildren, desiredLearnerPod, desiredRolloutPod, type JobObject, specHash } from "../../operator/desired.ts";
import { plan } from "../../operator/plan.ts";

const NOW = new Date("2026-01-01T00:10:00Z");

function job(rollout: Record<string, unknown>, extra: Record<string, unknown> = {}, status?: JobObject["status"]): JobObject {
  const j = parseJob(
    { apiVersion: "steppo.dev/v1alpha1", kind: "StepPOJob", metadata: { name: "j", namespace: "ns" }, spec: { rollout, ...extra } },
    "test",
  ) as JobObject;
  j.metadata.uid = "uid-1";
  j.metadata.generation = 1;
  if (status) j.status = status;
  return j;
}

function progress(demand: Partial<LearnerProgress["demand"]>, update = 5, phase: LearnerProgress["phase"] = "training"): LearnerProgress {
  return {
    phase,
    update,
    updates: 100,
    envSteps: 1000,
    trainSuccess: 0.3,
    testSuccess: 0.4,
    lastCheckpoint: null,
    demand: { waitSecondsLastUpdate: 0, waitSecondsPerUpdate: 0, backlog: 0, staleDrops: 0, workers: 2, ...demand },
    trajectories: { published: 0, consumed: 0, stale: 0, deadLettered: 0, duplicates: 0, inFlight: 0 },
    updatedAt: NOW.toISOString(),
  };
}

const AUTO = { enabled: true, stabilizationSeconds: 60, maxStep: 2 };

describe("autoscale decision", () => {
  const spec = (replicas: number, auto: Record<string, unknown> = {}) =>
    job({ replicas, minReplicas: 1, maxReplicas: 8, episodesPerUpdate: 16, autoscale: { ...AUTO, ...auto } }).spec.rollout;

  test("a starved learner scales up by at most maxStep", () => {
    const s = autoscale(spec(2), progress({ waitSecondsLastUpdate: 4 }), undefined, NOW);
    assert.equal(s?.decision?.action, "up");
    assert.equal(s?.decision?.to, 4);
    assert.match(s?.decision?.reason ?? "", /waited 4\.00 s/);
    assert.equal(s?.lastScaleTime, "2026-01-01T00:10:00Z");
  });

  test("never above maxReplicas", () => {
    const s = autoscale(spec(7), progress({ waitSecondsLastUpdate: 4 }), undefined, NOW);
    assert.equal(s?.decision?.to, 8);
    const at = autoscale(spec(8), progress({ waitSecondsLastUpdate: 4 }), undefined, NOW);
    assert.equal(at?.decision?.action, "hold");
    assert.equal(at?.decision?.to, 8);
    assert.match(at?.decision?.reason ?? "", /at maxReplicas 8/);
    assert.equal(at?.lastScaleTime, undefined, "a hold does not start a stabilisation window");
  });

  test("a backlog of more than backlogUpdates batches scales down, never below minReplicas", () => {
    const s = autoscale(spec(4), progress({ backlog: 40 }), undefined, NOW);
    assert.equal(s?.decision?.action, "down");
    assert.equal(s?.decision?.to, 2);
    assert.match(s?.decision?.reason ?? "", /backlog 40 > 2 × 16/);
    const low = autoscale(spec(1), progress({ backlog: 40 }), undefined, NOW);
    assert.equal(low?.decision?.to, 1);
    assert.equal(low?.decision?.action, "hold");
  });

  test("stale drops since the last change scale down; old ones do not", () => {
    const prev: PreviousAutoscalerStatus = {
      staleDropsAtLastScale: 10,
      signals: { update: 4, waitSecondsLastUpdate: 0, backlog: 0, staleDrops: 10, workers: 4 },
    };
    assert.equal(autoscale(spec(4), progress({ staleDrops: 10 }), prev, NOW)?.decision?.action, "hold");
    const s = autoscale(spec(4), progress({ staleDrops: 13 }), prev, NOW);
    assert.equal(s?.decision?.action, "down");
    assert.match(s?.decision?.reason ?? "", /3 trajectories dropped as stale/);
    assert.equal(s?.staleDropsAtLastScale, 13, "the baseline moves with the change");
  });

  test("no change within the stabilisation window", () => {
    const prev: PreviousAutoscalerStatus = { lastScaleTime: new Date(NOW.getTime() - 30_000).toISOString() };
    const s = autoscale(spec(2), progress({ waitSecondsLastUpdate: 4 }), prev, NOW);
    assert.equal(s?.decision?.action, "hold");
    assert.match(s?.decision?.reason ?? "", /stabilizing: last change 30 s ago/);
    const later: PreviousAutoscalerStatus = { lastScaleTime: new Date(NOW.getTime() - 61_000).toISOString() };
    assert.equal(autoscale(spec(2), progress({ waitSecondsLastUpdate: 4 }), later, NOW)?.decision?.to, 4);
  });

  test("decides once per learner update, and only while it trains", () => {
    const first = autoscale(spec(2), progress({ waitSecondsLastUpdate: 4 }, 5), undefined, NOW);
    assert.ok(first);
    assert.equal(autoscale(spec(4, { stabilizationSeconds: 0 }), progress({ waitSecondsLastUpdate: 4 }, 5), first, NOW), undefined);
    assert.equal(autoscale(spec(2), progress({ waitSecondsLastUpdate: 4 }, 5, "warmup"), undefined, NOW), undefined);
  });

  test("balanced signals hold; replicas outside the bounds come back at once", () => {
    assert.equal(autoscale(spec(3), progress({ waitSecondsLastUpdate: 0.2, backlog: 5 }), undefined, NOW)?.decision?.action, "hold");
    const r = spec(3);
    r.replicas = 12; // e.g. bounds tightened after a manual scale
    const prev: PreviousAutoscalerStatus = { lastScaleTime: NOW.toISOString() };
    assert.deepEqual(
      { action: autoscale(r, progress({}), prev, NOW)?.decision?.action, to: autoscale(r, progress({}), prev, NOW)?.decision?.to },
      { action: "down", to: 8 },
    );
  });

  test("bounds: minReplicas defaults to 1", () => {
    assert.deepEqual(scaleBounds(job({ replicas: 3, maxReplicas: 6, autoscale: AUTO }).spec.rollout), { min: 1, max: 6 });
  });

  test("the spec refuses autoscaling without maxReplicas, naming the field", () => {
    assert.throws(() => job({ replicas: 2, autoscale: { enabled: true } }), /maxReplicas/);
  });
});

describe("autoscale in the plan", () => {
  test("a decision to scale becomes a guarded scale write, an Event and status", () => {
    const j = job({ replicas: 2, maxReplicas: 6, autoscale: AUTO });
    const p = plan(j, { pods: [], progress: progress({ waitSecondsLastUpdate: 3 }) }, NOW);
    assert.deepEqual(p.scale, { from: 2, to: 4 });
    assert.equal(p.status.autoscaler?.decision?.action, "up");
    assert.ok(p.events.some((e) => e.reason === "ScaledUp" && /2 → 4/.test(e.message)));
    // The pods follow the spec, not the decision: the spec change triggers the next reconcile.
    assert.equal(p.create.filter((o) => o.metadata?.name?.includes("rollout")).length, 2);
  });

  test("autoscale off: signals are ignored", () => {
    const p = plan(job({ replicas: 2 }), { pods: [], progress: progress({ waitSecondsLastUpdate: 30 }) }, NOW);
    assert.equal(p.scale, undefined);
    assert.equal(p.status.autoscaler, undefined);
  });
});

describe("spec changes replace pods", () => {
  const runningPod = (p: V1Pod): V1Pod => ({ ...p, status: { phase: "Running", conditions: [{ type: "Ready", status: "True" }] } });
  const observedFor = (j: JobObject, pods: V1Pod[]) => {
    const d = desiredChildren(j);
    return { pods, configMap: d.configMap, service: d.service, pvc: d.pvc };
  };

  test("the hash ignores scaling and runPolicy but not the algorithm or the image", () => {
    const base = job({ replicas: 2 });
    assert.equal(specHash(base), specHash(job({ replicas: 5, maxReplicas: 9 }, { runPolicy: { suspend: true, backoffLimit: 9 } })));
    assert.notEqual(specHash(base), specHash(job({ replicas: 2 }, { algorithm: { learningRate: 1e-5 } })));
    assert.notEqual(specHash(base), specHash(job({ replicas: 2, image: "other:1" })));
  });

  test("pods of an older spec are deleted; pods of the current one stay", () => {
    const old = job({ replicas: 2 });
    const pods = [desiredLearnerPod(old, 0), desiredRolloutPod(old, 0), desiredRolloutPod(old, 1)].map(runningPod);
    const same = plan(old, observedFor(old, pods), NOW);
    assert.deepEqual(same.deletePods, []);

    const changed = job({ replicas: 2 }, { algorithm: { learningRate: 1e-5 } });
    const p = plan(changed, observedFor(changed, pods), NOW);
    assert.deepEqual(p.deletePods.sort(), ["j-learner-0", "j-rollout-0", "j-rollout-1"]);
    assert.ok(p.events.some((e) => e.reason === "SpecChanged"));
    assert.equal(p.status.restarts, 0, "a spec change is not a failure");

    // Scaling alone replaces nobody.
    const scaled = job({ replicas: 3 });
    assert.deepEqual(plan(scaled, observedFor(scaled, pods), NOW).deletePods, []);
  });

  test("a terminating learner that exits 0 does not finish the job; it comes back once gone", () => {
    const j = job({ replicas: 1 });
    const learner: V1Pod = { ...desiredLearnerPod(j, 0), status: { phase: "Succeeded" } };
    learner.metadata = { ...learner.metadata, deletionTimestamp: NOW };
    const p = plan(j, observedFor(j, [learner]), NOW);
    assert.notEqual(p.status.phase, "Succeeded");
    assert.equal(p.create.filter((o) => o.kind === "Pod" && o.metadata?.name === "j-learner-0").length, 0);
    const gone = plan(j, observedFor(j, []), NOW);
    assert.ok(gone.create.some((o) => o.metadata?.name === "j-learner-0"));
  });
});
