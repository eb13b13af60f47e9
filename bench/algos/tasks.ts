// The benchmark's units of work, run the same way in-process or in a worker process: the warm start of
// one (family, seed) — behaviour cloning, done once — and the training of one row from it.
import { join } from "node:path";
import { runJob } from "../../runtime/run-job.ts";
import { writeWarmStart } from "../../learner/warm-start.ts";
import type { CurveSample, TaskResult } from "./results.ts";
import { ROWS } from "./rows.ts";
import { type AlgosSettings, type Family, jobFor } from "./settings.ts";
import { configsFor, type TuneChoice, type TuneConfig } from "./tuning.ts";

/** A training; `config` (--tune): a grid point, `tuning` says whether it is a tuning run or a final one. */
export type TrainTask = { kind: "train"; family: Family; row: string; seed: number; config?: TuneConfig; tuning?: boolean };
export type Task = { kind: "warm-start"; family: Family; seed: number } | TrainTask;

export function taskName(t: Task): string {
  if (t.kind === "warm-start") return `warm start ${t.family} seed ${t.seed}`;
  return `${t.row}${t.config ? ` (${t.config.id}${t.tuning ? ", tuning" : ""})` : ""} on ${t.family} seed ${t.seed}`;
}

/** Where the warm start of (family, seed) lives under the benchmark's scratch directory. */
export function warmStartDir(workDir: string, family: string, seed: number): string {
  return join(workDir, `${family}-s${seed}`, "warm-start");
}

/** Warm starts first, then every row of every (family, seed). */
export function planTasks(settings: AlgosSettings, rows: string[]): Task[] {
  const tasks: Task[] = [];
  for (const family of settings.families) for (const seed of settings.seeds) tasks.push({ kind: "warm-start", family, seed });
  for (const family of settings.families) {
    for (const seed of settings.seeds) for (const row of rows) tasks.push({ kind: "train", family, row, seed });
  }
  return tasks;
}

/**
 * --tune, first phase: the warm starts of the tuning and the final seeds (tuning seeds first: their
 * trainings wait for them), then every row's whole grid on the tuning seeds.
 */
export function planTuningTasks(settings: AlgosSettings, rows: string[]): Task[] {
  const grid = settings.tune;
  if (!grid) throw new Error("planTuningTasks: the settings have no tuning grid");
  const tasks: Task[] = [];
  for (const family of settings.families) for (const seed of [...grid.seeds, ...settings.seeds]) tasks.push({ kind: "warm-start", family, seed });
  for (const family of settings.families) {
    for (const seed of grid.seeds) {
      for (const id of rows) {
        const row = ROWS.find((r) => r.id === id);
        if (!row) throw new Error(`bench algos: unknown row ${id}`);
        for (const config of configsFor(row, grid)) tasks.push({ kind: "train", family, row: id, seed, config, tuning: true });
      }
    }
  }
  return tasks;
}

/** --tune, second phase: every row on the final seeds with its chosen config (their warm starts exist). */
export function planFinalTasks(settings: AlgosSettings, choices: readonly TuneChoice[]): Task[] {
  return settings.families.flatMap((family) =>
    settings.seeds.flatMap((seed) =>
      choices.filter((c) => c.family === family).map((c): Task => ({ kind: "train", family, row: c.row, seed, config: c.chosen })),
    ),
  );
}

function cpuSecondsSince(start: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(start);
  return (u.user + u.system) / 1e6;
}

export async function runTask(task: Task, settings: AlgosSettings, workDir: string, log: (line: string) => void): Promise<TaskResult> {
  const t0 = Date.now();
  const cpu0 = process.cpuUsage();
  if (task.kind === "warm-start") {
    // The warm-up does not depend on the row: every row's job has the same model, environment and warm-up.
    const job = jobFor(settings, task.family, ROWS[0], task.seed);
    const warm = await writeWarmStart(job, warmStartDir(workDir, task.family, task.seed), log);
    return {
      kind: "warm-start",
      family: task.family,
      seed: task.seed,
      demonstrations: warm.demonstrations,
      initial: warm.initial,
      wallSeconds: (Date.now() - t0) / 1000,
      cpuSeconds: cpuSecondsSince(cpu0),
    };
  }
  const row = ROWS.find((r) => r.id === task.row);
  if (!row) throw new Error(`bench algos: unknown row ${task.row}`);
  const job = jobFor(settings, task.family, row, task.seed, task.config);
  const s = await runJob(job, {
    runDir: join(workDir, `${task.family}-s${task.seed}`, task.config ? `${row.id}-${task.config.id}` : row.id),
    warmStart: warmStartDir(workDir, task.family, task.seed),
    envStepBudget: settings.envStepBudget[task.family],
    log,
  });
  const curve: CurveSample[] = s.curve.map((p) => ({ update: p.update, envSteps: p.envSteps, trainSuccess: p.trainSuccess, testSuccess: p.testSuccess }));
  return {
    kind: "train",
    family: task.family,
    row: row.id,
    seed: task.seed,
    estimator: s.estimator,
    ratio: s.ratio,
    clip: s.clip,
    learningRate: job.spec.algorithm.learningRate,
    gamma: s.gamma,
    lambda: s.lambda,
    groupSize: job.spec.rollout.groupSize,
    episodesPerUpdate: job.spec.rollout.episodesPerUpdate,
    updates: s.updates,
    envSteps: s.envSteps,
    train: s.successRate.final,
    test: s.test.final,
    ...(s.validation ? { validation: s.validation.final } : {}),
    ...(task.config ? { config: task.config } : {}),
    ood: s.ood,
    wallSeconds: (Date.now() - t0) / 1000,
    cpuSeconds: cpuSecondsSince(cpu0),
    curve,
  };
}
