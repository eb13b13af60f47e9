// The planner's sub-steps (operator/plan/*.ts), each called directly: one concern at a time, with the
// inputs it declares and nothing else. The whole plan() is covered by operator-plan.test.ts and the others.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import type { StepPOJobCondition } from "../../crds/steppojob-status.ts";
import { job } from "../support/plan-fixtures.ts";
import type { LearnerProgress } from "../../runtime/nats/runtime-state.ts";
import { DEFAULTS, desiredChildren, desiredLearnerPod, desiredRolloutPod } from "../../operator/desired.ts";
import { childrenCreated, sharedChildren } from "../../operator/plan/children.ts";
import { deadline, secondsSince } from "../../operator/plan/deadline.ts";
import { Draft, turnOff } from "../../operator/plan/draft.ts";
import { cleanupPods, settlement } from "../../operator/plan/finish.ts";
import { podsHealth } from "../../operator/plan/health.ts";
import { incarnation, learner } from "../../operator/plan/learner.ts";
import { learnerProgress, terminationProgress } from "../../operator/plan/progress.ts";
import { refusal } from "../../operator/plan/refusals.ts";
import { autoscaling, rollouts } from "../../operator/plan/rollouts.ts";
import { resume, suspend } from "../../operator/plan/suspend.ts";

const NOW = new Date("2026-01-01T00:00:00Z");
const STAMP = "2026-01-01T00:00:00Z";

const cond = (type: StepPOJobCondition["type"], status: StepPOJobCondition["status"], reason = "Before"): StepPOJobCondition => ({
  type,
  status,
  reason,
  message: "m",
  lastTransitionTime: "2025-12-31T00:00:00Z",
});

function withPhase(p: V1Pod, phase: string, extra: Partial<NonNullable<V1Pod["status"]>> = {}): V1Pod {
  return { ...p, status: { phase, ...extra } };
}

const deleting = (p: V1Pod): V1Pod => ({ ...p, metadata: { ...p.metadata, deletionTimestamp: NOW } });
const ready = (p: V1Pod) => withPhase(p, "Running", { conditions: [{ type: "Ready", status: "True" }] });
const failed = (p: V1Pod, exitCode = 1) => withPhase(p, "Failed", { containerStatuses: [exited(exitCode)] });

function exited(exitCode: number, message?: string) {
  return { name: "c", image: "i", imageID: "", ready: false, restartCount: 0, state: { terminated: { exitCode, ...(message ? { message } : {}) } } };
}

describe("plan step: the draft", () => {
  test("turnOff lowers only conditions that are True now", () => {
    const conds = [cond("Running", "True"), cond("Restarting", "False")];
    assert.deepEqual(turnOff(conds, ["Running", "Restarting", "Suspended"], "Why", "msg"), [
      { type: "Running", status: "False", reason: "Why", message: "msg" },
    ]);
  });

  test("steps fold in order: conditions see earlier steps, a True transition records an Event before the step's own", () => {
    const d = new Draft(job(), NOW);
    d.apply({ conditions: [{ type: "Running", status: "True", reason: "Up", message: "up" }], create: [desiredLearnerPod(job(), 0)] });
    d.apply({
      conditions: [...turnOff(d.conditions, ["Running"], "Down", "down"), { type: "Failed", status: "True", reason: "Broke", message: "broke" }],
      events: [{ type: "Normal", reason: "Own", message: "own" }],
    });
    assert.equal(d.finished, true);
    const p = d.done();
    assert.deepEqual(
      p.events.map((e) => [e.type, e.reason]),
      [
        ["Normal", "Up"],
        ["Warning", "Broke"],
        ["Normal", "Own"],
      ],
    );
    assert.equal(p.status.conditions?.find((c) => c.type === "Running")?.status, "False");
    assert.equal(p.status.phase, "Failed");
    assert.equal(p.create.length, 1);
  });

  test("withdraw drops earlier creates and updates; unset removes status fields; settle replaces the pass's deletions", () => {
    const j = job({}, { startTime: STAMP, restarts: 2 });
    const d = new Draft(j, NOW);
    d.apply({ create: [desiredLearnerPod(j, 0)], update: [desiredChildren(j).configMap], deletePods: ["j-rollout-9"] });
    d.apply({ withdraw: true, unset: ["startTime"] });
    const p = d.settle({ deletePods: ["j-learner-0"], deleteJob: true, status: { completionTime: STAMP } });
    assert.deepEqual([p.create, p.update, p.deletePods, p.deleteJob], [[], [], ["j-learner-0"], true]);
    assert.equal(p.status.startTime, undefined);
    assert.equal(p.status.restarts, 2);
    assert.equal(p.status.selector, "steppo.dev/job=j,steppo.dev/role=rollout");
    assert.equal(p.status.observedGeneration, 1);
  });
});

