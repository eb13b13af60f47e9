// What one training minibatch costs on the wasm backend → bench/results/training-step.json:
//  1. the model's matrix products with tfjs's own gradient (tf.matMul, whose backward pass passes the
//     transposes as transposeA/transposeB flags) against policy/matmul.ts (explicit transposes, plain
//     products; batched products as one depthwise convolution), on the shapes of one tiny-model minibatch:
//     32 steps of 101 tokens (3232 rows), dModel 64, 4 heads, a 125-word vocabulary; value and both gradients;
//  2. one behaviour-cloning minibatch of 32 steps of ragged length (contexts of 40–100 tokens, as in
//     textworld) packed whole against summed over length-sorted micro-batches (learner/micro-batch.ts);
//  3. utilisation: the counted FLOPs of one full PPO minibatch of the quickstart model (64 step samples,
//     forward + backward of every product, attention included) per second, over the GFLOP/s of a large
//     square 2-D tf.matMul measured alternately with it in the same run (wasm's best case);
//  4. the previous implementation against this one (bench/baseline.ts: a worktree of the commit before the
//     speed change, imported into this process): one PPO update of a quickstart batch (32 episodes) and one
//     behaviour-cloning epoch of the quickstart's 600 demonstrations, and one rollout step of KV-cached
//     decoding (the batch's 32 first contexts, maxStepTokens greedy tokens each: tokens per second).
// The two versions of each alternate rep by rep so they share the machine's noise; medians and ratios.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { selectBackend, tf } from "../policy/backend.ts";
import { matMul, matMulTransposed } from "../policy/matmul.ts";
import { PolicyModel } from "../policy/model.ts";
import { minibatchGradients } from "../learner/micro-batch.ts";
import { cloneGradients, type LossConfig, ppoGradients } from "../learner/ppo-loss.ts";
import { packSteps, type StepSample } from "../learner/step-batch.ts";
import { raggedSteps, scoredSteps } from "./training-step/samples.ts";
import { oldVsNew } from "./training-step/old-vs-new.ts";
import { runHeader } from "./support/run-header.ts";

const REPS = Number(process.env.STEPPO_BENCH_REPS ?? 9);
/** Reps of the whole-update and whole-epoch comparison (each rep runs both versions once). */
const REPS_SIDE_BY_SIDE = Number(process.env.STEPPO_BENCH_SIDE_BY_SIDE_REPS ?? 3);
const ROWS = 3232;
const D = 64;
const VOCAB = 125;

type Product = (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;

interface Case {
  name: string;
  a: number[];
  b: number[];
  tfjs: Product;
  ours: Product;
}

const plain: Product = (a, b) => tf.matMul(a, b);
const CASES: Case[] = [
  ...(
    [
      ["embedding (one-hot · tok_emb)", VOCAB, D],
      ["attention qkv", D, 3 * D],
      ["attention output", D, D],
      ["mlp in", D, 4 * D],
      ["mlp out", 4 * D, D],
      ["lm head", D, VOCAB],
    ] as const
  ).map(([name, k, n]) => ({ name, a: [ROWS, k], b: [k, n], tfjs: plain, ours: matMul })),
  { name: "attention scores q·kᵀ", a: [32, 4, 101, 16], b: [32, 4, 101, 16], tfjs: (a, b) => tf.matMul(a, b, false, true), ours: matMulTransposed },
  { name: "attention mix softmax·v", a: [32, 4, 101, 101], b: [32, 4, 101, 16], tfjs: plain, ours: matMul },
];

/** Milliseconds for the value and both gradients of sum(product(a, b)). */
function timeOnce(product: Product, a: tf.Tensor, b: tf.Tensor): number {
  const t0 = performance.now();
  const grads = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(product(x, y)))([a, b]);
  for (const g of grads) g.dataSync();
  const ms = performance.now() - t0;
  tf.dispose(grads);
  return ms;
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)];
}

/** Median ms of one cloning minibatch, packed whole vs summed over micro-batches, alternating. */
function minibatchMs(): { wholeMs: number; microBatchedMs: number; speedup: number } {
  const model = new PolicyModel({ vocabSize: VOCAB, dModel: D, layers: 2, heads: 4, contextLength: 128 }, 1);
  const samples = raggedSteps();
  const whole = () => tf.dispose(Object.values(cloneGradients(model, packSteps(samples)).grads));
  const micro = () => tf.dispose(Object.values(minibatchGradients(samples, (p, norm) => cloneGradients(model, p, norm)).grads));
  const time = (f: () => void) => {
    const t0 = performance.now();
    f();
    return performance.now() - t0;
  };
  whole(); // the first call of each compiles and allocates
  micro();
  const w: number[] = [];
  const m: number[] = [];
  for (let r = 0; r < REPS; r++) {
    w.push(time(whole));
    m.push(time(micro));
  }
  model.dispose();
  return { wholeMs: median(w), microBatchedMs: median(m), speedup: median(w) / median(m) };
}

