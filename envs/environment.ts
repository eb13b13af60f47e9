// The contract every task family implements. Words in, words out: the tokenizer sits in the agent loop,
// so an environment never sees token ids.
import type { Rng } from "../core/rng.ts";

/**
 * train: what RL trains on. validation: held out like test (disjoint from train and from test, by the same
 * rules), for choosing settings — a benchmark tunes on it, so test stays untouched by tuning. test: the
 * held-out in-domain split results are reported on. ood: the held-out families.
 */
export type Split = "train" | "validation" | "test" | "ood";

/** Every split, in the order the in-process environments serve them. */
export const SPLITS: readonly Split[] = ["train", "validation", "test", "ood"];

export interface Task {
  id: string;
  family: string;
  split: Split;
  /**
   * The natural-language goal shown in every context, as words. Empty where the environment only
   * reveals it when an episode starts (a remote environment's server: envs/http/).
   */
  prompt: string[];
  /** Ground truth for exact-match scoring and for scripted demonstrations (environment-specific; empty where the environment keeps it). */
  answer: string;
}

export interface StepOutcome {
  /** What the environment returns (tool output) as words; context, never action. */
  observation: string[];
  reward: number;
  /** The episode ended (final answer/submit, or the goal reached). */
  done: boolean;
  /** Exact-match success, meaningful once done. */
  success: boolean;
  /** Set when the action was malformed or the tool failed; the observation explains it to the agent. */
  error?: string;
  /**
   * The environment itself failed (its server timed out, was unreachable, answered an error status or an
   * unreadable reply), as opposed to the agent's action being wrong: the outcome says nothing about the
   * agent, so the episode is excluded from training (agent-loop.ts), never scored as a failure.
   */
  fault?: boolean;
}

/** One running episode. */
export interface Episode {
  readonly task: Task;
  /** Context c_t as words, rebuilt from the structured state (task, evidence gathered, past calls). */
  context(): string[];
  /** Anchor-state key: equal keys mean the same environment state (GiGPO). */
  stateKey(): string;
  /** Apply one decision: the words the policy wrote for this step, without <eos-step>. */
  step(action: string[]): Promise<StepOutcome>;
}

export interface Environment {
  readonly name: string;
  /** Every word an environment can show or accept (the tokenizer's vocabulary besides specials). */
  vocabulary(): string[];
  /** In-domain families (train/validation/test splits) and held-out families (ood). */
  readonly families: { train: string[]; ood: string[] };
  /**
   * The splits this environment serves: all of SPLITS in-process; a remote one serves validation only where
   * its server says so (a server written before the split existed does not), and evaluation skips it there.
   */
  readonly splits: readonly Split[];
  /** Draw a task. `family` defaults to a random one of the split's families. */
  sampleTask(rng: Rng, split: Split, family?: string): Task;
  /** Begin an episode of `task`. Asynchronous because a remote environment resets its server here. */
  start(task: Task): Promise<Episode>;
  /**
   * A scripted agent for behaviour cloning: returns the next action (words, reasoning included) for
   * the episode's current state. Sub-optimal demonstrators make a plausible mistake somewhere.
   * Asynchronous because a remote environment's server computes the action.
   */
  demonstrator(task: Task, rng: Rng, suboptimal: boolean): (episode: Episode) => Promise<string[]>;
}