describe("plan step: refusals", () => {
  test("an accepted spec is not refused", () => {
    assert.equal(refusal(job(), [], DEFAULTS), undefined);
  });

  test("too many replicas: Failed, and Running lowered only if it was True", () => {
    const j = job({ rollout: { replicas: 9 } });
    const limits = { ...DEFAULTS, maxReplicas: 8 };
    assert.deepEqual(
      refusal(j, [], limits)?.conditions?.map((c) => [c.type, c.status, c.reason]),
      [["Failed", "True", "ReplicasOverLimit"]],
    );
    assert.deepEqual(
      refusal(j, [cond("Running", "True")], limits)?.conditions?.map((c) => [c.type, c.status]),
      [
        ["Failed", "True"],
        ["Running", "False"],
      ],
    );
  });

  test("an environment config its pods would refuse", () => {
    const r = refusal(job({ environment: { name: "multihop-qa", config: { people: -3 } } }), [], DEFAULTS);
    assert.equal(r?.conditions?.[0].reason, "InvalidSpec");
  });
});

describe("plan step: shared children", () => {
  test("missing ones are created, a drifted job file rewritten, present ones left alone", () => {
    const j = job();
    const base = desiredChildren(j);
    const none = sharedChildren(j, { pods: [] });
    assert.deepEqual(
      none.create?.map((c) => c.metadata?.name),
      [base.configMap, base.service, base.pvc].map((c) => c?.metadata?.name),
    );
    const drifted = sharedChildren(j, { pods: [], configMap: { ...base.configMap, data: { "job.yaml": "old" } }, service: base.service, pvc: base.pvc });
    assert.deepEqual(drifted.create, []);
    assert.deepEqual(drifted.update, [base.configMap]);
    assert.deepEqual(sharedChildren(j, { pods: [], configMap: base.configMap, service: base.service, pvc: base.pvc }), { create: [], update: [] });
  });

  test("Created names what was requested", () => {
    assert.match(childrenCreated(job({ rollout: { replicas: 3 } })).conditions?.[0].message ?? "", /3 rollout pod/);
  });
});

describe("plan step: suspend and resume", () => {
  test("suspend deletes every pod not already going, lowers Running and Restarting, stops the clock", () => {
    const j = job();
    const pods = [ready(desiredLearnerPod(j, 0)), deleting(desiredRolloutPod(j, 0)), desiredRolloutPod(j, 1)];
    const s = suspend(pods, [cond("Running", "True")]);
    assert.deepEqual(s.deletePods, ["j-learner-0", "j-rollout-1"]);
    assert.deepEqual(
      s.conditions?.map((c) => [c.type, c.status]),
      [
        ["Suspended", "True"],
        ["Running", "False"],
      ],
    );
    assert.deepEqual(s.unset, ["startTime"]);
    assert.deepEqual(s.status?.rollout, { ready: 0, desired: 0 });
  });

  test("resume clears Suspended and starts the clock, keeping a running one", () => {
    const r = resume([cond("Suspended", "True")], undefined, NOW);
    assert.deepEqual(
      r.conditions?.map((c) => [c.type, c.status, c.reason]),
      [["Suspended", "False", "JobResumed"]],
    );
    assert.equal(r.status?.startTime, STAMP);
    assert.deepEqual(resume([], "2025-01-01T00:00:00Z", NOW), { conditions: [], status: { startTime: "2025-01-01T00:00:00Z" } });
  });
});