/** ms of one plain n×n·n×n tf.matMul: the best the backend does, the denominator of `utilisation`. */
function squareProductMs(a: tf.Tensor, b: tf.Tensor): number {
  const t0 = performance.now();
  const y = tf.matMul(a, b);
  y.dataSync();
  const ms = performance.now() - t0;
  y.dispose();
  return ms;
}

/**
 * FLOPs of the products of forward + backward on packed micro-batches of `samples` (the micro-batching of
 * learner/micro-batch.ts: length-sorted, 8 steps each): per layer q/k/v, attention scores and mix, output
 * projection and the MLP at every position; the heads at the loss's positions only; backward = 2 × forward.
 * The count is of the full model at every position even where the learner skips work (the last layer runs only at
 * the positions the loss reads: PolicyModel.featuresAt), so work not done counts as work done faster.
 * The count stays that of 8-step micro-batches whatever MICRO_BATCH_BUDGET allows: larger micro-batches pad more,
 * and padding is not work to be credited.
 */
export function minibatchFlops(samples: StepSample[], d: number, layers: number, vocab: number, microBatch = 8): number {
  const sorted = [...samples].sort((x, y) => x.contextIds.length + x.actionIds.length - (y.contextIds.length + y.actionIds.length));
  let forward = 0;
  for (let i = 0; i < sorted.length; i += microBatch) {
    const mb = sorted.slice(i, i + microBatch);
    const B = mb.length;
    const T = Math.max(...mb.map((x) => x.contextIds.length + x.actionIds.length));
    const P = mb.reduce((n, x) => n + x.actionIds.length, 0);
    const perLayer = 2 * B * T * d * (3 * d + d + 8 * d) + 2 * 2 * B * T * T * d; // projections + MLP; scores + mix (all heads)
    forward += layers * perLayer + 2 * P * d * (vocab + 1);
  }
  return 3 * forward;
}

/**
 * One PPO minibatch of the quickstart model (64 samples) and a 1024³ tf.matMul, alternating rep by rep so that
 * both see the same machine load: medians, GFLOP/s of each, and the minibatch's utilisation of the product's.
 */
function ppoUtilisation(n = 1024): { samples: number; gflop: number; ms: number; gflops: number; peakGflops: number; utilisation: number } {
  const vocab = 297; // the quickstart's vocabulary
  const model = new PolicyModel({ vocabSize: vocab, dModel: D, layers: 2, heads: 4, contextLength: 128 }, 1);
  const samples = scoredSteps(64, vocab);
  const cfg: LossConfig = { ratio: "step", clip: 0.05, valueCoef: 0.5, entropyCoef: 0, klCoef: 0, importanceCap: 2, temperature: 1 };
  const once = () => {
    const t0 = performance.now();
    const { grads } = minibatchGradients(samples, (p, norm) => ppoGradients(model, p, cfg, norm));
    for (const g of Object.values(grads)) g.dataSync();
    tf.dispose(Object.values(grads));
    return performance.now() - t0;
  };
  const a = tf.randomNormal([n, n], 0, 1, "float32", 3);
  const b = tf.randomNormal([n, n], 0, 1, "float32", 4);
  once();
  squareProductMs(a, b);
  const minibatch: number[] = [];
  const square: number[] = [];
  for (let r = 0; r < REPS; r++) {
    minibatch.push(once());
    square.push(squareProductMs(a, b));
  }
  tf.dispose([a, b]);
  model.dispose();
  const ms = median(minibatch);
  const peakGflops = (2 * n ** 3) / 1e6 / median(square);
  const gflop = minibatchFlops(samples, D, 2, vocab) / 1e9;
  const gflops = gflop / (ms / 1000);
  return { samples: samples.length, gflop, ms, gflops, peakGflops, utilisation: gflops / peakGflops };
}

