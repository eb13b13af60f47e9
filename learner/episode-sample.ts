// The run dashboard's episode inspector reads a bounded sample of each update's episodes: every step with its
// context and action as words, the reward, the critic's V(c_t), the advantage Â_t the update trained on, and
// the step ratio π_new/π_old after the update (re-scored with the updated policy) with whether it is outside
// the clip range. Built from what the update already computed (Learner.lastSamples), so the only extra cost
// is one forward pass over at most K episodes' steps.
import type { Trajectory } from "../core/trajectory.ts";
import type { Learner } from "./learner.ts";
import type { StepSample } from "./step-batch.ts";
import type { AgentTokenizer } from "../policy/agent-tokenizer.ts";

/** At most this many episodes of an update are kept: enough to see successes and failures side by side. */
export const EPISODES_PER_UPDATE = 8;

export interface EpisodeStepView {
  t: number;
  /** c_t as the model read it (prompt and observations, newest tokens kept), as words. */
  context: string[];
  /** a_t's tokens as words (ending with <eos-step> unless cut at maxStepTokens). */
  action: string[];
  /** What the environment answered: the observations the next context adds (empty when the episode ended). */
  observation: string[];
  reward: number;
  /** V(c_t) before the update; null without a critic. */
  value: number | null;
  /** The value target R̂_t the critic was trained towards; null without a critic. */
  valueTarget: number | null;
  /** Â_t as trained on (whitened): the mean over the step's tokens. */
  advantage: number;
  /** Per-token advantages, kept where they differ within a step (token-level estimators). */
  tokenAdvantages?: number[];
  /** exp(mean over the step's tokens of log π_new − log π_old), π_new the policy after the update. */
  ratio: number;
  /** Per-token ratios π_new/π_old, for token-ratio runs (each token is clipped on its own there). */
  tokenRatios?: number[];
  /** |ratio − 1| > clip (token-ratio runs: any token's). */
  clipped: boolean;
}

export interface EpisodeView {
  trajId: string;
  taskId: string;
  family: string;
  success: boolean;
  truncated: boolean;
  return: number;
  policyVersion: number;
  steps: EpisodeStepView[];
}

export interface EpisodeSampleFile {
  format: "steppo-episodes/v1";
  /** The learner version after the update (the curve's `update`). */
  update: number;
  algorithm: { estimator: string; ratio: string; clip: number; critic: string };
  /** How many episodes the update trained on, and how many of them succeeded. */
  batch: { episodes: number; successes: number };
  episodes: EpisodeView[];
}

/**
 * Up to `k` episodes of the batch: half successes and half failures where both exist (the rest filled from
 * whichever has more), taking families in turn within each so every family present is seen. Deterministic
 * (batch order), so it draws nothing from the learner's RNG.
 */
export function pickEpisodes(batch: Trajectory[], k = EPISODES_PER_UPDATE): Trajectory[] {
  const successes = interleaveFamilies(batch.filter((t) => t.success));
  const failures = interleaveFamilies(batch.filter((t) => !t.success));
  const half = Math.ceil(k / 2);
  const nSuccess = Math.min(successes.length, Math.max(half, k - failures.length));
  const nFailure = Math.min(failures.length, k - nSuccess);
  return [...successes.slice(0, nSuccess), ...failures.slice(0, nFailure)];
}

/** Round-robin over families, in the order each family first appears. */
function interleaveFamilies(trajs: Trajectory[]): Trajectory[] {
  const byFamily = new Map<string, Trajectory[]>();
  for (const t of trajs) byFamily.set(t.family, [...(byFamily.get(t.family) ?? []), t]);
  const queues = [...byFamily.values()];
  const out: Trajectory[] = [];
  for (let i = 0; out.length < trajs.length; i++) for (const q of queues) if (i < q.length) out.push(q[i]);
  return out;
}

/**
 * The episode sample of the update `learner` has just made on `batch`. Must be called after learner.update
 * (it reads learner.lastSamples, the update's samples with their pre-update values and advantages).
 */
