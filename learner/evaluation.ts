// Greedy evaluation on a fixed task set per split/family, so "initial" and "final" success rates of a
// run (and of two runs with the same seed) are measured on the very same tasks.
import { Rng } from "../common/rng.ts";
import type { StepPOJobSpec } from "../crds/steppojob.ts";
import { type EpisodeRequest, runEpisodes, type TokenPolicy } from "../workers/agent-loop.ts";
import type { Environment, Split, Task } from "../workers/environment.ts";
import type { Tokenizer } from "./tokenizer.ts";

export interface EvalSet {
  name: string;
  tasks: Task[];
}

/** The in-domain test split plus one set per held-out family. */
export function evalSets(env: Environment, seed: number, episodes: number): EvalSet[] {
  const sets: EvalSet[] = [];
  const draw = (split: Split, family: string | undefined, salt: number) => {
    const rng = new Rng(seed * 7919 + salt);
    return Array.from({ length: episodes }, () => env.sampleTask(rng, split, family));
  };
  sets.push({ name: "test", tasks: draw("test", undefined, 1) });
  env.families.ood.forEach((family, i) => {
    sets.push({ name: family, tasks: draw("ood", family, 100 + i) });
  });
  return sets;
}

const EVAL_BATCH = 50;

export async function successRate(
  env: Environment,
  tasks: Task[],
  policy: TokenPolicy,
  tokenizer: Tokenizer,
  spec: StepPOJobSpec,
  contextLength: number,
): Promise<number> {
  let successes = 0;
  const rng = new Rng(0); // unused by greedy decoding, required by the loop's signature
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
      temperature: 1,
      greedy: true,
    });
    successes += trajs.filter((t) => t.success).length;
  }
  return tasks.length ? successes / tasks.length : 0;
}
