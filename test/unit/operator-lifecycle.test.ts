// The operator's production-shape pure parts: the finalizer's plan and status, pod health from pod status,
// the RL status fields from the learner's progress.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import { parseJob } from "../../common/job-spec.ts";
import { natsJobRef } from "../../common/nats/names.ts";
import type { JobObject } from "../../operator/desired.ts";
import { cleanupStatus, FINALIZER, hasFinalizer, planFinalize, SKIP_NATS_CLEANUP_ANNOTATION } from "../../operator/finalizer.ts";
import { jobStreams } from "../../operator/nats-cleanup.ts";

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
