// Where one PPO minibatch of the quickstart model spends its time on the wasm backend: tf.profile's kernel
// times summed by kernel name, plus wall times of the forward pass alone, forward + backward, Adam and the
// scoring pass. `node --import tsx bench/training-step/profile.ts`
import { selectBackend, tf } from "../../policy/backend.ts";
import { PolicyModel } from "../../policy/model.ts";
import { minibatchGradients } from "../../learner/micro-batch.ts";
import { type LossConfig, ppoGradients } from "../../learner/ppo-loss.ts";
import { Adam } from "../../learner/adam.ts";
import { printKernelTable } from "./kernel-table.ts";
import { scoredSteps } from "./samples.ts";

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)];
}

await selectBackend("wasm", () => {});
const vocab = 297;
const model = new PolicyModel({ vocabSize: vocab, dModel: 64, layers: 2, heads: 4, contextLength: 128 }, 1);
const samples = scoredSteps(64, vocab);
const cfg: LossConfig = { ratio: "step", clip: 0.05, valueCoef: 0.5, entropyCoef: 0, klCoef: 0, importanceCap: 2, temperature: 1 };
const step = () => {
  const { grads } = minibatchGradients(samples, (p, norm) => ppoGradients(model, p, cfg, norm));
  for (const g of Object.values(grads)) g.dataSync();
  return grads;
};
tf.dispose(Object.values(step()));
const reps = Number(process.env.REPS ?? 5);
const wall: number[] = [];
for (let r = 0; r < reps; r++) {
  const t0 = performance.now();
  tf.dispose(Object.values(step()));
  wall.push(performance.now() - t0);
}
const adam = new Adam(model.params, { learningRate: 1e-4, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, maxGradNorm: 1 });
const grads = step();
const adamMs: number[] = [];
for (let r = 0; r < reps; r++) {
  const t0 = performance.now();
  adam.apply(grads);
  adamMs.push(performance.now() - t0);
}
tf.dispose(Object.values(grads));
const ids = tf.tensor2d(
  new Int32Array(64 * 101).map((_, i) => 1 + (i % 200)),
  [64, 101],
  "int32",
);
const fwd: number[] = [];
for (let r = 0; r < reps + 1; r++) {
  const t0 = performance.now();
  const f = tf.tidy(() => model.features(ids));
  f.dataSync();
  f.dispose();
  if (r) fwd.push(performance.now() - t0);
}
console.log(`wall: PPO minibatch ${median(wall).toFixed(0)} ms; Adam ${median(adamMs).toFixed(1)} ms; forward features [64,101] ${median(fwd).toFixed(0)} ms`);

const prof = await tf.profile(() => {
  tf.dispose(Object.values(step()));
});
printKernelTable(prof, process.env.SHAPES ? 40 : undefined);
