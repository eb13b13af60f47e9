// Greedy evaluation on a fixed task set per split/family, so "initial" and "final" success rates of a
// run (and of two runs with the same seed) are measured on the very same tasks.
import { Rng } from "../core/rng.ts";
import type { Trajectory } from "../core/trajectory.ts";
import type { StepPOJobSpec } from "../crds/steppojob.ts";
import { type EpisodeRequest, runEpisodes, type TokenPolicy } from "../workers/agent-loop.ts";
import type { Environment, Split, Task } from "../envs/environment.ts";
import type { AgentTokenizer } from "../policy/agent-tokenizer.ts";

/** The validation set's name among the evaluation sets (and the key of its success rate). */
export const VALIDATION_SET = "validation";

export interface EvalSet {
  name: string;
  tasks: Task[];
  /** Greedy decoding, or sampling at the rollout temperature with a fixed seed (the policy RL trains). */
  decoding: "greedy" | "sampled";
}

/**
 * "train": in-domain training questions, sampled at the rollout temperature — the success rate of the
 * policy RL optimises. "test": held-out in-domain questions, greedy. "validation": the other held-out
 * in-domain split, evaluated exactly as test (greedy, distinct tasks), for choosing settings so that test
 * stays untouched by tuning; only where the environment serves it (envs/environment.ts `splits`). One
 * greedy set per OOD family.
 *
 * Every greedy set holds distinct tasks (drawn without replacement, by task id): greedy decoding is
 * deterministic, so a repeated task adds no information, only false confidence — with replacement, 100
 * draws from a 21-question split measured 21 questions. Where a split has fewer than `episodes` distinct
 * tasks the set is smaller, and `size` says so. The sampled train set may repeat tasks (its samples differ).
 */
export function evalSets(env: Environment, seed: number, episodes: number): EvalSet[] {
  const sets: EvalSet[] = [];
  const draw = (split: Split, family: string | undefined, salt: number, distinct: boolean) => {
    const rng = new Rng(seed * 7919 + salt);
    if (!distinct) return Array.from({ length: episodes }, () => env.sampleTask(rng, split, family));
    return distinctTasks(() => env.sampleTask(rng, split, family), episodes);
  };
  sets.push({ name: "train", tasks: draw("train", undefined, 2, false), decoding: "sampled" });
  sets.push({ name: "test", tasks: draw("test", undefined, 1, true), decoding: "greedy" });
  // Its own salt: every other set draws the very tasks it drew before validation existed.
  if (env.splits.includes("validation")) sets.push({ name: VALIDATION_SET, tasks: draw("validation", undefined, 3, true), decoding: "greedy" });
  env.families.ood.forEach((family, i) => {
    sets.push({ name: family, tasks: draw("ood", family, 100 + i, true), decoding: "greedy" });
  });
  return sets;
}

/**
 * Up to `count` tasks with distinct ids from `sample`. Stops early once `patience` draws in a row found
 * nothing new (the split is exhausted, as far as a sampler can tell), so a small split ends the search.
 */
export function distinctTasks(sample: () => Task, count: number, patience = 20 * count): Task[] {
  const byId = new Map<string, Task>();
  let misses = 0;
  while (byId.size < count && misses < patience) {
    const t = sample();
    if (byId.has(t.id)) misses++;
    else {
      byId.set(t.id, t);
      misses = 0;
    }
  }
  return [...byId.values()];
}

/** Episodes an evaluation runs (and decodes) together. */
export const EVAL_BATCH = 50;

/**
 * The episodes of one evaluation: each of the set's tasks once, greedy or sampled as the set says, with a
 * fixed sampling seed (the same samples for the same weights, whenever evaluated). `faults`: episodes an
 * environment fault ended, which are not among the trajectories.
 */
export async function evalEpisodes(
  env: Environment,
  set: EvalSet,
  policy: TokenPolicy,
  tokenizer: AgentTokenizer,
  spec: StepPOJobSpec,
  contextLength: number,
): Promise<{ trajectories: Trajectory[]; faults: number }> {
  const tasks = set.tasks;
  const trajectories: Trajectory[] = [];
  let faults = 0;
  const rng = new Rng(0x5eed);
  for (let start = 0; start < tasks.length; start += EVAL_BATCH) {
    const requests: EpisodeRequest[] = tasks
      .slice(start, start + EVAL_BATCH)
      .map((task, i) => ({ task, groupId: `eval${start + i}`, trajId: `eval${start + i}` }));
    const trajs = await runEpisodes(env, requests, policy, tokenizer, rng, {
      workerId: "eval",
      policyVersion: 0,
      maxSteps: spec.environment.maxSteps,
      maxStepTokens: spec.environment.maxStepTokens,
      contextLength,
      temperature: spec.rollout.temperature,
      greedy: set.decoding === "greedy",
      onFault: () => faults++,
    });
    trajectories.push(...trajs);
  }
  return { trajectories, faults };
}

/** The share of the set's episodes that succeed; an episode an environment fault ended is not the policy's failure, so it leaves the denominator. */
export async function successRate(
  env: Environment,
  set: EvalSet,
  policy: TokenPolicy,
  tokenizer: AgentTokenizer,
  spec: StepPOJobSpec,
  contextLength: number,
): Promise<number> {
  const { trajectories, faults } = await evalEpisodes(env, set, policy, tokenizer, spec, contextLength);
  const scored = set.tasks.length - faults;
  return scored > 0 ? trajectories.filter((t) => t.success).length / scored : 0;
}
