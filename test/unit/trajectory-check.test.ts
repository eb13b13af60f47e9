// Intake validation (learner/trajectory-check.ts): one test per cause, plus what must pass.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { StepRecord, Trajectory } from "../../core/trajectory.ts";
import { checkTrajectory, type IntakeLimits, partitionTrajectories } from "../../learner/trajectory-check.ts";

const limits: IntakeLimits = { vocabSize: 50, contextLength: 16, learnerVersion: 3 };

function step(over: Partial<StepRecord> = {}): StepRecord {
  return {
    contextIds: Int32Array.from([1, 2, 3, 4]),
    actionIds: Int32Array.from([5, 6, 7]),
    logProbs: Float32Array.from([-0.1, -0.5, -2]),
    reward: 0,
    done: false,
    stateKey: "s",
    ...over,
  };
}

function traj(over: Partial<Trajectory> = {}, steps: StepRecord[] = [step(), step({ reward: 1, done: true })]): Trajectory {
  return { trajId: "t1", workerId: "w0", policyVersion: 2, taskId: "task", groupId: "g", family: "f", steps, truncated: false, success: true, ...over };
}

function causeOf(t: Trajectory): string | undefined {
  return checkTrajectory(t, limits)?.cause;
}

describe("checkTrajectory", () => {
  it("accepts a sound trajectory, at the limits too", () => {
    assert.equal(checkTrajectory(traj(), limits), undefined);
    const full = step({ contextIds: new Int32Array(13).fill(49), actionIds: Int32Array.from([0, 0, 0]) });
    assert.equal(checkTrajectory(traj({ policyVersion: 3, truncated: true, bootstrapContextIds: new Int32Array(16) }, [full]), limits), undefined);
    assert.equal(checkTrajectory(traj({ policyVersion: 0 }), limits), undefined);
  });

  it("non-finite: NaN or infinite reward, NaN or infinite log-prob", () => {
    for (const reward of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const p = checkTrajectory(traj({}, [step(), step({ reward })]), limits);
      assert.equal(p?.cause, "non-finite");
      assert.match(p?.message ?? "", /trajectory t1: step 1: reward is (NaN|-?Infinity)/);
    }
    assert.equal(causeOf(traj({}, [step({ logProbs: Float32Array.from([-0.1, Number.NaN, -1]) })])), "non-finite");
    assert.equal(causeOf(traj({}, [step({ logProbs: Float32Array.from([Number.NEGATIVE_INFINITY, -1, -1]) })])), "non-finite");
  });

  it("token-out-of-range: context, action or bootstrap id outside [0, vocabSize)", () => {
    const p = checkTrajectory(traj({}, [step({ actionIds: Int32Array.from([5, 50, 7]) })]), limits);
    assert.equal(p?.cause, "token-out-of-range");
    assert.match(p?.message ?? "", /action token 50 is outside the vocabulary \[0, 50\)/);
    assert.equal(causeOf(traj({}, [step({ contextIds: Int32Array.from([1, -1]) })])), "token-out-of-range");
    assert.equal(causeOf(traj({ truncated: true, bootstrapContextIds: Int32Array.from([3, 1000]) })), "token-out-of-range");
  });

  it("too-long: context + action beyond contextLength, or a bootstrap context beyond it", () => {
    const p = checkTrajectory(traj({}, [step({ contextIds: new Int32Array(14) })]), limits);
    assert.equal(p?.cause, "too-long");
    assert.match(p?.message ?? "", /14 context \+ 3 action tokens = 17 exceed contextLength 16/);
    assert.equal(causeOf(traj({ truncated: true, bootstrapContextIds: new Int32Array(17) })), "too-long");
  });

  it("inconsistent: log-probs not matching the action tokens, no steps, an empty context or action", () => {
    const p = checkTrajectory(traj({}, [step({ logProbs: Float32Array.from([-1, -1]) })]), limits);
    assert.equal(p?.cause, "inconsistent");
    assert.match(p?.message ?? "", /2 log-probs for 3 action tokens/);
    assert.equal(causeOf(traj({}, [])), "inconsistent");
    assert.equal(causeOf(traj({}, [step({ contextIds: new Int32Array(0) })])), "inconsistent");
    assert.equal(causeOf(traj({}, [step({ actionIds: new Int32Array(0), logProbs: new Float32Array(0) })])), "inconsistent");
  });

  it("bad-policy-version: negative, fractional or not a number", () => {
    for (const policyVersion of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])
      assert.equal(causeOf(traj({ policyVersion })), "bad-policy-version", String(policyVersion));
  });

  it("policy-version-ahead: newer than the learner, reported only for an otherwise sound trajectory", () => {
    const p = checkTrajectory(traj({ policyVersion: 4 }), limits);
    assert.equal(p?.cause, "policy-version-ahead");
    assert.match(p?.message ?? "", /policy version 4 is newer than the learner's 3/);
    // Poison wins over "ahead": the distributed learner must dead-letter it, not count it as stale.
    assert.equal(causeOf(traj({ policyVersion: 4 }, [step({ reward: Number.NaN })])), "non-finite");
  });

  it("partitionTrajectories keeps the order and says why each refused one was refused", () => {
    const good1 = traj({ trajId: "a" });
    const bad = traj({ trajId: "b" }, [step({ reward: Number.NaN })]);
    const good2 = traj({ trajId: "c" });
    const { accepted, rejected } = partitionTrajectories([good1, bad, good2], limits);
    assert.deepEqual(
      accepted.map((t) => t.trajId),
      ["a", "c"],
    );
    assert.deepEqual(
      rejected.map((r) => [r.traj.trajId, r.problem.cause]),
      [["b", "non-finite"]],
    );
  });
});