export async function main(): Promise<void> {
  const backend = await selectBackend("wasm", () => {});
  const rows = CASES.map((c) => {
    const a = tf.randomNormal(c.a, 0, 1, "float32", 1);
    const b = tf.randomNormal(c.b, 0, 1, "float32", 2);
    timeOnce(c.tfjs, a, b);
    timeOnce(c.ours, a, b);
    const tfjs: number[] = [];
    const ours: number[] = [];
    for (let r = 0; r < REPS; r++) {
      tfjs.push(timeOnce(c.tfjs, a, b));
      ours.push(timeOnce(c.ours, a, b));
    }
    tf.dispose([a, b]);
    const row = { product: c.name, a: c.a, b: c.b, tfjsMs: median(tfjs), oursMs: median(ours), speedup: median(tfjs) / median(ours) };
    process.stderr.write(`  ${c.name}: tf.matMul ${row.tfjsMs.toFixed(1)} ms, policy/matmul.ts ${row.oursMs.toFixed(1)} ms (×${row.speedup.toFixed(1)})\n`);
    return row;
  });
  const totals = { tfjsMs: rows.reduce((s, r) => s + r.tfjsMs, 0), oursMs: rows.reduce((s, r) => s + r.oursMs, 0) };
  const minibatch = minibatchMs();
  const ppo = ppoUtilisation();
  const { peakGflops } = ppo;
  process.stderr.write(
    `  square 1024³ tf.matMul ${peakGflops.toFixed(1)} GFLOP/s; one PPO minibatch (64 steps) ${ppo.ms.toFixed(0)} ms for ${ppo.gflop.toFixed(2)} GFLOP: ` +
      `${ppo.gflops.toFixed(1)} GFLOP/s, utilisation ${ppo.utilisation.toFixed(2)}\n`,
  );
  const sideBySide = await oldVsNew(REPS_SIDE_BY_SIDE, (line) => process.stderr.write(`  ${line}\n`));
  const { update, cloningEpoch, decoding } = sideBySide;
  process.stderr.write(
    `  against ${sideBySide.baseline}: update ×${update.speedup.toFixed(2)} (reps' median ×${update.repSpeedup.toFixed(2)}, CPU time ×${update.cpuSpeedup.toFixed(2)}), ` +
      `cloning epoch ×${cloningEpoch.speedup.toFixed(2)} (reps' median ×${cloningEpoch.repSpeedup.toFixed(2)}, CPU time ×${cloningEpoch.cpuSpeedup.toFixed(2)}), ` +
      `decoding ${decoding.previousTokensPerSecond.toFixed(0)} → ${decoding.currentTokensPerSecond.toFixed(0)} tokens/s (×${decoding.speedup.toFixed(2)})\n`,
  );
  process.stderr.write(
    `  the ${rows.length} products together: ${totals.tfjsMs.toFixed(0)} → ${totals.oursMs.toFixed(0)} ms (×${(totals.tfjsMs / totals.oursMs).toFixed(1)}); ` +
      `one ragged cloning minibatch: whole ${minibatch.wholeMs.toFixed(0)} ms, micro-batched ${minibatch.microBatchedMs.toFixed(0)} ms (×${minibatch.speedup.toFixed(2)})\n`,
  );
  const out = join(dirname(fileURLToPath(import.meta.url)), "results", "training-step.json");
  mkdirSync(dirname(out), { recursive: true });
  const json = {
    benchmark: "training-step",
    description:
      "products: value + both gradients of each matrix product of a tiny-model training minibatch (32 steps × 101 tokens), tfjs's tf.matMul " +
      "gradient (transpose flags) vs policy/matmul.ts (explicit transposes). minibatch: one behaviour-cloning minibatch of 32 steps with " +
      "contexts of 40–100 tokens (forward + backward), packed whole vs summed over length-sorted micro-batches (learner/micro-batch.ts). " +
      "utilisation: counted FLOPs of one PPO minibatch of the quickstart model (64 steps, forward + backward of every product) per second over " +
      "peakGflops, a 1024³ tf.matMul in the same run (the two alternate rep by rep). previousImplementation: the commit before the speed change (a git worktree) against this " +
      "code, one PPO update of a 32-episode quickstart batch, one cloning epoch of the quickstart's 600 demonstrations and KV-cached decoding of " +
      "one rollout step (32 contexts × maxStepTokens greedy tokens), alternating; for the update and the epoch also the median of the reps' own " +
      "ratios and the ratio of median process CPU times (user + system), which other jobs on the machine inflate far less than wall time. " +
      `Each pair alternates rep by rep; medians of ${REPS} reps.`,
    ...runHeader(),
    backend,
    reps: REPS,
    products: rows,
    totals: { ...totals, speedup: totals.tfjsMs / totals.oursMs },
    minibatch,
    peakGflops,
    ppoMinibatch: ppo,
    utilisation: ppo.utilisation,
    previousImplementation: sideBySide,
  };
  writeFileSync(out, `${JSON.stringify(json, null, 2)}\n`);
}
