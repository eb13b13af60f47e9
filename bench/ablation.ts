// `npm run bench -- ablation`: the paper's 2 × 2 ablation on multihop-qa at 9000 env steps, read from the part
// that ran its four cells (bench/results/ablation/, docs/benchmarks.md "The 2 × 2 ablation"): a report over
// committed runs (bench/algos/ablation.ts), not a training run of its own. Writes
// bench/results/ablation-multihop-qa.json and prints the table.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { ablationMarkdown, ablationReport } from "./algos/ablation.ts";
import type { AlgosPart } from "./algos/assemble.ts";

export const runByDefault = false;

const root = join(import.meta.dirname, "..");
const RESULTS = join(root, "bench", "results");
const FAMILY = "multihop-qa";
/** The part: four rows tuned on validation (the same grid and tuning seeds), then run on seeds 6–15 at 200 tasks a set. */
const PART = join(RESULTS, "ablation", "algos-parts", "multihop-qa-9000steps-200tasks.json");

export async function main(): Promise<void> {
  if (!existsSync(PART))
    throw new Error(`ablation: ${relative(root, PART)} is missing: run the pre-registered part first (docs/benchmarks.md, "The 2 × 2 ablation")`);
  const part = JSON.parse(readFileSync(PART, "utf8")) as AlgosPart;
  const report = ablationReport(part, FAMILY);
  const out = join(RESULTS, `ablation-${FAMILY}.json`);
  writeFileSync(
    out,
    `${JSON.stringify(
      {
        benchmark: "ablation",
        description: `The StepPO paper's 2 × 2 ablation ({step, token} GAE × {step, token} ratio) on ${FAMILY} at ${part.settings.envStepBudget[FAMILY]} env steps, seeds ${report.seeds.join(", ")}, ${part.settings.evalEpisodes} distinct tasks a set: the four cells of one part, each tuned on validation with the same grid and tuning seeds, paired by seed (greedy held-out test success, 95% t-intervals).`,
        date: new Date().toISOString(),
        source: relative(root, PART),
        partDate: part.date,
        ...report,
      },
      null,
      1,
    )}\n`,
  );
  process.stdout.write(`${ablationMarkdown(report)}\n→ ${relative(root, out)}\n`);
}
