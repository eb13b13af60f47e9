// Scripted demonstrations for the supervised warm-up: the environment's demonstrator plays episodes,
// a configurable fraction of them deliberately sub-optimal, and each step becomes a cloning sample.
import type { Rng } from "../core/rng.ts";
import type { Environment } from "../envs/environment.ts";
import type { AgentTokenizer } from "../policy/agent-tokenizer.ts";

export interface DemoStep {
  contextIds: Int32Array;
  actionIds: Int32Array;
}

export async function collectDemonstrations(
  env: Environment,
  tokenizer: AgentTokenizer,
  rng: Rng,
  opts: { episodes: number; suboptimalFraction: number; maxSteps: number; maxStepTokens: number; contextLength: number },
): Promise<{ steps: DemoStep[]; successRate: number }> {
  const steps: DemoStep[] = [];
  const budget = opts.contextLength - opts.maxStepTokens;
  let successes = 0;
  for (let e = 0; e < opts.episodes; e++) {
    const task = env.sampleTask(rng, "train");
    const act = env.demonstrator(task, rng, rng.next() < opts.suboptimalFraction);
    const episode = await env.start(task);
    for (let t = 0; t < opts.maxSteps; t++) {
      const contextIds = tokenizer.encodeContext(episode.context(), budget);
      const words = await act(episode);
      const actionIds = tokenizer.encodeAction(words, opts.maxStepTokens);
      steps.push({ contextIds, actionIds });
      const out = await episode.step(words);
      if (out.done) {
        if (out.success) successes++;
        break;
      }
    }
  }
  return { steps, successRate: successes / Math.max(1, opts.episodes) };
}
