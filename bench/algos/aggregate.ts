// Means and spreads over seeds: one cell per (family, row), and the warm start per family (the shared
// starting point every row is compared against). Pure functions, unit-tested.
import type { CurveSample, TrainResult, WarmStartResult } from "./results.ts";

export interface Stat {
  mean: number;
  /** Sample standard deviation over seeds (n − 1 in the denominator); null for fewer than two values. */
  std: number | null;
  n: number;
}

export function meanStd(values: readonly number[]): Stat {
  const n = values.length;
  if (n === 0) return { mean: Number.NaN, std: null, n: 0 };
  const mean = values.reduce((s, v) => s + v, 0) / n;
  if (n < 2) return { mean, std: null, n };
  const variance = values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1);
  return { mean, std: Math.sqrt(variance), n };
}

export interface RowAggregate {
  family: string;
  row: string;
  seeds: number[];
  /** Episodes per task (the same for every seed of a row). */
  groupSize: number;
  test: Stat;
  /** Greedy validation success after RL, where every seed measured it (parts before the split: absent). */
  validation?: Stat;
  ood: Record<string, Stat>;
  train: Stat;
  envSteps: Stat;
  updates: Stat;
  wallSeconds: Stat;
  cpuSeconds: Stat;
}

export interface WarmStartAggregate {
  family: string;
  seeds: number[];
  /** Per evaluation set (train, test, each OOD family): success before RL. */
  initial: Record<string, Stat>;
  wallSeconds: Stat;
  cpuSeconds: Stat;
}

/** One aggregate per (family, row) present in `runs`, in the order given by `families` and `rows`. */
export function aggregateRuns(runs: readonly TrainResult[], families: readonly string[], rows: readonly string[]): RowAggregate[] {
  const out: RowAggregate[] = [];
  for (const family of families) {
    for (const row of rows) {
      const cell = runs.filter((r) => r.family === family && r.row === row).sort((a, b) => a.seed - b.seed);
      if (cell.length === 0) continue;
      const oodNames = [...new Set(cell.flatMap((r) => Object.keys(r.ood)))];
      out.push({
        family,
        row,
        seeds: cell.map((r) => r.seed),
        groupSize: cell[0].groupSize,
        test: meanStd(cell.map((r) => r.test)),
        ...(cell.every((r) => r.validation !== undefined) ? { validation: meanStd(cell.map((r) => r.validation as number)) } : {}),
        ood: Object.fromEntries(oodNames.map((name) => [name, meanStd(cell.map((r) => r.ood[name]))])),
        train: meanStd(cell.map((r) => r.train)),
        envSteps: meanStd(cell.map((r) => r.envSteps)),
        updates: meanStd(cell.map((r) => r.updates)),
        wallSeconds: meanStd(cell.map((r) => r.wallSeconds)),
        cpuSeconds: meanStd(cell.map((r) => r.cpuSeconds)),
      });
    }
  }
  return out;
}

export function aggregateWarmStarts(warm: readonly WarmStartResult[], families: readonly string[]): WarmStartAggregate[] {
  return families.flatMap((family) => {
    const cell = warm.filter((w) => w.family === family).sort((a, b) => a.seed - b.seed);
    if (cell.length === 0) return [];
    const names = [...new Set(cell.flatMap((w) => Object.keys(w.initial)))];
    return [
      {
        family,
        seeds: cell.map((w) => w.seed),
        initial: Object.fromEntries(names.map((name) => [name, meanStd(cell.map((w) => w.initial[name]))])),
        wallSeconds: meanStd(cell.map((w) => w.wallSeconds)),
        cpuSeconds: meanStd(cell.map((w) => w.cpuSeconds)),
      },
    ];
  });
}

/**
 * Linear interpolation of y at x through points sorted by x; clamps to the end values outside their
 * range (a run's last point is at or past the budget, its first at 0 environment steps).
 */
export function interpolate(points: readonly [number, number][], x: number): number {
  if (points.length === 0) return Number.NaN;
  if (x <= points[0][0]) return points[0][1];
  for (let i = 1; i < points.length; i++) {
    const [x1, y1] = points[i];
    if (x <= x1) {
      const [x0, y0] = points[i - 1];
      return x1 === x0 ? y1 : y0 + ((y1 - y0) * (x - x0)) / (x1 - x0);
    }
  }
  return points[points.length - 1][1];
}

/**
 * The mean learning curve of several runs (seeds) on a shared grid of environment steps: runs evaluate at
 * different step counts (episode lengths differ), so each is interpolated onto the grid, then averaged.
 */
export function meanCurve(curves: readonly CurveSample[][], key: "testSuccess" | "trainSuccess", grid: readonly number[]): [number, number][] {
  const series = curves.map((c) => c.flatMap((p): [number, number][] => (p[key] === null ? [] : [[p.envSteps, p[key] as number]]))).filter((s) => s.length > 0);
  if (series.length === 0) return [];
  return grid.map((x) => [x, series.reduce((sum, s) => sum + interpolate(s, x), 0) / series.length]);
}

/** `points + 1` evenly spaced environment-step counts from 0 to `budget`. */
export function stepGrid(budget: number, points: number): number[] {
  return Array.from({ length: points + 1 }, (_, i) => Math.round((budget * i) / points));
}
