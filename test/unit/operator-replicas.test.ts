// Replicas as a weapon: the operator's replica limit (a job above it is refused whole) and pod creation in
// slow-start batches that stop at the first failure.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseJob } from "../../crds/job-spec.ts";
import { ValidationError } from "../../crds/schema.ts";
import { MAX_REPLICAS } from "../../crds/steppojob.ts";
import { DEFAULT_MAX_REPLICAS, DEFAULTS, type JobObject } from "../../operator/desired.ts";
import { plan, replicasRefusal } from "../../operator/plan.ts";
import { slowStart, slowStartBatches } from "../../operator/slow-start.ts";

const NOW = new Date("2026-01-01T00:00:00Z");

function job(rollout: Record<string, unknown>, name = "big"): JobObject {
  const j = parseJob({ apiVersion: "steppo.dev/v1alpha1", kind: "StepPOJob", metadata: { name, namespace: "ns" }, spec: { rollout } }, "test") as JobObject;
  j.metadata.uid = "uid-1";
  return j;
}

describe("replica limits", () => {
  test("the schema bounds replicas, minReplicas and maxReplicas at MAX_REPLICAS", () => {
    assert.equal(MAX_REPLICAS, 1000);
    assert.doesNotThrow(() => job({ replicas: MAX_REPLICAS, maxReplicas: MAX_REPLICAS }));
    assert.throws(
      () => job({ replicas: 20_000, maxReplicas: 20_000, minReplicas: 20_000 }),
      (err: Error) =>
        err instanceof ValidationError &&
        ["replicas", "maxReplicas", "minReplicas"].every((f) =>
          err.errors.some((e) => e.path === `spec.rollout.${f}` && e.message === "must be <= 1000, got 20000"),
        ),
    );
  });

  test("a job above the operator's limit fails with a condition naming the limit; nothing is created", () => {
    const p = plan(job({ replicas: 300, maxReplicas: 300 }), { pods: [] }, NOW);
    assert.equal(DEFAULT_MAX_REPLICAS, 256);
    assert.deepEqual(p.create, [], "no child at all");
    assert.equal(p.status.phase, "Failed");
    const failed = p.status.conditions?.find((c) => c.type === "Failed");
    assert.equal(failed?.reason, "ReplicasOverLimit");
    assert.equal(
      failed?.message,
      "spec.rollout.replicas 300 and spec.rollout.maxReplicas 300 above this operator's limit of 256 rollout replicas (steppo operator --max-replicas)",
    );
    assert.ok(p.events.some((e) => e.type === "Warning" && e.reason === "ReplicasOverLimit"));
  });

  test("the limit is configurable, and covers the autoscaler's ceiling (maxReplicas) too", () => {
    const defaults = { ...DEFAULTS, maxReplicas: 8 };
    assert.match(
      replicasRefusal(job({ replicas: 2, maxReplicas: 9, autoscale: { enabled: true } }).spec.rollout, 8) ?? "",
      /maxReplicas 9 above .* limit of 8/,
    );
    assert.equal(plan(job({ replicas: 8, maxReplicas: 8 }), { pods: [] }, NOW, defaults).status.phase, "Created");
    const p = plan(job({ replicas: 8, maxReplicas: 8 }), { pods: [] }, NOW, defaults);
    assert.equal(p.create.filter((c) => c.kind === "Pod").length, 9, "learner and 8 workers");
    assert.equal(plan(job({ replicas: 9 }), { pods: [] }, NOW, defaults).status.phase, "Failed");
  });

  test("a job stored with a name the rule refuses fails (InvalidName) instead of crash-looping its learner", () => {
    const j = job({ replicas: 1 });
    j.metadata.name = "exp.v2";
    const p = plan(j, { pods: [] }, NOW);
    assert.deepEqual(p.create, []);
    assert.equal(p.status.conditions?.find((c) => c.type === "Failed")?.reason, "InvalidName");
  });
});

describe("slow-start pod creation", () => {
  test("batches double from 4, the last one cut to what is left", () => {
    assert.deepEqual(slowStartBatches(0), []);
    assert.deepEqual(slowStartBatches(1), [1]);
    assert.deepEqual(slowStartBatches(3), [3], "a learner and two rollout pods: one round trip");
    assert.deepEqual(slowStartBatches(7), [4, 3]);
    assert.deepEqual(slowStartBatches(20), [4, 8, 8]);
    assert.equal(slowStartBatches(20_000).length, 13);
    assert.deepEqual(slowStartBatches(7, 1), [1, 2, 4], "the ReplicaSet's batches from 1");
  });

  test("all items are created when nothing fails, each batch concurrently", async () => {
    let inFlight = 0;
    let most = 0;
    const seen: number[] = [];
    const r = await slowStart([...Array(15).keys()], async (i) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((resolve) => setImmediate(resolve));
      seen.push(i);
      inFlight--;
    });
    assert.deepEqual(r, { succeeded: 15, attempted: 15, skipped: 0 });
    assert.equal(most, 8, "at most the largest batch at once");
    assert.deepEqual(
      [...seen].sort((a, b) => a - b),
      [...Array(15).keys()],
    );
  });

  test("a pass stops after the first batch with a failure and reports it", async () => {
    const tried: number[] = [];
    const r = await slowStart([...Array(20).keys()], async (i) => {
      tried.push(i);
      if (i >= 6) throw new Error(`quota exceeded for ${i}`);
    });
    // Batches [0..3], [4..11]: the second fails (from 6 on), nothing after it is tried.
    assert.deepEqual(
      [...tried].sort((a, b) => a - b),
      [...Array(12).keys()],
    );
    assert.equal(r.succeeded, 6);
    assert.equal(r.attempted, 12);
    assert.equal(r.skipped, 8);
    assert.equal((r.error as Error).message, "quota exceeded for 6");
  });

  test("when every creation fails, a pass of 20000 pods costs one batch of requests", async () => {
    let calls = 0;
    const r = await slowStart([...Array(20_000).keys()], async () => {
      calls++;
      throw new Error("forbidden");
    });
    assert.equal(calls, 4);
    assert.equal(r.skipped, 19_996);
  });
});
