// What one embedded run is made of — backend, environment, tokenizer, learner and the evaluation sets —
// built in one place, so that a run and a warm start made for it (learner/warm-start.ts) are the same
// model on the same tasks.
import type { StepPOJob } from "../crds/steppojob.ts";
import type { TokenPolicy } from "../workers/agent-loop.ts";
import type { Environment } from "../workers/environment.ts";
import { openEnvironment } from "../workers/envs/registry.ts";
import { selectBackend } from "./backend.ts";
import { evalSets, successRate } from "./evaluation.ts";
import { Learner } from "./learner.ts";
import { type ModelConfig, modelConfig, type PolicyModel } from "./model.ts";
import { Tokenizer } from "./tokenizer.ts";

export function asTokenPolicy(model: PolicyModel): TokenPolicy {
  return { vocabSize: model.config.vocabSize, decoder: (contexts) => model.decoder(contexts) };
}

export interface RunSetup {
  backend: string;
  env: Environment;
  tokenizer: Tokenizer;
  config: ModelConfig;
  learner: Learner;
  policy: TokenPolicy;
  /** Success rates on the job's fixed evaluation sets (all of them, or the ones named). */
  evaluate: (names?: string[]) => Promise<Record<string, number>>;
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
  const evaluate = async (names?: string[]) => {
    const out: Record<string, number> = {};
    for (const s of sets) if (!names || names.includes(s.name)) out[s.name] = await successRate(env, s, policy, tokenizer, spec, config.contextLength);
    return out;
  };
  return { backend, env, tokenizer, config, learner, policy, evaluate };
}