describe("plan step: learner", () => {
  const j = job({ runPolicy: { backoffLimit: 1 } });

  test("the incarnation is the highest index seen, never below the recorded restarts", () => {
    const pods = [failed(desiredLearnerPod(j, 0)), desiredLearnerPod(j, 1)];
    assert.deepEqual(incarnation("j", pods, 0), { restarts: 1, current: pods[1], previous: pods[0] });
    assert.deepEqual(incarnation("j", pods.slice(0, 1), 2), { restarts: 2, current: undefined, previous: undefined });
  });

  test("the next incarnation pending after a failure: Restarting holds, from the failed pod kept as evidence", () => {
    // As a pass sees it when the one that created j-learner-1 lost its status write, or worked from a job
    // the cache had not refreshed yet: Running still True, no Restarting.
    const inc = { restarts: 1, current: desiredLearnerPod(j, 1), previous: failed(desiredLearnerPod(j, 0), 137) };
    const s = learner(j, inc, [cond("Running", "True")], DEFAULTS);
    assert.equal(s.create, undefined);
    assert.deepEqual(s.status, { restarts: 1 });
    assert.deepEqual(
      s.conditions?.map((c) => [c.type, c.status, c.reason]),
      [
        ["Running", "False", "LearnerFailed"],
        ["Restarting", "True", "LearnerFailed"],
      ],
    );
    assert.match(s.conditions?.[1].message ?? "", /j-learner-0 failed \(.*exit code 137.*\); recreated as j-learner-1 \(restart 1 of 1\)/);
    // The previous incarnation did not fail (deleted by hand, say): nothing to decide.
    assert.deepEqual(learner(j, { restarts: 1, current: desiredLearnerPod(j, 1), previous: desiredLearnerPod(j, 0) }, [], DEFAULTS), {
      status: { restarts: 1 },
    });
  });

  test("no pod: the current incarnation is created", () => {
    const s = learner(j, { restarts: 1 }, [], DEFAULTS);
    assert.deepEqual(
      s.create?.map((p) => p.metadata?.name),
      ["j-learner-1"],
    );
    assert.deepEqual(s.status, { restarts: 1 });
  });

  test("a failure within the backoff limit starts the next incarnation and turns Restarting True", () => {
    const s = learner(j, { restarts: 0, current: failed(desiredLearnerPod(j, 0)) }, [cond("Running", "True")], DEFAULTS);
    assert.deepEqual(
      s.create?.map((p) => p.metadata?.name),
      ["j-learner-1"],
    );
    assert.deepEqual(s.status, { restarts: 1 });
    assert.deepEqual(
      s.conditions?.map((c) => [c.type, c.status, c.reason]),
      [
        ["Running", "False", "LearnerFailed"],
        ["Restarting", "True", "LearnerFailed"],
      ],
    );
    assert.match(s.conditions?.[1].message ?? "", /exit code 1.*restart 1 of 1/);
  });

  test("a failure past the backoff limit fails the job, nothing created", () => {
    const s = learner(j, { restarts: 1, current: failed(desiredLearnerPod(j, 1)) }, [], DEFAULTS);
    assert.equal(s.create, undefined);
    assert.deepEqual(s.status, { restarts: 1 });
    assert.deepEqual(
      s.conditions?.map((c) => [c.type, c.reason]),
      [["Failed", "BackoffLimitExceeded"]],
    );
  });

  test("success is the job's success; a terminating pod is no verdict", () => {
    const done = learner(j, { restarts: 0, current: withPhase(desiredLearnerPod(j, 0), "Succeeded") }, [cond("Running", "True")], DEFAULTS);
    assert.deepEqual(
      done.conditions?.map((c) => [c.type, c.status]),
      [
        ["Running", "False"],
        ["Succeeded", "True"],
      ],
    );
    assert.deepEqual(learner(j, { restarts: 0, current: deleting(failed(desiredLearnerPod(j, 0))) }, [], DEFAULTS), { status: { restarts: 0 } });
  });

  test("running: Running True, Restarting lowered; an outdated spec is replaced", () => {
    const run = learner(j, { restarts: 1, current: ready(desiredLearnerPod(j, 1)) }, [cond("Restarting", "True")], DEFAULTS);
    assert.deepEqual(
      run.conditions?.map((c) => [c.type, c.status]),
      [
        ["Restarting", "False"],
        ["Running", "True"],
      ],
    );
    const old = ready(desiredLearnerPod(job({ training: { updates: 7 } }), 0));
    const replaced = learner(j, { restarts: 0, current: old }, [], DEFAULTS);
    assert.deepEqual(replaced.deletePods, ["j-learner-0"]);
    assert.equal(replaced.events?.[0].reason, "SpecChanged");
  });
});

