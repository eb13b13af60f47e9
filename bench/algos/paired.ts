// Paired comparisons over seeds: rows of one (family, seed) start from the same warm start and see the
// same task draws, so the seed-to-seed spread they share cancels in their per-seed difference. Each
// comparison is the mean of those differences with a 95% Student-t interval (n − 1 degrees of freedom).
// An interval that spans 0 is a null result at this number of seeds.
import type { TrainResult, WarmStartResult } from "./results.ts";

export interface PairedDiff {
  family: string;
  /** "steppo − warm start", "steppo − ppo", … */
  label: string;
  /** Seeds present in both arms. */
  seeds: number[];
  /** Per-seed differences, in seed order. */
  diffs: number[];
  mean: number;
  /** 95% interval; null with fewer than two seeds. */
  low: number | null;
  high: number | null;
}

/** Two-sided 95% Student-t critical values by degrees of freedom (1–30); beyond 30 the normal's 1.96 is close. */
const T95 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069,
  2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

export function t95(df: number): number {
  if (!Number.isInteger(df) || df < 1) throw new Error(`t95: degrees of freedom must be a positive integer, got ${df}`);
  return df <= T95.length ? T95[df - 1] : 1.96;
}

/** Mean of `diffs` with its 95% t-interval. */
export function pairedInterval(diffs: readonly number[]): { mean: number; low: number | null; high: number | null } {
  const n = diffs.length;
  if (n === 0) return { mean: Number.NaN, low: null, high: null };
  const mean = diffs.reduce((s, d) => s + d, 0) / n;
  if (n < 2) return { mean, low: null, high: null };
  const sd = Math.sqrt(diffs.reduce((s, d) => s + (d - mean) ** 2, 0) / (n - 1));
  const half = (t95(n - 1) * sd) / Math.sqrt(n);
  return { mean, low: mean - half, high: mean + half };
}

/** The held-out test success of one arm per seed: a row's runs, or the warm start ("warm-start"). */
function arm(family: string, row: string, runs: readonly TrainResult[], warm: readonly WarmStartResult[]): Map<number, number> {
  if (row === "warm-start") return new Map(warm.filter((w) => w.family === family).map((w) => [w.seed, w.initial.test]));
  return new Map(runs.filter((r) => r.family === family && r.row === row).map((r) => [r.seed, r.test]));
}

/** `a − b` on held-out test success, paired by seed, for each family where both arms ran. */
export function pairedDiffs(
  runs: readonly TrainResult[],
  warm: readonly WarmStartResult[],
  families: readonly string[],
  pairs: readonly [string, string][],
): PairedDiff[] {
  const out: PairedDiff[] = [];
  for (const family of families) {
    for (const [a, b] of pairs) {
      const armA = arm(family, a, runs, warm);
      const armB = arm(family, b, runs, warm);
      const seeds = [...armA.keys()].filter((s) => armB.has(s)).sort((x, y) => x - y);
      if (seeds.length === 0) continue;
      const diffs = seeds.map((s) => (armA.get(s) as number) - (armB.get(s) as number));
      out.push({ family, label: `${a} − ${b}`, seeds, diffs, ...pairedInterval(diffs) });
    }
  }
  return out;
}

/** The comparisons the report reads first: every row against the warm start, StepPO against each baseline. */
export function defaultPairs(rows: readonly string[]): [string, string][] {
  const pairs: [string, string][] = rows.map((r) => [r, "warm-start"]);
  if (rows.includes("steppo")) for (const r of rows) if (r !== "steppo") pairs.push(["steppo", r]);
  return pairs;
}
