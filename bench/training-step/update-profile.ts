// Where one PPO update of the quickstart batch spends its wall time: the scoring pass, each minibatch's
// gradients, Adam, and the tfjs kernels of the whole update by name.
// `node --import tsx bench/training-step/update-profile.ts` (REPS=5, KERNELS=1 for tf.profile's table)
import { join } from "node:path";
import { loadJobFile } from "../../crds/job-spec.ts";
import { openEnvironment } from "../../envs/registry.ts";
import { Learner } from "../../learner/learner.ts";
import { asTokenPolicy } from "../../policy/decoding.ts";
import { selectBackend, tf } from "../../policy/backend.ts";
import { modelConfig } from "../../policy/model.ts";
import { Tokenizer } from "../../policy/tokenizer.ts";
import { printKernelTable } from "./kernel-table.ts";
import { sampleUpdateBatch } from "./quickstart-batch.ts";

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)];
}

await selectBackend("wasm", () => {});
const root = join(import.meta.dirname, "..", "..");
const job = loadJobFile(join(root, "examples", "quickstart.yaml"));
const env = await openEnvironment(job.spec.environment, job.spec.seed);
const tokenizer = new Tokenizer(env.vocabulary());
const config = modelConfig(job.spec.model, tokenizer.size);
const learner = new Learner(config, job.spec);
const batch = await sampleUpdateBatch(env, asTokenPolicy(learner.model, config.vocabSize), tokenizer, job, config.contextLength);
const steps = batch.flatMap((t) => t.steps);
const lengths = steps.map((s) => s.contextIds.length + s.actionIds.length);
console.log(
  `batch: ${batch.length} episodes, ${steps.length} steps, lengths ${Math.min(...lengths)}–${Math.max(...lengths)}, action tokens ${steps.reduce((n, s) => n + s.actionIds.length, 0)}`,
);

// Phase timings by wrapping the learner's pieces.
const times = { score: 0, apply: 0 };
const origBuild = learner.buildSamples.bind(learner);
learner.buildSamples = (b, o) => {
  const t0 = performance.now();
  const r = origBuild(b, o);
  times.score += performance.now() - t0;
  return r;
};
const origApply = learner.optimizer.apply.bind(learner.optimizer);
learner.optimizer.apply = (g) => {
  const t0 = performance.now();
  const r = origApply(g);
  times.apply += performance.now() - t0;
  return r;
};
learner.update(batch);
const reps = Number(process.env.REPS ?? 5);
const rows: { total: number; score: number; apply: number }[] = [];
for (let r = 0; r < reps; r++) {
  times.score = 0;
  times.apply = 0;
  const t0 = performance.now();
  learner.update(batch);
  rows.push({ total: performance.now() - t0, ...times });
}
const m = (k: "total" | "score" | "apply") => median(rows.map((x) => x[k])).toFixed(0);
console.log(
  `update ${m("total")} ms: scoring ${m("score")} ms, Adam ${m("apply")} ms, the rest (minibatch gradients) ${(median(rows.map((x) => x.total - x.score - x.apply))).toFixed(0)} ms`,
);
if (process.env.KERNELS) {
  const prof = await tf.profile(() => {
    learner.update(batch);
  });
  printKernelTable(prof, process.env.SHAPES ? Number(process.env.SHAPES) : undefined);
}
