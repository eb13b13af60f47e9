// How much of the return can any critic explain? Issue #13 asks for a critic whose explained variance on
// fresh batches reaches ~0.3. The return of a sampled episode is a coin flip with the state's success
// probability p(s), so even the perfect critic V(s) = p(s) explains only Var(p) / Var(R) of it. This probe
// measures that ceiling at the first step, where the state is the task alone: K sampled episodes of each of
// N training tasks from one policy (a job's warm start) estimate p per task, and
//   ceiling = Var_tasks(p) / Var(R),  Var(p) = Var(p̂) − mean(p̂(1 − p̂)) / (K − 1)   (p̂'s sampling noise removed).
// Beside it, the explained variance the job's fitted critic (the critic warm-up) reaches on the same fresh
// episodes: at their first steps (comparable with the ceiling) and at every step (what the log reports).
// Training tasks only; never the test split.
//   node --import tsx bench/critic-ceiling.ts '{"job":"examples/quickstart.yaml","tasks":64,"k":8}'
import { Rng } from "../core/rng.ts";
import type { Trajectory } from "../core/trajectory.ts";
import { loadJobFile } from "../crds/job-spec.ts";
import { explainedVariance } from "../learner/diagnostics.ts";
import { warmUp, warmUpCritic } from "../learner/run-phases.ts";
import { setUpRun } from "../learner/run-setup.ts";
import { runEpisodes } from "../workers/agent-loop.ts";

const mean = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
const variance = (xs: readonly number[]) => mean(xs.map((x) => (x - mean(xs)) ** 2));

/** The ceiling from K episodes per task: per-task success rates p̂, their variance less p̂'s own sampling noise, over Var(R). */
export function firstStepCeiling(successByTask: readonly (readonly boolean[])[]): { ceiling: number; success: number } {
  const k = successByTask[0].length;
  const p = successByTask.map((runs) => mean(runs.map((s) => (s ? 1 : 0))));
  const success = mean(p);
  const noise = mean(p.map((x) => (x * (1 - x)) / (k - 1)));
  const varR = success * (1 - success);
  return { ceiling: varR > 0 ? Math.max(0, variance(p) - noise) / varR : 0, success };
}

async function main(): Promise<void> {
  const arg = JSON.parse(process.argv[2] ?? "{}") as { job?: string; tasks?: number; k?: number };
  const job = loadJobFile(arg.job ?? "examples/quickstart.yaml");
  const n = arg.tasks ?? 64;
  const k = arg.k ?? 8;
  const spec = job.spec;
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const { env, tokenizer, learner, policy, config } = await setUpRun(job, log);
  if (spec.warmup.enabled) await warmUp(env, tokenizer, learner, log);
  await warmUpCritic(env, tokenizer, learner, policy, log);

  const rng = new Rng(spec.seed * 104729 + 5);
  const tasks = Array.from({ length: n }, () => env.sampleTask(rng, "train"));
  const requests = tasks.flatMap((task, i) => Array.from({ length: k }, (_, j) => ({ task, groupId: `task${i}`, trajId: `task${i}-${j}` })));
  const trajs: Trajectory[] = await runEpisodes(env, requests, policy, tokenizer, rng, {
    workerId: "critic-ceiling",
    policyVersion: learner.version,
    maxSteps: spec.environment.maxSteps,
    maxStepTokens: spec.environment.maxStepTokens,
    contextLength: config.contextLength,
    temperature: spec.rollout.temperature,
    greedy: false,
  });
  const byTask = tasks.map((_, i) => trajs.filter((t) => t.groupId === `task${i}`).map((t) => t.success));
  const { ceiling, success } = firstStepCeiling(byTask);

  // The fitted critic on these fresh episodes: V at each step boundary against the Monte-Carlo return (λ = 1).
  // Samples come one per step in trajectory order, so each episode's first step is at its running offset.
  const { samples } = learner.buildSamples(trajs, { lambda: 1 });
  const firstIndices = new Set<number>();
  let at = 0;
  for (const t of trajs) {
    firstIndices.add(at);
    at += t.steps.length;
  }
  const all = samples.filter((s) => s.valueTargets.length > 0);
  const firsts = samples.filter((s, i) => firstIndices.has(i) && s.valueTargets.length > 0);
  const ev = (xs: typeof all) =>
    explainedVariance(
      Float32Array.from(xs, (s) => s.oldValues[0]),
      Float32Array.from(xs, (s) => s.valueTargets[0]),
    );
  const result = {
    job: job.metadata.name,
    estimator: learner.algorithm.estimator,
    tasks: n,
    episodesPerTask: k,
    success,
    firstStepCeiling: ceiling,
    criticFirstStep: ev(firsts),
    criticAllSteps: ev(all),
    steps: all.length,
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  learner.dispose();
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err) => {
    process.stderr.write(`critic-ceiling: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
}
