import { join } from "node:path";
import { loadJobFile } from "../crds/job-spec.ts";
import { openEnvironment } from "../envs/registry.ts";
import { Learner } from "../learner/learner.ts";
import { asTokenPolicy } from "../policy/decoding.ts";
import { selectBackend, tf } from "../policy/backend.ts";
import { modelConfig } from "../policy/model.ts";
import { Tokenizer } from "../policy/tokenizer.ts";
import { sampleUpdateBatch } from "../bench/training-step/quickstart-batch.ts";
import { minibatchGradients } from "../learner/micro-batch.ts";
import { ppoGradients } from "../learner/ppo-loss.ts";
await selectBackend("wasm", () => {});
const job = loadJobFile(join(import.meta.dirname, "..", "examples", "quickstart.yaml"));
const env = await openEnvironment(job.spec.environment, job.spec.seed);
const tokenizer = new Tokenizer(env.vocabulary());
const config = modelConfig(job.spec.model, tokenizer.size);
const learner = new Learner(config, job.spec);
const batch = await sampleUpdateBatch(env, asTokenPolicy(learner.model, config.vocabSize), tokenizer, job, config.contextLength);
const { samples } = learner.buildSamples(batch);
const mb = samples.slice(0, 64);
const len = mb.map((s) => s.contextIds.length + s.actionIds.length);
console.log("mean len", len.reduce((a, b) => a + b) / len.length, "max", Math.max(...len));
const cfg = { ratio: "step", clip: 0.05, valueCoef: 0.5, entropyCoef: 0, klCoef: 0, importanceCap: 2, temperature: 1 } as any;
function once(budget: number) {
  const t0 = performance.now();
  const { grads } = minibatchGradients(mb, (p, norm) => ppoGradients(learner.model, p, cfg, norm), budget);
  for (const g of Object.values(grads)) g.dataSync();
  tf.dispose(Object.values(grads));
  return performance.now() - t0;
}
for (const b of [1e9, 160000, 80000, 40000, 20000, 10000]) {
  once(b);
  const xs = [0, 1, 2, 3, 4, 5, 6].map(() => once(b)).sort((a, b) => a - b);
  console.log("budget", b, "median ms", xs[3].toFixed(1));
}
// uniform-length: same steps truncated so all are the mean length → the padding-free cost