export function buildEpisodeSample(learner: Learner, tokenizer: AgentTokenizer, batch: Trajectory[], k = EPISODES_PER_UPDATE): EpisodeSampleFile {
  const a = learner.algorithm;
  const samplesByTraj = new Map<string, StepSample[]>();
  for (const s of learner.lastSamples) samplesByTraj.set(s.trajId, [...(samplesByTraj.get(s.trajId) ?? []), s]);
  const picked = pickEpisodes(batch, k).filter((t) => samplesByTraj.get(t.trajId)?.length === t.steps.length);
  const samples = picked.flatMap((t) => samplesByTraj.get(t.trajId) ?? []);
  // Re-scored with the updated policy: the ratio the next update would start from, and what clipping saw last.
  const newLogProbs = samples.length > 0 ? learner.scoreSteps(learner.model, samples).logProbs : [];
  let k0 = 0;
  const episodes = picked.map((traj) => {
    const trajSamples = samplesByTraj.get(traj.trajId) ?? [];
    const steps = traj.steps.map((step, t) => {
      const s = trajSamples[t];
      return stepView(t, s, newLogProbs[k0 + t], {
        reward: step.reward,
        nextContext: t + 1 < traj.steps.length ? traj.steps[t + 1].contextIds : traj.bootstrapContextIds,
        tokenizer,
        ratioKind: a.ratio,
        clip: a.clip,
      });
    });
    k0 += traj.steps.length;
    return {
      trajId: traj.trajId,
      taskId: traj.taskId,
      family: traj.family,
      success: traj.success,
      truncated: traj.truncated,
      return: traj.steps.reduce((sum, s) => sum + s.reward, 0),
      policyVersion: traj.policyVersion,
      steps,
    };
  });
  return {
    format: "steppo-episodes/v1",
    update: learner.version,
    algorithm: { estimator: a.estimator, ratio: a.ratio, clip: a.clip, critic: learner.estimator.critic },
    batch: { episodes: batch.length, successes: batch.filter((t) => t.success).length },
    episodes,
  };
}

interface StepContext {
  reward: number;
  nextContext?: Int32Array;
  tokenizer: AgentTokenizer;
  ratioKind: string;
  clip: number;
}

function stepView(t: number, s: StepSample, newLogProbs: Float32Array, c: StepContext): EpisodeStepView {
  const L = s.actionIds.length;
  const diffs = Array.from(newLogProbs, (lp, i) => lp - s.oldLogProbs[i]);
  const ratio = Math.exp(mean(diffs));
  const tokenRatios = diffs.map(Math.exp);
  const clipped = c.ratioKind === "token" ? tokenRatios.some((r) => Math.abs(r - 1) > c.clip) : Math.abs(ratio - 1) > c.clip;
  const adv = Array.from(s.advantages);
  const varies = adv.some((x) => Math.abs(x - adv[0]) > 1e-6);
  return {
    t,
    context: c.tokenizer.decode(s.contextIds),
    action: c.tokenizer.decode(s.actionIds),
    observation: c.nextContext ? observationWords(c.tokenizer.decode(s.contextIds), c.tokenizer.decode(c.nextContext)) : [],
    reward: c.reward,
    // Offset 0 is V(c_t) for step and token critics alike (valueOffsets start at Lc − 1).
    value: s.oldValues.length > 0 ? round(s.oldValues[0]) : null,
    valueTarget: s.valueTargets.length > 0 ? round(s.valueTargets[0]) : null,
    advantage: round(mean(adv)),
    ...(varies ? { tokenAdvantages: adv.map(round) } : {}),
    ratio: round(ratio),
    ...(c.ratioKind === "token" && L > 0 ? { tokenRatios: tokenRatios.map(round) } : {}),
    clipped,
  };
}

/**
 * The observation a step brought back, recovered from the contexts (trajectories do not carry it): the
 * `<obs> … </obs>` segments of the next context that the current one lacks; for environments without those
 * markers, what follows the longest common prefix of the two contexts.
 */
export function observationWords(context: string[], next: string[]): string[] {
  const nextSegments = obsSegments(next);
  if (nextSegments.length === 0) {
    let i = 0;
    while (i < context.length && i < next.length && context[i] === next[i]) i++;
    return next.slice(i);
  }
  const had = new Map<string, number>();
  for (const seg of obsSegments(context)) had.set(seg.join(" "), (had.get(seg.join(" ")) ?? 0) + 1);
  const added: string[] = [];
  for (const seg of nextSegments) {
    const key = seg.join(" ");
    const n = had.get(key) ?? 0;
    if (n > 0) had.set(key, n - 1);
    else added.push(...seg);
  }
  // Nothing new: the environment answered what the context already shows (the same error again, a passage
  // already found); the newest segment is that answer.
  return added.length > 0 ? added : nextSegments[nextSegments.length - 1];
}

function obsSegments(words: string[]): string[][] {
  const out: string[][] = [];
  let open = -1;
  words.forEach((w, i) => {
    if (w === "<obs>") open = i;
    else if (w === "</obs>" && open >= 0) {
      out.push(words.slice(open, i + 1));
      open = -1;
    }
  });
  return out;
}

function mean(xs: number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((s, x) => s + x, 0) / xs.length;
}

/** Six significant decimals keep the files small without hiding a ratio's distance from 1. */
function round(x: number): number {
  return Number(x.toFixed(6));
}
