// The batch the update benchmarks train on: one update's worth of sampled training episodes of a job (the
// quickstart's 32), from a fixed seed, so that every run and both implementations see the same batch.
import { Rng } from "../../core/rng.ts";
import type { Trajectory } from "../../core/trajectory.ts";
import type { StepPOJob } from "../../crds/steppojob.ts";
import type { Environment } from "../../envs/environment.ts";
import type { Tokenizer } from "../../policy/tokenizer.ts";
import { type EpisodeRequest, runEpisodes, type TokenPolicy } from "../../workers/agent-loop.ts";

export async function sampleUpdateBatch(
  env: Environment,
  policy: TokenPolicy,
  tokenizer: Tokenizer,
  job: StepPOJob,
  contextLength: number,
): Promise<Trajectory[]> {
  const rng = new Rng(7);
  const requests: EpisodeRequest[] = Array.from({ length: job.spec.rollout.episodesPerUpdate }, (_, i) => ({
    task: env.sampleTask(rng, "train"),
    groupId: `g${i}`,
    trajId: `e${i}`,
  }));
  return runEpisodes(env, requests, policy, tokenizer, rng, {
    workerId: "bench",
    policyVersion: 0,
    maxSteps: job.spec.environment.maxSteps,
    maxStepTokens: job.spec.environment.maxStepTokens,
    contextLength,
    temperature: job.spec.rollout.temperature,
    greedy: false,
  });
}