describe("plan step: learner progress", () => {
  const kv: LearnerProgress = {
    phase: "training",
    update: 12,
    updates: 30,
    envSteps: 1000,
    trainSuccess: 0.25,
    testSuccess: null,
    lastCheckpoint: { update: 10, path: "ckpt/10", at: STAMP },
    demand: { waitSecondsLastUpdate: 0, waitSecondsPerUpdate: 0, backlog: 0, staleDrops: 0, workers: 2 },
    trajectories: { published: 0, consumed: 0, stale: 0, deadLettered: 0, duplicates: 0, inFlight: 0 },
    updatedAt: STAMP,
  };
  const exitedWith = (message: string) => withPhase(desiredLearnerPod(job(), 0), "Failed", { containerStatuses: [exited(1, message)] });

  test("the termination message, only with values the status schema accepts", () => {
    assert.deepEqual(terminationProgress(exitedWith('{"update":4,"successRate":0.5}')), { update: 4, successRate: 0.5 });
    assert.deepEqual(terminationProgress(exitedWith('{"update":-1,"successRate":2}')), {});
    assert.deepEqual(terminationProgress(exitedWith("a log tail")), {});
  });

  test("the KV record wins over the termination message; what neither says is not written", () => {
    const s = learnerProgress(exitedWith('{"update":4,"successRate":0.5}'), kv, 30).status;
    assert.equal(s?.update, 12);
    assert.equal(s?.successRate, 0.5, "testSuccess null: the pod's rate stays");
    assert.deepEqual(s?.lastCheckpoint, { update: 10, path: "ckpt/10", time: STAMP });
    assert.equal(s?.training?.policyVersion, 12);
    assert.deepEqual(learnerProgress(undefined, undefined, 30), { status: {} });
  });
});

describe("plan step: rollouts", () => {
  const j = job({ rollout: { replicas: 3 } });

  test("missing indices created, failed and surplus pods deleted, ready ones counted", () => {
    const pods = [ready(desiredRolloutPod(j, 0)), failed(desiredRolloutPod(j, 1)), ready(desiredRolloutPod(j, 5)), deleting(desiredRolloutPod(j, 6))];
    const s = rollouts(j, pods, DEFAULTS);
    assert.deepEqual(
      s.create?.map((p) => p.metadata?.name),
      ["j-rollout-2"],
    );
    assert.deepEqual(s.deletePods, ["j-rollout-5", "j-rollout-1"]);
    assert.deepEqual(
      s.events?.map((e) => [e.type, e.reason]),
      [["Warning", "RolloutPodReplaced"]],
    );
    assert.deepEqual(s.status?.rollout, { ready: 1, desired: 3 });
  });

  test("an outdated spec replaces every worker at once, with one Event", () => {
    const old = job({ rollout: { replicas: 3 }, training: { updates: 7 } });
    const s = rollouts(
      j,
      [0, 1, 2].map((i) => ready(desiredRolloutPod(old, i))),
      DEFAULTS,
    );
    assert.deepEqual(s.deletePods, ["j-rollout-0", "j-rollout-1", "j-rollout-2"]);
    assert.deepEqual(
      s.events?.map((e) => e.message),
      ["3 rollout pod(s) run an outdated spec; replacing them"],
    );
  });

  test("autoscaling: nothing without the autoscaler or a progress record; a decision becomes a scale and an Event", () => {
    const kv = {
      phase: "training",
      update: 5,
      updates: 100,
      envSteps: 1000,
      trainSuccess: 0.3,
      testSuccess: 0.4,
      lastCheckpoint: null,
      demand: { waitSecondsLastUpdate: 4, waitSecondsPerUpdate: 0, backlog: 0, staleDrops: 0, workers: 2 },
      trajectories: { published: 0, consumed: 0, stale: 0, deadLettered: 0, duplicates: 0, inFlight: 0 },
      updatedAt: STAMP,
    } satisfies LearnerProgress;
    const auto = job({ rollout: { replicas: 2, minReplicas: 1, maxReplicas: 8, autoscale: { enabled: true, maxStep: 2 } } });
    assert.deepEqual(autoscaling(j, kv, undefined, NOW), {});
    assert.deepEqual(autoscaling(auto, undefined, undefined, NOW), {});
    const s = autoscaling(auto, kv, undefined, NOW);
    assert.deepEqual(s.scale, { from: 2, to: 4 });
    assert.equal(s.events?.[0].reason, "ScaledUp");
    assert.equal(s.status?.autoscaler?.decision?.to, 4);
  });
});

