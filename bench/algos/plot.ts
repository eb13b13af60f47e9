// Learning curves per family: for each row, greedy test success and sampled training-batch success
// against environment steps, averaged over seeds on a shared grid (runs evaluate at different step
// counts because episode lengths differ).
import { type Chart, chartsSvg } from "../../learner/report.ts";
import { meanCurve, stepGrid } from "./aggregate.ts";
import type { TrainResult } from "./results.ts";
import { type AlgoRow, ROWS } from "./rows.ts";

/** One colour per row of ROWS (StepPO first), the same whichever rows a run selects. */
const COLORS = ["#1f6feb", "#8250df", "#bf3989", "#cf222e", "#1a7f37", "#9a6700", "#57606a"];

const GRID_POINTS = 12;

export function familyCurvesSvg(family: string, rows: readonly AlgoRow[], runs: readonly TrainResult[], budget: number): string {
  const grid = stepGrid(budget, GRID_POINTS);
  const chart = (key: "testSuccess" | "trainSuccess", what: string): Chart => ({
    title: `${family}: ${what} (mean over seeds)`,
    xLabel: "environment steps",
    yLabel: "success rate",
    series: rows.flatMap((row) => {
      const curves = runs.filter((r) => r.family === family && r.row === row.id).map((r) => r.curve);
      const points = meanCurve(curves, key, grid);
      return points.length > 0 ? [{ name: row.id, color: COLORS[ROWS.indexOf(row) % COLORS.length], points }] : [];
    }),
  });
  return chartsSvg([chart("testSuccess", "greedy success, in-domain test split"), chart("trainSuccess", "training-batch success (sampled)")]);
}
