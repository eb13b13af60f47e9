// How long are the policy's own episodes? From checkpoints of a benchmark family (a warm start, a trained
// run), plays the family's validation set (greedy, as the benchmark evaluates it) and its sampled train set,
// and reports steps per episode and action tokens per step — what the policy writes, <eos-step> included,
// not what its demonstrations wrote (issue #13: credit assignment matters only where steps are long).
// Never the test split.
//   node --import tsx bench/horizon-probe.ts '{"family":"multihop-qa-long","seed":1,"ckpts":["/tmp/x/warm-start","/tmp/x/steppo"]}'
import type { Trajectory } from "../core/trajectory.ts";
import { restoreLearner } from "../learner/checkpoint.ts";
import { evalEpisodes, evalSets } from "../learner/evaluation.ts";
import { setUpRun } from "../learner/run-setup.ts";
import { ROWS } from "./algos/rows.ts";
import { DEFAULT_SETTINGS, type Family, jobFor } from "./algos/settings.ts";

interface Lengths {
  episodes: number;
  success: number;
  stepsPerEpisode: { mean: number; min: number; max: number };
  tokensPerStep: { mean: number; min: number; max: number; p10: number };
  tokensPerEpisode: number;
}

function lengths(trajs: readonly Trajectory[]): Lengths {
  const steps = trajs.map((t) => t.steps.length);
  const tokens = trajs.flatMap((t) => t.steps.map((s) => s.actionIds.length)).sort((a, b) => a - b);
  const mean = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  return {
    episodes: trajs.length,
    success: mean(trajs.map((t) => (t.success ? 1 : 0))),
    stepsPerEpisode: { mean: mean(steps), min: Math.min(...steps), max: Math.max(...steps) },
    tokensPerStep: { mean: mean(tokens), min: tokens[0], max: tokens[tokens.length - 1], p10: tokens[Math.floor(tokens.length / 10)] },
    tokensPerEpisode: tokens.reduce((s, x) => s + x, 0) / trajs.length,
  };
}

async function main(): Promise<void> {
  const arg = JSON.parse(process.argv[2] ?? "{}") as { family?: Family; seed?: number; ckpts?: string[] };
  const family = arg.family ?? "multihop-qa-long";
  const seed = arg.seed ?? 1;
  const job = jobFor(DEFAULT_SETTINGS, family, ROWS[0], seed);
  const spec = job.spec;
  const { env, tokenizer, learner, policy, config } = await setUpRun(job, () => {});
  const sets = evalSets(env, seed, spec.training.evalEpisodes).filter((s) => s.name === "validation" || s.name === "train");
  const out: Record<string, Record<string, Lengths>> = {};
  for (const ckpt of arg.ckpts ?? []) {
    if (!(await restoreLearner(ckpt, learner, tokenizer, () => {}))) throw new Error(`horizon-probe: no checkpoint in ${ckpt}`);
    out[ckpt] = {};
    for (const set of sets) {
      // The benchmark's own evaluation episodes, so "success" is the success the benchmark reports.
      const { trajectories } = await evalEpisodes(env, set, policy, tokenizer, spec, config.contextLength);
      out[ckpt][`${set.name} (${set.decoding})`] = lengths(trajectories);
    }
  }
  process.stdout.write(`${JSON.stringify({ family, seed, ...out }, null, 2)}\n`);
}

main().catch((err) => {
  process.stderr.write(`horizon-probe: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
