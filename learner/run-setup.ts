// What one embedded run is made of — backend, environment, tokenizer, learner and the evaluation sets —
// built in one place, so that a run and a warm start made for it (learner/warm-start.ts) are the same
// model on the same tasks.
import type { StepPOJob } from "../crds/steppojob.ts";
import { asTokenPolicy, type TokenPolicy } from "../policy/decoding.ts";
import type { Environment } from "../envs/environment.ts";
import { openEnvironment } from "../envs/registry.ts";
import { selectBackend } from "../policy/backend.ts";
import { evalSets, successRate } from "./evaluation.ts";
import { Learner } from "./learner.ts";
import { type ModelConfig, modelConfig } from "../policy/model.ts";
import type { CurvePoint } from "./report.ts";
import { Tokenizer } from "../policy/tokenizer.ts";

export interface RunSetup {
  backend: string;
  env: Environment;
  tokenizer: Tokenizer;
  config: ModelConfig;
  learner: Learner;
  policy: TokenPolicy;
  /**
   * Success rates on the job's fixed evaluation sets (all of them, or the ones named); sets in `known`
   * were already measured with the current weights and are taken from it instead of run again.
   */
  evaluate: (names?: string[], known?: Record<string, number>) => Promise<Record<string, number>>;
}

export async function setUpRun(job: StepPOJob, log: (line: string) => void): Promise<RunSetup> {
  const spec = job.spec;
  const backend = await selectBackend(spec.learner.backend, log);
  const env = await openEnvironment(spec.environment, spec.seed);
  const tokenizer = new Tokenizer(env.vocabulary());
  const config = modelConfig(spec.model, tokenizer.size);
  const learner = new Learner(config, spec);
  const policy = asTokenPolicy(learner.model);
  const sets = evalSets(env, spec.seed, spec.training.evalEpisodes);
  log(`evaluation sets: ${sets.map((s) => `${s.name} ${s.tasks.length} ${s.decoding === "greedy" ? "distinct tasks, greedy" : "tasks, sampled"}`).join("; ")}`);
  const evaluate = async (names?: string[], known: Record<string, number> = {}) => {
    const out: Record<string, number> = {};
    for (const s of sets) {
      if (names && !names.includes(s.name)) continue;
      out[s.name] = known[s.name] ?? (await successRate(env, s, policy, tokenizer, spec, config.contextLength));
    }
    return out;
  };
  return { backend, env, tokenizer, config, learner, policy, evaluate };
}

/**
 * The greedy test success the curve already holds for `version`, as `evaluate`'s `known`: the final
 * evaluation follows the last update's test evaluation with the same weights on the same tasks, and
 * greedy decoding would repeat it exactly (a sixth of a bench:algos training's time).
 */
export function measuredAt(curve: CurvePoint[], version: number): Record<string, number> {
  const last = curve.at(-1);
  return last?.update === version && last.testSuccess !== null ? { test: last.testSuccess } : {};
}
