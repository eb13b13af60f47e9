// The paper's 2 × 2 ablation ({step, token} GAE × {step, token} ratio) read from one part that ran all four
// cells: rows of one part share each seed's warm start and task draws, so they pair by seed. (Rows of two parts
// would pair only if both parts' warm starts were the same; between 2026-12-01 and 2026-12-02 they changed.)
import { meanStd } from "./aggregate.ts";
import type { AlgosPart } from "./assemble.ts";
import { formatPaired } from "./markdown.ts";
import { pairedDiffs, type PairedDiff } from "./paired.ts";
import { selectRows } from "./rows.ts";

/** The grid's cells, in the paper's order: StepPO, without the step ratio, without step GAE, without both (PPO). */
export const ABLATION_ROWS = ["steppo", "step-gae-token-ratio", "token-gae-step-ratio", "ppo"] as const;

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
  meanTest: number;
  stdTest: number;
  meanValidation: number | null;
}

export interface AblationReport {
  family: string;
  /** The part's seeds (every cell ran on each). */
  seeds: number[];
  cells: CellSummary[];
  paired: PairedDiff[];
  /** StepPO > each single ablation > PPO in the means (the paper's ordering). */
  paperOrderingHolds: boolean;
}

/**
 * The 2 × 2 grid of `family` in `part`, over the part's seeds. A cell without a run on one of them is an error
 * naming the cell and the seeds: the grid's means and pairs would be over fewer seeds than the part says.
 */
export function ablationReport(part: AlgosPart, family: string): AblationReport {
  const seeds = [...part.settings.seeds].sort((a, b) => a - b);
  const runs = part.runs.filter((r) => r.family === family && (ABLATION_ROWS as readonly string[]).includes(r.row) && seeds.includes(r.seed));
  for (const row of ABLATION_ROWS) {
    const missing = seeds.filter((seed) => !runs.some((r) => r.row === row && r.seed === seed));
    if (missing.length > 0) throw new Error(`ablation: the part of ${part.date} has no ${row} run on ${family} for seed(s) ${missing.join(", ")}`);
  }
  const cells = selectRows(ABLATION_ROWS).map((c): CellSummary => {
    const rs = runs.filter((r) => r.row === c.id);
    const test = meanStd(rs.map((r) => r.test));
    const validation = rs.every((r) => r.validation !== undefined) ? meanStd(rs.map((r) => r.validation as number)).mean : null;
    return { row: c.id, estimator: c.estimator, ratio: c.ratio, meanTest: test.mean, stdTest: test.std ?? 0, meanValidation: validation };
  });
  const mean = (row: string) => cells.find((c) => c.row === row)!.meanTest;
  const paperOrderingHolds =
    mean("steppo") > Math.max(mean("step-gae-token-ratio"), mean("token-gae-step-ratio")) &&
    Math.min(mean("step-gae-token-ratio"), mean("token-gae-step-ratio")) > mean("ppo");
  return { family, seeds, cells, paired: pairedDiffs(runs, [], [family], ABLATION_PAIRS), paperOrderingHolds };
}

/** The report as markdown: the cells, then the paired differences. */
export function ablationMarkdown(r: AblationReport): string {
  const lines = [
    `2 × 2 ablation on ${r.family}, seeds ${r.seeds.join(", ")} (greedy held-out test success, paired by seed, 95% t-intervals)`,
    "",
    "| cell | GAE | ratio | test (mean ± std) | validation |",
    "|---|---|---|---:|---:|",
    ...r.cells.map(
      (c) => `| ${c.row} | ${c.estimator} | ${c.ratio} | ${c.meanTest.toFixed(3)} ± ${c.stdTest.toFixed(3)} | ${c.meanValidation?.toFixed(3) ?? "–"} |`,
    ),
    "",
    "| comparison | mean [95% interval] |",
    "|---|---:|",
    ...r.paired.map((p) => `| ${p.label} | ${formatPaired(p)} |`),
    "",
    `The paper's ordering (StepPO > each single ablation > PPO) ${r.paperOrderingHolds ? "holds" : "does not hold"} in the means.`,
  ];
  return lines.join("\n");
}
