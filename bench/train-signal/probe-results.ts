// Results files of bench/train-signal.ts runs (budget studies, learning-rate probes): each run's evaluation
// points on validation, and, where a probe doubles as a tuning grid, the choice per row read from them — the
// tuned parts' rule (bench/algos/tuning.ts chooseConfigs: best mean validation, ties to grid order), applied to
// each run's point at a given env-step budget (scoredPoint). Validation only: these runs never evaluate test.
import type { AlgoRow } from "../algos/rows.ts";
import { chooseConfigs, configsFor, defaultClip, type TuneChoice, type TuneGrid, type TuningScore } from "../algos/tuning.ts";

export interface ProbePoint {
  update: number;
  envSteps: number;
  validation: number | null;
  batchSuccess?: number | null;
}

/** One train-signal run as /tmp/runs/<tag>.json has it (and a results file keeps it, under its tag). */
export interface ProbeRun {
  family: string;
  row: string;
  seed: number;
  learningRate: number;
  clip: number;
  /** The env-step budget it trained to. */
  budget: number;
  points: ProbePoint[];
  /** Absent in the first budget study's file. */
  wallSeconds?: number;
}

export interface ProbeFile {
  /** "train-signal" (collect.ts); the first files say "budget-study" or "lr-probe". */
  benchmark: string;
  issue: number;
  date: string;
  description: string;
  runs: Record<string, ProbeRun>;
  settings?: { tune: TuneGrid; envStepBudget: Record<string, number> };
  choices?: (TuneChoice & { scores: (TuneChoice["scores"][number] & { envSteps: number[]; from: string[] })[] })[];
}

/**
 * Where a run is scored for a choice at `envSteps`: a run that trained to that budget at its end (as a tuned
 * part's run is), a longer one (a budget study) at its point nearest it (the earlier on a tie). Points without a
 * validation score are skipped; a run shorter than the budget never reached it and is an error. `what` names
 * the run in errors.
 */
export function scoredPoint(run: Pick<ProbeRun, "budget" | "points">, envSteps: number, what: string): ProbePoint & { validation: number } {
  const scored = run.points.filter((p): p is ProbePoint & { validation: number } => p.validation !== null);
  if (scored.length === 0) throw new Error(`train-signal: ${what} has no validation point`);
  if (run.budget < envSteps) throw new Error(`train-signal: ${what} trained to ${run.budget} env steps, short of the choice's ${envSteps}`);
  if (run.budget === envSteps) return scored[scored.length - 1];
  return scored.reduce((a, b) => (Math.abs(b.envSteps - envSteps) < Math.abs(a.envSteps - envSteps) ? b : a));
}

/**
 * Each row's choice over `grid` from the runs of `files` (named by `names`), each run scored at `envSteps`
 * (scoredPoint). Errors: a run whose learning rate and clip are no grid point of its row, a grid point run twice
 * on a seed, or one that did not run on every seed of the grid (its mean would be over other seeds than the rest's).
 */
export function probeChoices(
  files: readonly ProbeFile[],
  names: readonly string[],
  family: string,
  rows: readonly AlgoRow[],
  grid: TuneGrid,
  envSteps: number,
) {
  const scored: (TuningScore & { from: string; atEnvSteps: number })[] = [];
  files.forEach((file, i) => {
    for (const [tag, run] of Object.entries(file.runs)) {
      const row = rows.find((r) => r.id === run.row);
      if (run.family !== family || !row || !grid.seeds.includes(run.seed)) continue;
      const config = configsFor(row, grid).find((c) => c.learningRate === run.learningRate && Math.abs(c.clipFactor * defaultClip(row) - run.clip) < 1e-12);
      if (!config) throw new Error(`train-signal: ${names[i]} run ${tag} (learning rate ${run.learningRate}, clip ${run.clip}) is no point of the grid`);
      if (scored.some((r) => r.row === run.row && r.seed === run.seed && r.config?.id === config.id)) {
        throw new Error(`train-signal: ${run.row} seed ${run.seed} at ${config.id} ran more than once (${names[i]} run ${tag})`);
      }
      const point = scoredPoint(run, envSteps, `${names[i]} run ${tag}`);
      scored.push({ family, row: run.row, seed: run.seed, config, validation: point.validation, from: names[i], atEnvSteps: point.envSteps });
    }
  });
  return chooseConfigs(scored, [family], rows, grid).map((choice) => ({
    ...choice,
    scores: choice.scores.map((score) => {
      const missing = grid.seeds.filter((seed) => !score.seeds.includes(seed));
      if (missing.length > 0) throw new Error(`train-signal: ${choice.row} at ${score.config.id} has no run on seed(s) ${missing.join(", ")} of the grid`);
      const runs = score.seeds.map((seed) => scored.find((r) => r.row === choice.row && r.seed === seed && r.config?.id === score.config.id)!);
      return { ...score, envSteps: runs.map((r) => r.atEnvSteps), from: runs.map((r) => r.from) };
    }),
  }));
}