describe("plan step: pod health", () => {
  test("a stuck pod turns PodsHealthy False with a Warning; finished pods are not asked", () => {
    const j = job();
    const stuck = withPhase(desiredRolloutPod(j, 0), "Pending", {
      conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message: "no node" }],
    });
    const s = podsHealth([stuck], []);
    assert.deepEqual(
      s.conditions?.map((c) => [c.type, c.status, c.reason]),
      [["PodsHealthy", "False", "Unschedulable"]],
    );
    assert.equal(s.events?.[0].reason, "PodsUnhealthy");
    assert.deepEqual(podsHealth([{ ...stuck, status: { ...stuck.status, phase: "Failed" } }], []), {});
  });
});

describe("plan step: deadline", () => {
  const policy = job({ runPolicy: { activeDeadlineSeconds: 60 } }).spec.runPolicy;

  test("before it: a timer for the moment it runs out", () => {
    assert.deepEqual(deadline(policy, "2025-12-31T23:59:30Z", [], NOW), { requeueAfterMs: 30_000 });
    assert.deepEqual(deadline(job().spec.runPolicy, "2025-01-01T00:00:00Z", [], NOW), {});
  });

  test("past it: creates withdrawn, Running lowered, Failed", () => {
    const s = deadline(policy, "2025-12-31T23:58:00Z", [cond("Running", "True")], NOW);
    assert.equal(s.withdraw, true);
    assert.deepEqual(
      s.conditions?.map((c) => [c.type, c.status, c.reason]),
      [
        ["Running", "False", "DeadlineExceeded"],
        ["Failed", "True", "DeadlineExceeded"],
      ],
    );
    assert.equal(secondsSince("2025-12-31T23:58:00Z", NOW), 120);
  });
});

describe("plan step: finish", () => {
  const j = job();
  const pods = [withPhase(desiredLearnerPod(j, 0), "Succeeded"), ready(desiredRolloutPod(j, 0)), deleting(ready(desiredRolloutPod(j, 1)))];

  test("cleanPodPolicy: Running deletes unfinished pods, All every live one, None nothing", () => {
    assert.deepEqual(cleanupPods(pods, "Running"), ["j-rollout-0"]);
    assert.deepEqual(cleanupPods(pods, "All"), ["j-learner-0", "j-rollout-0"]);
    assert.deepEqual(cleanupPods(pods, "None"), []);
  });

  test("completionTime set once; the TTL counts from it: a timer, then the job's deletion", () => {
    const ttl = job({ runPolicy: { ttlSecondsAfterFinished: 100 } }).spec.runPolicy;
    assert.deepEqual(settlement(ttl, [], undefined, NOW), {
      deletePods: [],
      deleteJob: false,
      requeueAfterMs: 100_000,
      status: { completionTime: STAMP, rollout: { ready: 0, desired: 0 } },
    });
    const late = settlement(ttl, [], "2025-12-31T23:00:00Z", NOW);
    assert.equal(late.deleteJob, true);
    assert.equal(late.requeueAfterMs, undefined);
    assert.equal(late.status.completionTime, "2025-12-31T23:00:00Z");
    assert.equal(settlement(j.spec.runPolicy, [], undefined, NOW).requeueAfterMs, undefined);
  });
});
