// The agent loop: generate one step (reasoning + one tool call) per active episode, segment it where the
// tokenizer says a step ends (<eos-step>, or a Hugging Face model's stop string or end-of-turn), hand its
// words to the environment, repeat until done or out of step budget. The sampled ids are what the
// trajectory keeps: the learner trains on exactly them.
// Episodes of a batch advance in lockstep so each generated token is one batched forward pass.
import type { Rng } from "../core/rng.ts";
import type { StepRecord, Trajectory } from "../core/trajectory.ts";
import { generateSteps, type TokenPolicy } from "../policy/decoding.ts";
import type { AgentTokenizer } from "../policy/agent-tokenizer.ts";
import type { Environment, Episode, Task } from "../envs/environment.ts";

export type { TokenPolicy };

export interface RolloutOptions {
  workerId: string;
  policyVersion: number;
  maxSteps: number;
  maxStepTokens: number;
  /** Context + action must fit the model: contexts keep their newest `contextLength − maxStepTokens` tokens. */
  contextLength: number;
  temperature: number;
  /** Greedy decoding (evaluation); sampling otherwise. */
  greedy: boolean;
  /** Simulated tool latency [min, max] in ms, drawn per call. */
  toolLatencyMs?: number[];
  /** Stops generation between steps (a worker asked to shut down); episodes left unfinished are discarded. */
  signal?: AbortSignal;
  /**
   * Told of every episode an environment fault (StepOutcome.fault) ended. Such an episode stops at the
   * faulty step and is not returned: its reward says nothing about the agent.
   */
  onFault?: (req: EpisodeRequest, cause: string) => void;
}

export interface EpisodeRequest {
  task: Task;
  groupId: string;
  trajId: string;
}

interface Running {
  req: EpisodeRequest;
  episode: Episode;
  steps: StepRecord[];
  done: boolean;
  success: boolean;
  /** Why an environment fault ended the episode (excluded from the result). */
  fault?: string;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs a batch of episodes to completion (or step budget) and returns their trajectories. */
export async function runEpisodes(
  env: Environment,
  requests: EpisodeRequest[],
  policy: TokenPolicy,
  tokenizer: AgentTokenizer,
  rng: Rng,
  opts: RolloutOptions,
): Promise<Trajectory[]> {
  const contextBudget = opts.contextLength - opts.maxStepTokens;
  if (contextBudget < 8) throw new Error(`spec.model.contextLength ${opts.contextLength} leaves no room for context after maxStepTokens ${opts.maxStepTokens}`);
  // Episodes start concurrently: a remote environment resets each over the network.
  const episodes = await Promise.all(requests.map((req) => env.start(req.task)));
  const running: Running[] = requests.map((req, i) => ({ req, episode: episodes[i], steps: [], done: false, success: false }));
  for (let t = 0; t < opts.maxSteps; t++) {
    const live = running.filter((r) => !r.done);
    if (live.length === 0 || opts.signal?.aborted) break;
    const contexts = live.map((r) => tokenizer.encodeContext(r.episode.context(), contextBudget));
    const stateKeys = live.map((r) => r.episode.stateKey());
    const generated = generateSteps(policy, contexts, { ...opts, endsStep: tokenizer.endsStep }, rng);
    const latencies = live.map(() => latency(opts.toolLatencyMs, rng));
    // Tool calls of the batch run concurrently, as real (I/O-bound) tools would.
    const outcomes = await Promise.all(
      live.map(async (r, i) => {
        if (latencies[i] > 0) await sleep(latencies[i]);
        return r.episode.step(tokenizer.actionWords(generated[i].actionIds));
      }),
    );
    live.forEach((r, i) => {
      const out = outcomes[i];
      r.steps.push({
        contextIds: contexts[i],
        actionIds: generated[i].actionIds,
        logProbs: generated[i].logProbs,
        reward: out.reward,
        done: out.done,
        stateKey: stateKeys[i],
      });
      if (out.fault) {
        r.done = true;
        r.fault = out.error ?? "environment fault";
        opts.onFault?.(r.req, r.fault);
      } else if (out.done) {
        r.done = true;
        r.success = out.success;
      }
    });
  }
  // Stopped early: only complete episodes are returned — ended by the environment, or cut by the step budget
  // (what the learner bootstraps or scores as truncated). An episode stopped mid-way is never returned.
  // Episodes an environment fault ended are never returned.
  const complete = (r: Running) => r.done || r.steps.length >= opts.maxSteps;
  const usable = running.filter((r) => r.fault === undefined && (!opts.signal?.aborted || complete(r)));
  return usable.map((r) => toTrajectory(r, opts, tokenizer, contextBudget));
}

function latency(range: number[] | undefined, rng: Rng): number {
  if (!range || range.length === 0) return 0;
  const [lo, hi = lo] = range;
  return lo + rng.next() * (hi - lo);
}

function toTrajectory(r: Running, opts: RolloutOptions, tokenizer: AgentTokenizer, contextBudget: number): Trajectory {
  const truncated = !r.done;
  return {
    trajId: r.req.trajId,
    workerId: opts.workerId,
    policyVersion: opts.policyVersion,
    taskId: r.req.task.id,
    groupId: r.req.groupId,
    family: r.req.task.family,
    steps: r.steps,
    truncated,
    bootstrapContextIds: truncated ? tokenizer.encodeContext(r.episode.context(), contextBudget) : undefined,
    success: r.success,
  };
}
