// Adam's two implementations (learner/adam.ts): element by element in JS (the wasm backend) and as tensor
// ops (the native backends) take the same steps, clipped or not, to float tolerance.
import assert from "node:assert/strict";
import { before, test } from "node:test";
import { selectBackend, tf } from "../../policy/backend.ts";
import { Adam } from "../../learner/adam.ts";

before(async () => {
  await selectBackend("wasm", () => {});
});

const shapes: [string, number[]][] = [
  ["w", [5, 7]],
  ["b", [7]],
  ["frozen", [3]], // never given a gradient: left alone
];

function params(seed: number): Map<string, tf.Variable> {
  return new Map(shapes.map(([name, shape], i) => [name, tf.variable(tf.randomNormal(shape, 0, 1, "float32", seed + i))]));
}

function assertClose(got: tf.Tensor, want: tf.Tensor, what: string): void {
  const [g, w] = [got.dataSync(), want.dataSync()];
  for (let i = 0; i < w.length; i++) assert.ok(Math.abs(g[i] - w[i]) <= 1e-6 * (1 + Math.abs(w[i])), `${what}[${i}]: ${g[i]} vs ${w[i]}`);
}

test("Adam in JS takes the tensor ops' steps: moments, parameters and the gradient norm, with and without clipping", () => {
  const config = { learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, maxGradNorm: 1 };
  const [pj, pt] = [params(1), params(1)];
  const [js, ts] = [new Adam(pj, { ...config }), new Adam(pt, { ...config })];
  for (let step = 0; step < 4; step++) {
    // Step 0 and 2 within the clip norm, 1 and 3 far beyond it.
    const scale = step % 2 === 0 ? 0.05 : 10;
    const grads = { w: tf.randomNormal([5, 7], 0, scale, "float32", 10 + step), b: tf.randomNormal([7], 0, scale, "float32", 20 + step) };
    const nj = js.applyWith(grads, "js");
    const nt = ts.applyWith(grads, "tensors");
    assert.ok(Math.abs(nj - nt) <= 1e-5 * nt, `norm ${nj} vs ${nt}`);
    tf.dispose(Object.values(grads));
  }
  for (const [name] of shapes) {
    assertClose(pj.get(name)!, pt.get(name)!, `parameter ${name}`);
    assertClose(js.m.get(name)!, ts.m.get(name)!, `m ${name}`);
    assertClose(js.v.get(name)!, ts.v.get(name)!, `v ${name}`);
  }
  assert.equal(js.step, 4);
  assert.throws(() => js.applyWith({ w: tf.fill([5, 7], Number.NaN) }, "js"), /non-finite/);
  for (const p of [...pj.values(), ...pt.values()]) p.dispose();
  js.dispose();
  ts.dispose();
});

test("Adam in JS leaves no tensors behind", () => {
  const p = params(3);
  const adam = new Adam(p, { learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, maxGradNorm: 1 });
  const grads = { w: tf.ones([5, 7]), b: tf.ones([7]) };
  const before = tf.memory().numTensors;
  adam.applyWith(grads, "js");
  assert.equal(tf.memory().numTensors, before);
  tf.dispose(Object.values(grads));
  for (const v of p.values()) v.dispose();
  adam.dispose();
});

test("Adam's learningRateScales: a parameter scaled ×10 moves ten times as far as with no scale, in JS and as tensor ops", () => {
  const config = { learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, maxGradNorm: 100 };
  for (const how of ["js", "tensors"] as const) {
    const [plain, scaled] = [params(3), params(3)];
    const before = plain.get("b")!.dataSync().slice();
    const a = new Adam(plain, { ...config });
    const s = new Adam(scaled, { ...config, learningRateScales: new Map([["b", 10]]) });
    for (let step = 0; step < 3; step++) {
      const grads = { w: tf.randomNormal([5, 7], 0, 1, "float32", 30 + step), b: tf.randomNormal([7], 0, 1, "float32", 40 + step) };
      a.applyWith(grads, how);
      s.applyWith(grads, how);
      tf.dispose(Object.values(grads));
    }
    // Same gradients, same moments: the scaled parameter's total displacement is exactly ten times the plain one's.
    const [dp, ds] = [plain.get("b")!.dataSync(), scaled.get("b")!.dataSync()];
    for (let i = 0; i < before.length; i++) {
      const want = 10 * (dp[i] - before[i]);
      assert.ok(Math.abs(ds[i] - before[i] - want) <= 1e-5 * (1 + Math.abs(want)), `${how} b[${i}]: ${ds[i] - before[i]} vs ${want}`);
    }
    assertClose(scaled.get("w")!, plain.get("w")!, `${how}: unscaled w`);
  }
});
