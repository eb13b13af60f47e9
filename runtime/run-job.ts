// `steppo run` without a cluster: the run loop with the embedded transport (the learner and N rollout
// workers in one process, meeting over the in-memory bus).
import type { StepPOJob } from "../crds/steppojob.ts";
import { EmbeddedTransport } from "./embedded-transport.ts";
import { type RunLoopOptions, type RunSummary, runLoop } from "./run-loop.ts";

export type { RunSummary };
export type RunOptions = Omit<RunLoopOptions, "signal" | "span">;

export async function runJob(job: StepPOJob, opts: RunOptions): Promise<RunSummary> {
  const { summary } = await runLoop(job, new EmbeddedTransport(), opts);
  if (!summary) throw new Error("the embedded run stopped before it finished");
  return summary;
}
