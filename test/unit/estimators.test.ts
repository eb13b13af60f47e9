// Advantage estimators against hand-computed values. Every expected number is a literal; the comment
// next to it shows the arithmetic.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { StepRecord, Trajectory } from "../../core/trajectory.ts";
import { ESTIMATORS } from "../../crds/steppojob.ts";
import type { Advantages, ValuedTrajectory } from "../../learner/estimators/estimator.ts";
import { gigpoEstimator } from "../../learner/estimators/gigpo.ts";
import { grpoEstimator } from "../../learner/estimators/grpo.ts";
import { reinforcePlusPlusEstimator } from "../../learner/estimators/reinforce-pp.ts";
import { estimatorNames, getEstimator } from "../../learner/estimators/registry.ts";
import { rlooEstimator } from "../../learner/estimators/rloo.ts";
import { stepGae, stepGaeEstimator } from "../../learner/estimators/step-gae.ts";
import { tokenGae, tokenGaeEstimator } from "../../learner/estimators/token-gae.ts";
import { whiten } from "../../learner/estimators/whiten.ts";

const TOL = 1e-6;

function close(actual: ArrayLike<number>, expected: readonly number[], tol = TOL, what = ""): void {
  assert.equal(actual.length, expected.length, `${what} length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `${what}[${i}]: got ${actual[i]}, expected ${expected[i]}`);
  }
}

interface StepSpec {
  r: number;
  L: number;
  done?: boolean;
  key?: string;
}

function traj(trajId: string, groupId: string, steps: StepSpec[], truncated = false): Trajectory {
  const records: StepRecord[] = steps.map((s, t) => ({
    contextIds: Int32Array.of(1, 2, t),
    actionIds: new Int32Array(s.L).fill(7),
    logProbs: new Float32Array(s.L).fill(-1),
    reward: s.r,
    done: s.done ?? false,
    stateKey: s.key ?? `${trajId}-${t}`,
  }));
  return { trajId, workerId: "w0", policyVersion: 0, taskId: groupId, groupId, family: "test", steps: records, truncated, success: false };
}

/** Critic values: stepValues [T]; tokenValues default to the step value on every token. */
function valued(t: Trajectory, stepValues: number[] = [], bootstrapValue = 0, tokenValues?: number[][]): ValuedTrajectory {
  const sv = Float32Array.from(t.steps.map((_, i) => stepValues[i] ?? 0));
  return {
    traj: t,
    stepValues: sv,
    tokenValues: t.steps.map((s, i) => (tokenValues ? Float32Array.from(tokenValues[i]) : new Float32Array(s.actionIds.length).fill(sv[i]))),
    bootstrapValue,
  };
}

/** Every token of step t carries stepAdvantages[t]. */
function assertBroadcast(a: Advantages, t: Trajectory): void {
  t.steps.forEach((s, i) => {
    assert.equal(a.tokenAdvantages[i].length, s.actionIds.length);
    for (const x of a.tokenAdvantages[i]) assert.equal(x, a.stepAdvantages[i]);
  });
}

// Episode A (terminated): r = [0, 0, 1], V(c_t) = [0.5, 0.4, 0.6], done = [0, 0, 1].
const A_R = [0, 0, 1];
const A_V = [0.5, 0.4, 0.6, 0]; // + V(c_3) = 0, never read (step 2 is done)
const A_D = [0, 0, 1];
// Episode B (truncated): r = [0.5, 0], V(c_t) = [1, 2], bootstrap V(c_2) = 3, done = [0, 0].
const B_R = [0.5, 0];
const B_V = [1, 2, 3];
const B_D = [0, 0];

describe("stepGae", () => {
  it("terminated episode, γ = 0.9, λ = 0.8", () => {
    const { advantages, returns } = stepGae(A_R, A_V, A_D, 0.9, 0.8);
    // t=2: δ = 1 − 0.6 = 0.4;                 Â = 0.4
    // t=1: δ = 0 + 0.9·0.6 − 0.4 = 0.14;      Â = 0.14 + 0.9·0.8·0.4 = 0.14 + 0.288 = 0.428
    // t=0: δ = 0 + 0.9·0.4 − 0.5 = −0.14;     Â = −0.14 + 0.72·0.428 = −0.14 + 0.30816 = 0.16816
    close(advantages, [0.16816, 0.428, 0.4]);
    // R̂ = Â + V: [0.16816 + 0.5, 0.428 + 0.4, 0.4 + 0.6]
    close(returns, [0.66816, 0.828, 1.0]);
  });

  it("truncated episode bootstraps V(c_T), γ = 0.9, λ = 0.8", () => {
    const { advantages, returns } = stepGae(B_R, B_V, B_D, 0.9, 0.8);
    // t=1: δ = 0 + 0.9·3 − 2 = 0.7;           Â = 0.7
    // t=0: δ = 0.5 + 0.9·2 − 1 = 1.3;         Â = 1.3 + 0.72·0.7 = 1.3 + 0.504 = 1.804
    close(advantages, [1.804, 0.7]);
    close(returns, [2.804, 2.7]); // [1.804 + 1, 0.7 + 2]
  });

  it("a done step never bootstraps, whatever values[T] holds", () => {
    // Same as B but step 1 done and values[T] = 5 (must be ignored).
    const { advantages } = stepGae(B_R, [1, 2, 5], [false, true], 0.9, 0.8);
    // t=1: δ = 0 − 2 = −2;                    Â = −2
    // t=0: δ = 1.3;                           Â = 1.3 + 0.72·(−2) = 1.3 − 1.44 = −0.14
    close(advantages, [-0.14, -2]);
  });

  it("nothing flows back across a done step: two episodes back to back equal each on its own", () => {
    // [A ++ B]: r = [0, 0, 1, 0.5, 0], V = [0.5, 0.4, 0.6, 1, 2, 3 (bootstrap of B)], done = [0, 0, 1, 0, 0]
    const { advantages } = stepGae([...A_R, ...B_R], [0.5, 0.4, 0.6, ...B_V], [...A_D, ...B_D], 0.9, 0.8);
    close(advantages, [0.16816, 0.428, 0.4, 1.804, 0.7]); // A's then B's values from above
  });

  it("γ = 0: Â_t = r_t − V(c_t), R̂_t = r_t", () => {
    const { advantages, returns } = stepGae(A_R, A_V, A_D, 0, 0.8);
    close(advantages, [-0.5, -0.4, 0.4]); // [0 − 0.5, 0 − 0.4, 1 − 0.6]
    close(returns, [0, 0, 1]);
    // Truncated: the bootstrap is multiplied by γ = 0 too.
    close(stepGae(B_R, B_V, B_D, 0, 0.8).advantages, [-0.5, -2]); // [0.5 − 1, 0 − 2]
  });

  it("λ = 0: one-step TD errors", () => {
    close(stepGae(A_R, A_V, A_D, 0.9, 0).advantages, [-0.14, 0.14, 0.4]); // δ_t from above
    close(stepGae(B_R, B_V, B_D, 0.9, 0).advantages, [1.3, 0.7]);
  });

  it("λ = 1: Monte-Carlo return minus baseline", () => {
    const { advantages, returns } = stepGae(A_R, A_V, A_D, 0.9, 1);
    // G = [0.9², 0.9, 1] = [0.81, 0.9, 1];  Â = G − V = [0.81 − 0.5, 0.9 − 0.4, 1 − 0.6]
    close(advantages, [0.31, 0.5, 0.4]);
    close(returns, [0.81, 0.9, 1]);
    // Truncated, γ = 1: G_1 = 0 + 3 = 3, G_0 = 0.5 + 3 = 3.5;  Â = [3.5 − 1, 3 − 2]
    close(stepGae(B_R, B_V, B_D, 1, 1).advantages, [2.5, 1]);
  });

  it("γ = 1, λ = 0.5", () => {
    const { advantages, returns } = stepGae(A_R, A_V, A_D, 1, 0.5);
    // t=2: δ = 0.4;                Â = 0.4
    // t=1: δ = 0.6 − 0.4 = 0.2;    Â = 0.2 + 0.5·0.4 = 0.4
    // t=0: δ = 0.4 − 0.5 = −0.1;   Â = −0.1 + 0.5·0.4 = 0.1
    close(advantages, [0.1, 0.4, 0.4]);
    close(returns, [0.6, 0.8, 1.0]);
  });

  it("rejects values of the wrong length", () => {
    assert.throws(() => stepGae([0, 1], [0, 0], [0, 1], 1, 1), /T \+ 1/);
  });
});

describe("step-gae estimator", () => {
  it("per-trajectory GAE over a batch, broadcast to every action token", () => {
    const a = traj("a", "g", [
      { r: 0, L: 2 },
      { r: 0, L: 1 },
      { r: 1, L: 3, done: true },
    ]);
    const b = traj("b", "g", [
      { r: 0.5, L: 1 },
      { r: 0, L: 2 },
    ]);
    const out = stepGaeEstimator.estimate([valued(a, [0.5, 0.4, 0.6]), valued(b, [1, 2], 3)], { gamma: 0.9, lambda: 0.8 });
    assert.equal(out.length, 2);
    close(out[0].stepAdvantages, [0.16816, 0.428, 0.4]); // episode A above
    close(out[0].stepReturns!, [0.66816, 0.828, 1.0]);
    close(out[1].stepAdvantages, [1.804, 0.7]); // episode B above
    close(out[1].stepReturns!, [2.804, 2.7]);
    assertBroadcast(out[0], a);
    assertBroadcast(out[1], b);
    assert.equal(out[0].tokenReturns, undefined);
  });

  it("StepPO's point: a final reward reaches step 0 as γ^4 over 5 steps, but γ^499 over 5 × 100 tokens", () => {
    const steps = [0, 0, 0, 0, 1].map((r, t) => ({ r, L: 100, done: t === 4 }));
    const t = traj("long", "g", steps);
    const gamma = 0.99;
    const step = stepGaeEstimator.estimate([valued(t)], { gamma, lambda: 1 })[0];
    // zero values, λ = 1: Â_0 = γ^4 · 1 = 0.99^4 = 0.96059601
    close(step.stepAdvantages.subarray(0, 1), [0.96059601]);
    assert.equal(step.tokenAdvantages[0][0], step.stepAdvantages[0]);
    const token = tokenGaeEstimator.estimate([valued(t)], { gamma, lambda: 1 })[0];
    // 500 tokens, the reward on token 499: Â at token 0 = 0.99^499 ≈ 0.0066368516
    close(token.tokenAdvantages[0].subarray(0, 1), [0.0066368516], 1e-8);
    assert.ok(step.stepAdvantages[0] / token.tokenAdvantages[0][0] > 100);
  });
});

describe("token-gae", () => {
  // 2 steps with 2 and 3 action tokens; r_0 = 0.5 on token 1, r_1 = 1 on token 4 (done).
  // Token values: step 0 [0.2, 0.3], step 1 [0.4, 0.1, 0.5]; V after the last token = 0 (terminated).
  const t = traj("tok", "g", [
    { r: 0.5, L: 2 },
    { r: 1, L: 3, done: true },
  ]);
  const v = valued(t, [0.2, 0.4], 0, [
    [0.2, 0.3],
    [0.4, 0.1, 0.5],
  ]);

  it("GAE over the flattened action tokens, γ = 1, λ = 0.5", () => {
    const [out] = tokenGaeEstimator.estimate([v], { gamma: 1, lambda: 0.5 });
    // i=4: δ = 1 + 0 − 0.5 = 0.5;           Â = 0.5                          R = 1.0
    // i=3: δ = 0 + 0.5 − 0.1 = 0.4;         Â = 0.4 + 0.5·0.5 = 0.65         R = 0.75
    // i=2: δ = 0 + 0.1 − 0.4 = −0.3;        Â = −0.3 + 0.5·0.65 = 0.025      R = 0.425
    // i=1: δ = 0.5 + 0.4 − 0.3 = 0.6;       Â = 0.6 + 0.5·0.025 = 0.6125     R = 0.9125
    // i=0: δ = 0 + 0.3 − 0.2 = 0.1;         Â = 0.1 + 0.5·0.6125 = 0.40625   R = 0.60625
    close(out.tokenAdvantages[0], [0.40625, 0.6125]);
    close(out.tokenAdvantages[1], [0.025, 0.65, 0.5]);
    close(out.tokenReturns![0], [0.60625, 0.9125]);
    close(out.tokenReturns![1], [0.425, 0.75, 1.0]);
    // Step means: (0.40625 + 0.6125)/2 = 0.509375;  (0.025 + 0.65 + 0.5)/3 = 1.175/3 = 0.3916667
    close(out.stepAdvantages, [0.509375, 0.3916667]);
    assert.equal(out.stepReturns, undefined);
  });

  it("truncated: bootstraps after the last action token (γ = 0.5, λ = 1), batch of two", () => {
    // One step, 2 tokens, r = 1 on token 1; token values [0.5, 0.25]; bootstrap V = 2.
    const u = traj("trunc", "g", [{ r: 1, L: 2 }], true);
    const out = tokenGaeEstimator.estimate([v, valued(u, [0.5], 2, [[0.5, 0.25]])], { gamma: 0.5, lambda: 1 });
    assert.equal(out.length, 2);
    // i=1: δ = 1 + 0.5·2 − 0.25 = 1.75;      Â = 1.75                        R = 2.0
    // i=0: δ = 0 + 0.5·0.25 − 0.5 = −0.375;  Â = −0.375 + 0.5·1.75 = 0.5     R = 1.0
    close(out[1].tokenAdvantages[0], [0.5, 1.75]);
    close(out[1].tokenReturns![0], [1.0, 2.0]);
    close(out[1].stepAdvantages, [1.125]); // (0.5 + 1.75)/2
  });

  it("tokenGae is the GAE recursion over tokens (λ = 0: TD errors)", () => {
    // r = [0, 1], V = [0.5, 0.5, 9], done = [0, 1], γ = 1: δ_1 = 1 − 0.5; δ_0 = 0.5 − 0.5
    close(tokenGae([0, 1], [0.5, 0.5, 9], [0, 1], 1, 0).advantages, [0, 0.5]);
  });

  it("a step without action tokens passes its reward to the previous token", () => {
    const e = traj("empty", "g", [
      { r: 0, L: 1 },
      { r: 2, L: 0, done: true },
    ]);
    const [out] = tokenGaeEstimator.estimate([valued(e)], { gamma: 1, lambda: 1 });
    close(out.tokenAdvantages[0], [2]); // the only token carries r = 2, done
    assert.equal(out.tokenAdvantages[1].length, 0);
    close(out.stepAdvantages, [2, 0]);
  });
});

describe("grpo", () => {
  // g1: returns 3 (= 1 + 2 over two steps) and 1; mean 2, population std 1.
  // g2: a single episode. g3: equal returns 0.7, 0.7 (std 0).
  // g4: returns 2, 0, 0, 0; mean 0.5, std √((1.5² + 3·0.5²)/4) = √0.75 = 0.8660254.
  const g1a = traj("g1a", "g1", [
    { r: 1, L: 2 },
    { r: 2, L: 1, done: true },
  ]);
  const g1b = traj("g1b", "g1", [{ r: 1, L: 3, done: true }]);
  const g2 = traj("g2", "g2", [{ r: 5, L: 1, done: true }]);
  const g3a = traj("g3a", "g3", [{ r: 0.7, L: 1, done: true }]);
  const g3b = traj("g3b", "g3", [{ r: 0.7, L: 2, done: true }]);
  const g4 = [2, 0, 0, 0].map((r, i) => traj(`g4${i}`, "g4", [{ r, L: 1, done: true }]));
  const batch = [g1a, g2, g3a, g1b, g3b, ...g4].map((t) => valued(t));

  it("(R − mean_G R) / (std_G R + ε), broadcast; singleton and equal returns → 0", () => {
    const out = grpoEstimator.estimate(batch, { gamma: 1, lambda: 1 });
    close(out[0].stepAdvantages, [0.999999, 0.999999]); // (3 − 2)/(1 + 1e-6)
    close(out[3].stepAdvantages, [-0.999999]); // (1 − 2)/(1 + 1e-6)
    close(out[1].stepAdvantages, [0]); // group of one
    close(out[2].stepAdvantages, [0]); // (0.7 − 0.7)/(0 + 1e-6)
    close(out[4].stepAdvantages, [0]);
    close(out[5].stepAdvantages, [1.7320488]); // 1.5/(0.8660254 + 1e-6)
    for (const i of [6, 7, 8]) close(out[i].stepAdvantages, [-0.5773496]); // −0.5/(0.8660254 + 1e-6)
    for (const [i, a] of out.entries()) assertBroadcast(a, batch[i].traj);
    assert.equal(out[0].stepReturns, undefined);
  });
});

describe("rloo", () => {
  // g1: returns 3, 1, 2. Â_i = R_i − mean_{j≠i} R_j.
  const g1 = [3, 1, 2].map((r, i) => traj(`r${i}`, "g1", [{ r, L: 2, done: true }]));
  const single = traj("s", "g2", [
    { r: 0, L: 1 },
    { r: 4, L: 1, done: true },
  ]);
  const equal = [1, 1].map((r, i) => traj(`e${i}`, "g3", [{ r, L: 1, done: true }]));
  const batch = [...g1, single, ...equal].map((t) => valued(t));

  it("leave-one-out baseline; singleton and equal returns → 0", () => {
    const out = rlooEstimator.estimate(batch, { gamma: 1, lambda: 1 });
    close(out[0].stepAdvantages, [1.5]); // 3 − (1 + 2)/2
    close(out[1].stepAdvantages, [-1.5]); // 1 − (3 + 2)/2
    close(out[2].stepAdvantages, [0]); // 2 − (3 + 1)/2
    close(out[3].stepAdvantages, [0, 0]); // no other episode in its group
    close(out[4].stepAdvantages, [0]); // 1 − 1
    close(out[5].stepAdvantages, [0]);
    for (const [i, a] of out.entries()) assertBroadcast(a, batch[i].traj);
  });
});

describe("gigpo", () => {
  // Group g (γ = 0.5):
  //   X: states A → B → C, r = [0, 0, 1] (done), R_X = 1, step returns G = [0.25, 0.5, 1]
  //   Y: states A → D,     r = [0, 0]    (done), R_Y = 0, G = [0, 0]
  // Group h: Z visits A (r = 0, R_Z = 0); W visits S twice, r = [0, 1], R_W = 1, G = [0.5, 1].
  // Group k: two identical one-step episodes (equal returns).
  const X = traj("X", "g", [
    { r: 0, L: 2, key: "A" },
    { r: 0, L: 1, key: "B" },
    { r: 1, L: 1, key: "C", done: true },
  ]);
  const Y = traj("Y", "g", [
    { r: 0, L: 1, key: "A" },
    { r: 0, L: 3, key: "D", done: true },
  ]);
  const Z = traj("Z", "h", [{ r: 0, L: 1, key: "A", done: true }]);
  const W = traj("W", "h", [
    { r: 0, L: 1, key: "S" },
    { r: 1, L: 1, key: "S", done: true },
  ]);
  const K = [0, 1].map((i) => traj(`K${i}`, "k", [{ r: 1, L: 1, key: "K", done: true }]));
  const batch = [X, Y, Z, W, ...K].map((t) => valued(t));

  it("episode group advantage + ω · anchor-state step advantage", () => {
    const out = gigpoEstimator.estimate(batch, { gamma: 0.5, lambda: 1 });
    // Episode level, g: mean 0.5, std 0.5 → X: 0.5/0.500001 = 0.999998, Y: −0.999998; h likewise (Z −, W +).
    // Step level, anchor (g, A) = {X: 0.25, Y: 0}: mean 0.125, std 0.125 → ±0.125/0.125001 = ±0.999992.
    // (g, B), (g, C), (g, D) are singletons → 0. (h, A) is Z alone (X, Y are another group) → 0.
    // (h, S) = {W_0: 0.5, W_1: 1}: mean 0.75, std 0.25 → ∓0.25/0.250001 = ∓0.999996.
    close(out[0].stepAdvantages, [1.99999, 0.999998, 0.999998]); // [0.999998 + 0.999992, +0, +0]
    close(out[1].stepAdvantages, [-1.99999, -0.999998]);
    close(out[2].stepAdvantages, [-0.999998]);
    close(out[3].stepAdvantages, [0.000002, 1.999994]); // [0.999998 − 0.999996, 0.999998 + 0.999996]
    // Group k: equal returns at both levels → 0.
    close(out[4].stepAdvantages, [0]);
    close(out[5].stepAdvantages, [0]);
    for (const [i, a] of out.entries()) assertBroadcast(a, batch[i].traj);
  });
});

describe("reinforce++", () => {
  it("the trajectory return on every step and token; whitening is the learner's, over steps", () => {
    const a = traj("a", "g", [
      { r: 0, L: 2 },
      { r: 1, L: 1, done: true },
    ]);
    const b = traj("b", "g", [{ r: 0.5, L: 3, done: true }]);
    const out = reinforcePlusPlusEstimator.estimate([valued(a), valued(b)], { gamma: 1, lambda: 1 });
    close(out[0].stepAdvantages, [1, 1]); // R_a = 0 + 1
    close(out[1].stepAdvantages, [0.5]);
    assertBroadcast(out[0], a);
    assertBroadcast(out[1], b);
    assert.equal(reinforcePlusPlusEstimator.whitenOver, "steps");
    // Whitened over the batch's steps [1, 1, 0.5]: mean 2.5/3 = 0.833333,
    // var = (2·(1/6)² + (1/3)²)/3 = (6/36)/3 = 1/18, std = 0.2357023;
    // 1 → (1/6)/0.2357023 = 0.7071068 (= √½), 0.5 → (−1/3)/0.2357023 = −1.4142136 (= −√2).
    const w = whiten(out.map((x) => x.stepAdvantages));
    close(w[0], [Math.SQRT1_2, Math.SQRT1_2]);
    close(w[1], [-Math.SQRT2]);
  });
});

describe("whiten", () => {
  it("joint mean 0 / std 1 over a ragged batch, inputs untouched", () => {
    const input = [Float32Array.of(1, 2), Float32Array.of(3), new Float32Array(0), Float32Array.of(4, 5)];
    const w = whiten(input);
    // mean 3, population std √((4 + 1 + 0 + 1 + 4)/5) = √2 = 1.4142136
    close(w[0], [-Math.SQRT2, -Math.SQRT1_2]);
    close(w[1], [0]);
    assert.equal(w[2].length, 0);
    close(w[3], [Math.SQRT1_2, Math.SQRT2]);
    close(input[0], [1, 2]);
  });

  it("an all-equal batch whitens to 0 (not NaN); an empty batch stays empty", () => {
    close(whiten([Float32Array.of(2, 2), Float32Array.of(2)])[0], [0, 0]);
    assert.deepEqual(whiten([]), []);
  });
});

describe("registry", () => {
  it("holds every estimator of the CRD with its contract", () => {
    assert.deepEqual([...estimatorNames].sort(), [...ESTIMATORS].sort());
    const contract = Object.fromEntries(
      estimatorNames.map((n) => {
        const e = getEstimator(n);
        return [n, [e.name, e.critic, e.whitenOver, e.grouped, e.defaults.gamma, e.defaults.lambda]];
      }),
    );
    assert.deepEqual(contract, {
      "step-gae": ["step-gae", "step", "steps", false, 0.99, 1],
      "token-gae": ["token-gae", "token", "tokens", false, 1, 0.95],
      grpo: ["grpo", "none", "none", true, 1, 1],
      gigpo: ["gigpo", "none", "none", true, 0.95, 1],
      rloo: ["rloo", "none", "steps", true, 1, 1],
      "reinforce++": ["reinforce++", "none", "steps", false, 1, 1],
    });
  });

  it("an unknown name names the field and the known estimators", () => {
    // biome-ignore lint/suspicious/noExplicitAny: deliberately outside the Estimator type
    assert.throws(() => getEstimator("ppo" as any), /spec\.algorithm\.estimator.*"ppo".*step-gae, token-gae, grpo, gigpo, rloo, reinforce\+\+/);
    // biome-ignore lint/suspicious/noExplicitAny: a prototype member must not resolve
    assert.throws(() => getEstimator("toString" as any), /unknown estimator/);
  });
});
