// The tuning protocol of the algorithms benchmark (--tune): every row gets the same small grid — learning
// rate × a multiple of the row's own default clip — trained on tuning seeds that are not the final seeds,
// and keeps the config with the best mean VALIDATION success; the final seeds then run that config and are
// reported on test. Test never takes part in the choice. Pure functions, unit-tested.
import { DEFAULT_CLIP } from "../../learner/learner.ts";
import type { TrainResult } from "./results.ts";
import type { AlgoRow } from "./rows.ts";

export interface TuneGrid {
  /** Learning rates, the untuned default first (ties go to the earlier entry). */
  learningRates: number[];
  /** Multiples of each row's own default clip, 1 (the default) first. */
  clipFactors: number[];
  /** Seeds the grid trains on; disjoint from the final seeds, so the reported runs were not selected on. */
  seeds: number[];
}

/**
 * 2 × 2: the shared learning rate 3e-4 and a third of it; each row's default clip and twice it. Twice, not
 * half: the one outside hint about a row's clip — the StepPO authors ran the step ratio at 0.2, four times
 * our GSPO-sized 0.05 — points up, and the same multiple for every row keeps the grid equal (PPO and GRPO
 * 0.2 → 0.4, StepPO 0.05 → 0.1). A smaller learning rate is the usual remedy for noisy small-batch PPO.
 */
export const DEFAULT_TUNE_GRID: TuneGrid = { learningRates: [3e-4, 1e-4], clipFactors: [1, 2], seeds: [101, 102] };

/** One point of a row's grid, with the clip it resolves to for that row. */
export interface TuneConfig {
  /** Stable and file-name safe: `lr0.0003-clip1x`. */
  id: string;
  /** Position in the grid (0: the untuned default); job names carry it, as `g<index>` (they allow no dots). */
  index: number;
  learningRate: number;
  clipFactor: number;
  clip: number;
}

/** The clip a row runs with untuned: its own setting, else the registry's default for its ratio mode. */
export function defaultClip(row: AlgoRow): number {
  return row.algorithm?.clip ?? DEFAULT_CLIP[row.ratio];
}

/** A row's grid in order: learning rates outer, clip factors inner; the first is the untuned default where the grid holds it. */
export function configsFor(row: AlgoRow, grid: TuneGrid): TuneConfig[] {
  const base = defaultClip(row);
  return grid.learningRates.flatMap((learningRate, i) =>
    grid.clipFactors.map((clipFactor, j) => ({
      id: `lr${learningRate}-clip${clipFactor}x`,
      index: i * grid.clipFactors.length + j,
      learningRate,
      clipFactor,
      // Rounded so that 0.05 × 2 reads 0.1 in reports and job specs.
      clip: Number((base * clipFactor).toPrecision(12)),
    })),
  );
}

export interface ConfigScore {
  config: TuneConfig;
  seeds: number[];
  /** Final validation success per tuning seed, in seed order. */
  validation: number[];
  mean: number;
}

export interface TuneChoice {
  family: string;
  row: string;
  /** The config with the best mean validation success (ties: the earliest in grid order). */
  chosen: TuneConfig;
  /** Every config of the grid, in grid order. */
  scores: ConfigScore[];
}

/** Means within this are a tie (they are averages of a few success rates, computed in one order). */
const TIE = 1e-9;

/**
 * Each row's config per family, by mean validation success over the tuning seeds. A grid point without a
 * tuning run, or a tuning run without a validation score, is an error: a choice over part of the grid would
 * not be the equal tuning every row is promised.
 */
/** What chooseConfigs reads of a tuning run (a train-signal probe's scored point gives the same). */
export type TuningScore = Pick<TrainResult, "family" | "row" | "seed" | "config" | "validation">;

export function chooseConfigs(tuning: readonly TuningScore[], families: readonly string[], rows: readonly AlgoRow[], grid: TuneGrid): TuneChoice[] {
  const out: TuneChoice[] = [];
  for (const family of families) {
    for (const row of rows) {
      const scores = configsFor(row, grid).map((config): ConfigScore => {
        const cell = tuning.filter((r) => r.family === family && r.row === row.id && r.config?.id === config.id).sort((a, b) => a.seed - b.seed);
        if (cell.length === 0) throw new Error(`bench algos --tune: no tuning run of ${row.id} on ${family} with ${config.id}`);
        const validation = cell.map((r) => {
          if (r.validation === undefined) throw new Error(`bench algos --tune: ${row.id} on ${family} seed ${r.seed} (${config.id}) has no validation score`);
          return r.validation;
        });
        return { config, seeds: cell.map((r) => r.seed), validation, mean: validation.reduce((s, v) => s + v, 0) / validation.length };
      });
      // Strictly better by more than a tie, else the earlier config stays: ties go to grid order.
      const best = scores.reduce((a, b) => (b.mean > a.mean + TIE ? b : a));
      out.push({ family, row: row.id, chosen: best.config, scores });
    }
  }
  return out;
}

/**
 * --choices-from: the configs a tuned part chose, reused by a part that runs no grid of its own (e.g. the final
 * seeds at another env-step budget). Where they came from travels with them, so the report can say so.
 */
export interface ReusedChoices {
  /** The tuned part's file, as given on the command line. */
  part: string;
  date: string;
  /** Its grid and tuning seeds. */
  grid: TuneGrid;
  /** Its env-step budget per family: the budget the choice was made at. */
  envStepBudget: Partial<Record<string, number>>;
  /** Its choices for the families and rows of this part. */
  choices: TuneChoice[];
}

/** What reuseChoices reads of a tuned part (its algos part JSON). */
export interface TunedPartLike {
  date: string;
  settings: { tune?: TuneGrid; envStepBudget: Partial<Record<string, number>> };
  choices?: TuneChoice[];
}

/**
 * The choices of `part` for every (family, row) asked for: an error where the part is not tuned, lacks one
 * of them, or where a final seed was one of its tuning seeds (that run would report a seed it was chosen on).
 */
export function reuseChoices(part: TunedPartLike, name: string, families: readonly string[], rows: readonly string[], seeds: readonly number[]): ReusedChoices {
  const grid = part.settings.tune;
  if (!grid || !part.choices || part.choices.length === 0) throw new Error(`--choices-from: ${name} is not a tuned part (no settings.tune or choices[])`);
  const shared = grid.seeds.filter((s) => seeds.includes(s));
  if (shared.length > 0) throw new Error(`--choices-from: ${shared.join(", ")} were tuning seeds of ${name}; final seeds must differ`);
  const choices = families.flatMap((family) =>
    rows.map((row) => {
      const c = part.choices?.find((x) => x.family === family && x.row === row);
      if (!c) throw new Error(`--choices-from: ${name} has no choice for ${row} on ${family}`);
      return c;
    }),
  );
  const envStepBudget = Object.fromEntries(families.map((f) => [f, part.settings.envStepBudget[f]]));
  return { part: name, date: part.date, grid, envStepBudget, choices };
}
