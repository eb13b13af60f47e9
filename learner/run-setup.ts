// What one embedded run is made of — backend, environment, tokenizer, learner and the evaluation sets —
// built in one place, so that a run and a warm start made for it (learner/warm-start.ts) are the same
// model on the same tasks.
import type { StepPOJob } from "../crds/steppojob.ts";
import { asTokenPolicy, type TokenPolicy } from "../policy/decoding.ts";
import type { Environment } from "../envs/environment.ts";
import { openEnvironment } from "../envs/registry.ts";
import { selectBackend } from "../policy/backend.ts";
import { EVAL_BATCH, evalSets, successRate } from "./evaluation.ts";
import { Learner, usesSeparateCritic } from "./learner.ts";
import { type ModelConfig, modelConfig } from "../policy/model.ts";
import type { CurvePoint } from "./report.ts";
import { Tokenizer } from "../policy/tokenizer.ts";
import type { AgentTokenizer } from "../policy/agent-tokenizer.ts";
import { builtInFactory, type PolicyFactory } from "../policy/trainable-policy.ts";
import { loadRunPolicy } from "../policy/hf/hf-run-policy.ts";
import type { HfPolicy } from "../policy/hf/hf-checkpoint.ts";
import { memoryLine } from "../policy/hf/hf-memory.ts";
import { TOOL_CALL_END } from "../envs/action-parser.ts";

export interface RunSetup {
  backend: string;
  env: Environment;
  tokenizer: AgentTokenizer;
  config: ModelConfig;
  learner: Learner;
  policy: TokenPolicy;
  /** spec.model.source's model as loaded, the one the learner trains (learner/hf-export.ts writes it back out). */
  hf?: HfPolicy;
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
  const { tokenizer, config, factory, hf } = await jobModel(job, env, log);
  // The learner hashes the model files it just loaded now (checkpoints record it); workers, which build the
  // same factory through jobModel, never read them twice.
  await factory.identity?.();
  const learner = new Learner(config, spec, factory);
  const policy = asTokenPolicy(learner.model, tokenizer.size);
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
  return { backend, env, tokenizer, config, learner, policy, hf, evaluate };
}

/**
 * The job's model and the tokenizer it reads: spec.model.source's Hugging Face model and its own tokenizer
 * (a step ends at the tool call's closing bracket or the end-of-turn token), else the built-in transformer
 * over the environment's word list. The learner and the rollout worker processes build theirs here alike.
 */
export async function jobModel(
  job: StepPOJob,
  env: Environment,
  log: (line: string) => void,
): Promise<{ tokenizer: AgentTokenizer; config: ModelConfig; factory: PolicyFactory; hf?: HfPolicy }> {
  const spec = job.spec;
  if (spec.model.source !== undefined) {
    const hf = await loadRunPolicy(spec.model, { stopStrings: [TOOL_CALL_END], seed: spec.seed, log });
    const c = hf.llamaConfig;
    const lora = hf.lora ? `, LoRA rank ${hf.lora.rank} α ${hf.lora.alpha} on ${hf.lora.targets.join(", ")}` : "";
    log(
      `model ${spec.model.source}: ${c.modelType}, hidden ${c.hiddenSize}, ${c.layers} layers, ${c.heads}:${c.kvHeads} heads, vocab_size ${c.vocabSize} (tokenizer ${hf.tokenizer.size})${lora}`,
    );
    const params = [...hf.loaded.model.params.values()];
    log(
      memoryLine({
        config: c,
        parameters: params.reduce((n, v) => n + v.size, 0),
        trainable: params.reduce((n, v) => n + (v.trainable ? v.size : 0), 0),
        contextLength: hf.config.contextLength,
        episodesDecoded: spec.rollout.episodesPerUpdate,
        evaluationEpisodes: EVAL_BATCH,
        minibatchSteps: Math.max(spec.algorithm.minibatchSteps, spec.warmup.enabled ? spec.warmup.minibatchSteps : 0),
        maxStepTokens: spec.environment.maxStepTokens,
        klReference: spec.algorithm.klCoef > 0,
        separateCritic: usesSeparateCritic(spec),
      }),
    );
    return { tokenizer: hf.tokenizer, config: hf.config, factory: hf.factory, hf: hf.loaded };
  }
  const tokenizer = new Tokenizer(env.vocabulary());
  const config = modelConfig(spec.model, tokenizer.size);
  return { tokenizer, config, factory: builtInFactory(config, spec.seed) };
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
