// A warm start: the behaviour-cloned policy at update 0 and its initial evaluation, saved once so that
// several runs (the rows of a benchmark) start from the very same model without repeating the warm-up.
// A run started from it is the run that would have warmed up itself: same weights, same zeroed Adam
// state, same shuffle RNG, same initial success rates.
import type { StepPOJob } from "../crds/steppojob.ts";
import { restoreLearner, saveLearner } from "./checkpoint.ts";
import type { Learner } from "./learner.ts";
import { setUpRun } from "./run-setup.ts";
import { formatRates, warmUp } from "./run-phases.ts";
import { warmStartDifferences, warmStartKey } from "./resume-spec.ts";
import type { AgentTokenizer } from "../policy/agent-tokenizer.ts";

export { warmStartKey };

export interface WarmStart {
  /** Initial success rates per evaluation set (train sampled, the others greedy). */
  initial: Record<string, number>;
  /** The demonstrations' own success rate; absent when the job has no warm-up. */
  demonstrations?: number;
}

/** Warms up `job`'s learner, evaluates it and saves both into `dir`. */
export async function writeWarmStart(job: StepPOJob, dir: string, log: (line: string) => void): Promise<WarmStart> {
  const { env, tokenizer, learner, evaluate } = await setUpRun(job, log);
  const cloned = job.spec.warmup.enabled ? await warmUp(env, tokenizer, learner, log) : undefined;
  const demonstrations = cloned && !cloned.stopped ? cloned.demonstrations : undefined; // no signal: never stopped
  const initial = await evaluate();
  log(`warm start: initial success (train sampled, others greedy): ${formatRates(initial)}`);
  const record: WarmStart = { initial, demonstrations };
  await saveLearner(dir, 1, learner, tokenizer, record);
  learner.dispose();
  return record;
}

/**
 * Loads the warm start in `dir` into a fresh `learner` (update 0). Refuses one made for another model,
 * environment, warm-up or evaluation, naming the fields that differ.
 */
export async function loadWarmStart(dir: string, learner: Learner, tokenizer: AgentTokenizer, log: (line: string) => void): Promise<WarmStart> {
  const found = await restoreLearner<WarmStart>(dir, learner, tokenizer, log);
  if (!found) throw new Error(`warm start: no usable checkpoint in ${dir}`);
  if (found.meta.version !== 0) throw new Error(`warm start: ${found.path} is at update ${found.meta.version}, not a warm start (update 0)`);
  const differ = warmStartDifferences(found.meta.spec, learner.spec);
  if (differ.length > 0) throw new Error(`warm start: ${found.path} was made for a job with another ${differ.join(", ")}`);
  return found.meta.run;
}
