// The paper's 2 × 2 ablation ({step, token} GAE × {step, token} ratio) read from one part that ran all four
// cells: rows of one part share each seed's warm start and task draws, so they pair by seed. (Rows of two parts
// would pair only if both parts' warm starts were the same; between 2026-12-01 and 2026-12-02 they changed.)
import type { AlgosPart } from "./assemble.ts";
import { pairedDiffs, type PairedDiff } from "./paired.ts";

/** The grid's cells: rows of bench/algos/rows.ts, named by which half of StepPO each keeps. */
export const ABLATION_CELLS = [
  { row: "steppo", estimator: "step-gae", ratio: "step" },
  { row: "step-gae-token-ratio", estimator: "step-gae", ratio: "token" },
  { row: "token-gae-step-ratio", estimator: "token-gae", ratio: "step" },
  { row: "ppo", estimator: "token-gae", ratio: "token" },
] as const;

/** StepPO against each cell, each single ablation against PPO: the differences the paper's ordering is about. */
export const ABLATION_PAIRS: [string, string][] = [
  ["steppo", "step-gae-token-ratio"],
  ["steppo", "token-gae-step-ratio"],
  ["steppo", "ppo"],
  ["step-gae-token-ratio", "ppo"],
  ["token-gae-step-ratio", "ppo"],
];

export interface CellSummary {
  row: string;
  estimator: string;
  ratio: string;
  seeds: number[];
  meanTest: number;
  stdTest: number;
  meanValidation: number | null;
}

export interface AblationReport {
  family: string;
  /** Seeds where every cell ran. */
  seeds: number[];
  cells: CellSummary[];
  paired: PairedDiff[];
  /** StepPO > each single ablation > PPO in the means (the paper's ordering). */
  paperOrderingHolds: boolean;
}

/**
 * The 2 × 2 grid of `family` in `part`, over the seeds where all four cells ran. A cell the part did not run is
 * an error naming it.
 */
export function ablationReport(part: AlgosPart, family: string): AblationReport {
  const cellRows = ABLATION_CELLS.map((c) => c.row) as string[];
  const runs = part.runs.filter((r) => r.family === family && cellRows.includes(r.row));
  for (const row of cellRows) if (!runs.some((r) => r.row === row)) throw new Error(`ablation: the part of ${part.date} ran no ${row} on ${family}`);
  const seedsOf = (row: string) => new Set(runs.filter((r) => r.row === row).map((r) => r.seed));
  const seeds = [...seedsOf("steppo")].filter((s) => cellRows.every((row) => seedsOf(row).has(s))).sort((a, b) => a - b);
  const inGrid = runs.filter((r) => seeds.includes(r.seed));
  const cells = ABLATION_CELLS.map((c): CellSummary => {
    const rs = inGrid.filter((r) => r.row === c.row);
    const tests = rs.map((r) => r.test);
    const mean = tests.reduce((s, x) => s + x, 0) / tests.length;
    const std = Math.sqrt(tests.reduce((s, x) => s + (x - mean) ** 2, 0) / Math.max(1, tests.length - 1));
    const vals = rs.map((r) => r.validation).filter((v): v is number => v !== undefined);
    return {
      ...c,
      seeds,
      meanTest: mean,
      stdTest: std,
      meanValidation: vals.length === rs.length ? vals.reduce((s, x) => s + x, 0) / vals.length : null,
    };
  });
  const mean = (row: string) => cells.find((c) => c.row === row)!.meanTest;
  const paperOrderingHolds =
    mean("steppo") > Math.max(mean("step-gae-token-ratio"), mean("token-gae-step-ratio")) &&
    Math.min(mean("step-gae-token-ratio"), mean("token-gae-step-ratio")) > mean("ppo");
  return { family, seeds, cells, paired: pairedDiffs(inGrid, [], [family], ABLATION_PAIRS), paperOrderingHolds };
}

/** The report as markdown: the cells, then the paired differences. */
export function ablationMarkdown(r: AblationReport): string {
  const f = (x: number) => (x >= 0 ? "+" : "−") + Math.abs(x).toFixed(3);
  const lines = [
    `2 × 2 ablation on ${r.family}, seeds ${r.seeds.join(", ")} (greedy held-out test success, paired by seed, 95% t-intervals)`,
    "",
    "| cell | GAE | ratio | test (mean ± std) | validation |",
    "|---|---|---|---:|---:|",
    ...r.cells.map(
      (c) => `| ${c.row} | ${c.estimator} | ${c.ratio} | ${c.meanTest.toFixed(3)} ± ${c.stdTest.toFixed(3)} | ${c.meanValidation?.toFixed(3) ?? "–"} |`,
    ),
    "",
    "| comparison | mean | 95% interval |",
    "|---|---:|---|",
    ...r.paired.map((p) => `| ${p.label} | ${f(p.mean)} | [${p.low === null ? "–" : f(p.low)}, ${p.high === null ? "–" : f(p.high)}] |`),
    "",
    `The paper's ordering (StepPO > each single ablation > PPO) ${r.paperOrderingHolds ? "holds" : "does not hold"} in the means.`,
  ];
  return lines.join("\n");
}
