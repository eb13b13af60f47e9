// What an RL user reads in `kubectl get spj` and the status: PURE functions from the learner's progress
// record (checked by progress-check.ts) and the rollout counts, called by the planner.
import type { LearnerProgress } from "../runtime/nats/runtime-state.ts";
import type { StepPOJobStatus } from "../crds/steppojob-status.ts";

/** Three significant decimals: enough to read, and a rate that barely moved does not rewrite the status. */
function round(v: number): number {
  return Math.round(v * 1000) / 1000;
}

type Training = NonNullable<StepPOJobStatus["training"]>;

export function trainingStatus(p: LearnerProgress, updates: number): Training {
  // Partial: the schema builder types nested objects as present, but policyLag is absent until measured.
  const t: Partial<Training> = { learnerPhase: p.phase, updates: p.updates ?? updates };
  if (p.update !== undefined) t.policyVersion = p.update;
  if (p.envSteps !== undefined) t.envSteps = p.envSteps;
  if (p.rates) {
    t.envStepsPerSecond = round(p.rates.envStepsPerSecond);
    t.episodesPerSecond = round(p.rates.episodesPerSecond);
  }
  if (p.policyLag) t.policyLag = { mean: round(p.policyLag.mean), max: p.policyLag.max };
  if (p.trainSuccess !== null && p.trainSuccess !== undefined) t.trainSuccess = round(p.trainSuccess);
  if (p.testSuccess !== null && p.testSuccess !== undefined) t.heldOutSuccess = p.testSuccess;
  if (p.updatedAt !== undefined) t.updatedAt = p.updatedAt;
  return t as Training;
}

/** The printer columns' strings: UPDATE `12/30`, READY `2/3`. */
export function displayFields(status: StepPOJobStatus, updates: number): Pick<StepPOJobStatus, "progress" | "ready"> {
  return {
    progress: `${status.update ?? 0}/${status.training?.updates ?? updates}`,
    ready: `${status.rollout?.ready ?? 0}/${status.rollout?.desired ?? 0}`,
  };
}
