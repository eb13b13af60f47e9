// `npm run bench:algos [-- --quick] [--families a,b] [--rows x,y] [--seeds 1,2,3] [--eval-tasks N] [--jobs N] [--out PREFIX]
//                     [--tune [--tuning-seeds 101,102] [--learning-rates 3e-4,1e-4] [--clip-factors 1,2]]
//                     [--choices-from bench/results/algos-parts/<tuned part>.json] [--env-step-budget N]`
//
// StepPO against the paper's ablation and the usual baselines (bench/algos/rows.ts), on each task family
// (multihop-qa, its long-horizon setting multihop-qa-long, paper-search, textworld), over several seeds. Per (family, seed) the behaviour-cloning
// warm-up runs once (learner/warm-start.ts) and every row starts from that same model; each row then
// trains with the embedded runner (runtime/run-job.ts) until the family's budget of environment steps is
// reached, with the same episodes per update (grouped estimators: 8 tasks × 4 episodes; the others: 32
// tasks × 1), and is evaluated the same way: greedy success on fixed, seeded task sets of the in-domain
// test split and of each held-out (OOD) family. Output: bench/results/algos.json (settings, every run
// with its seed, wall and CPU time, env steps and curve; means ± std over seeds), bench/results/algos.md
// (the tables, also printed at the end) and bench/results/algos-<family>.svg (learning curves).
// --quick writes the same files as algos-quick.*.
//
// --tune (bench/algos/tuning.ts): first every row trains the same grid (learning rate 3e-4, 1e-4 × clip ×1,
// ×2 of the row's default) on the tuning seeds (default 101, 102) and keeps the config with the best mean
// validation success; then the final seeds (default 1–5) run each row's chosen config and are reported on
// test, paired by seed as without tuning. The tuning runs are kept in the part (`tuning[]`) with the choice.
// --choices-from PART: no grid here; every row runs the config (learning rate, clip) that tuned PART chose for it
// on validation, on the final seeds (default 1–5). --env-step-budget N: every selected family trains N env steps
// instead of its default; the part is then saved as <families>-<N>steps.json, beside the default-budget ones.
// How long each part takes, per task and in all, measured run by run: docs/benchmarks.md ("How long it takes"
// and each part's entry).
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { aggregateRuns, aggregateWarmStarts } from "./algos/aggregate.ts";
import { type AlgosPart, assembleParts } from "./algos/assemble.ts";
import { markdownReport } from "./algos/markdown.ts";
import { defaultPairs, pairedDiffs } from "./algos/paired.ts";
import { familyCurvesSvg } from "./algos/plot.ts";
import { runTasks, warmKey } from "./algos/pool.ts";
import type { TaskResult, TrainResult, WarmStartResult } from "./algos/results.ts";
import { selectRows } from "./algos/rows.ts";
import { type AlgosSettings, DEFAULT_SETTINGS, FAMILY_NAMES, type Family, QUICK_SETTINGS, TUNED_SEEDS } from "./algos/settings.ts";
import { planFinalTasks, planTasks, planTuningTasks, type Task, taskName } from "./algos/tasks.ts";
import { chooseConfigs, DEFAULT_TUNE_GRID, reuseChoices, type TuneChoice, type TunedPartLike } from "./algos/tuning.ts";
import { runHeader } from "./support/run-header.ts";

/** About an hour: `npm run bench` runs it only when named (`npm run bench -- algos`), see bench/run.ts. */
export const runByDefault = false;

const RESULTS = join(dirname(fileURLToPath(import.meta.url)), "results");

function list(flag: string, value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const items = value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) throw new Error(`--${flag}: expected a comma-separated list`);
  return items;
}

/** A flag's comma-separated positive numbers (undefined when the flag is absent), or an error naming the flag. */
export function positiveNumbers(flag: string, value: string | undefined): number[] | undefined {
  return list(flag, value)?.map((s) => {
    const n = Number(s);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${flag}: expected positive numbers, got "${s}"`);
    return n;
  });
}

/** Settings from the command line: --quick picks the smoke-run settings, the other flags narrow them. */
export function settingsFromArgs(argv: string[]): AlgosSettings {
  const { values } = parseArgs({
    args: argv,
    allowPositionals: true, // `npm run bench -- algos --quick` passes the module name through
    options: {
      quick: { type: "boolean", default: false },
      families: { type: "string" },
      rows: { type: "string" },
      seeds: { type: "string" },
      jobs: { type: "string" },
      out: { type: "string" },
      tune: { type: "boolean", default: false },
      "tuning-seeds": { type: "string" },
      "learning-rates": { type: "string" },
      "clip-factors": { type: "string" },
      "choices-from": { type: "string" },
      "env-step-budget": { type: "string" },
      "eval-tasks": { type: "string" },
    },
  });
  const base = values.quick ? QUICK_SETTINGS : DEFAULT_SETTINGS;
  const families = list("families", values.families) ?? base.families;
  const unknown = families.filter((f) => !(FAMILY_NAMES as readonly string[]).includes(f));
  if (unknown.length > 0) throw new Error(`--families: unknown ${unknown.join(", ")}; known: ${FAMILY_NAMES.join(", ")}`);
  const seedList = (flag: string, items: string[]) =>
    items.map((s) => {
      const n = Number(s);
      if (!Number.isInteger(n) || n < 0) throw new Error(`--${flag}: expected non-negative integers, got "${s}"`);
      return n;
    });
  for (const flag of ["tuning-seeds", "learning-rates", "clip-factors"] as const) {
    if (!values.tune && values[flag] !== undefined) throw new Error(`--${flag}: only with --tune`);
  }
  const distinct = (flag: string, xs: number[] | undefined) => {
    if (xs && new Set(xs).size !== xs.length) throw new Error(`--${flag}: a value is listed twice`);
    return xs;
  };
  // The grid is the same for every row either way; these flags only replace the default points (the first
  // point is where ties go, so list the one validation should fall back to first).
  const learningRates = distinct("learning-rates", positiveNumbers("learning-rates", values["learning-rates"]));
  const clipFactors = distinct("clip-factors", positiveNumbers("clip-factors", values["clip-factors"]));
  const reusing = values["choices-from"] !== undefined;
  if (reusing && values.tune) throw new Error("--choices-from: not with --tune (it reuses a tuned part's choices instead of tuning)");
  const seeds = seedList("seeds", list("seeds", values.seeds) ?? (values.tune || reusing ? TUNED_SEEDS : base.seeds).map(String));
  const tuningSeeds = values.tune ? seedList("tuning-seeds", list("tuning-seeds", values["tuning-seeds"]) ?? DEFAULT_TUNE_GRID.seeds.map(String)) : [];
  // A run selected on a seed would report that seed's luck; the run directories would collide, too.
  const shared = tuningSeeds.filter((s) => seeds.includes(s));
  if (shared.length > 0) throw new Error(`--tuning-seeds: ${shared.join(", ")} also final seed(s); tuning seeds must differ from --seeds`);
  const jobs = values.jobs === undefined ? base.jobs : Number(values.jobs);
  if (!Number.isInteger(jobs) || jobs < 1) throw new Error(`--jobs: expected a positive integer, got "${values.jobs}"`);
  const out = values.out ?? join(RESULTS, values.quick ? "algos-quick" : "algos");
  let envStepBudget = base.envStepBudget;
  if (values["env-step-budget"] !== undefined) {
    const n = Number(values["env-step-budget"]);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--env-step-budget: expected a positive integer, got "${values["env-step-budget"]}"`);
    envStepBudget = { ...base.envStepBudget, ...Object.fromEntries(families.map((f) => [f, n])) };
  }
  let evalEpisodes = base.evalEpisodes;
  if (values["eval-tasks"] !== undefined) {
    evalEpisodes = Number(values["eval-tasks"]);
    if (!Number.isInteger(evalEpisodes) || evalEpisodes < 1) throw new Error(`--eval-tasks: expected a positive integer, got "${values["eval-tasks"]}"`);
  }
  const rowIds = selectRows(list("rows", values.rows)).map((r) => r.id);
  let choicesFrom: AlgosSettings["choicesFrom"];
  if (reusing) {
    const from = values["choices-from"] as string;
    const part = JSON.parse(readFileSync(from, "utf8")) as TunedPartLike;
    choicesFrom = reuseChoices(part, from, families, rowIds, seeds);
  }
  const tune = values.tune
    ? {
        learningRates: learningRates ?? DEFAULT_TUNE_GRID.learningRates,
        clipFactors: clipFactors ?? DEFAULT_TUNE_GRID.clipFactors,
        seeds: tuningSeeds,
      }
    : undefined;
  const settings: AlgosSettings = {
    ...base,
    families: families as Family[],
    envStepBudget,
    evalEpisodes,
    rows: rowIds,
    seeds,
    jobs,
    out,
    ...(tune ? { tune } : {}),
    ...(choicesFrom ? { choicesFrom } : {}),
  };
  if (choicesFrom && resolve(partPath(settings)) === resolve(choicesFrom.part)) {
    throw new Error(`--choices-from: this part would be saved over ${choicesFrom.part}; give --env-step-budget or --out`);
  }
  return settings;
}

/**
 * Where a run's part goes: <out>-parts/<families>.json, with `-<N>steps` where a family's budget is not the
 * mode's default (--env-step-budget), so a part at another budget never replaces the default one.
 */
export function partPath(settings: AlgosSettings): string {
  const base = settings.mode === "quick" ? QUICK_SETTINGS : DEFAULT_SETTINGS;
  const budgets = [...new Set(settings.families.filter((f) => settings.envStepBudget[f] !== base.envStepBudget[f]).map((f) => settings.envStepBudget[f]))];
  const budget = budgets.length > 0 ? `-${budgets.join("+")}steps` : "";
  // Another evaluation set size is another experiment: its own part, never written over the default's.
  const tasks = settings.evalEpisodes !== base.evalEpisodes ? `-${settings.evalEpisodes}tasks` : "";
  return join(`${resolve(settings.out)}-parts`, `${settings.families.join("+")}${budget}${tasks}.json`);
}

export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  const settings = settingsFromArgs(argv);
  const rows = selectRows(settings.rows);
  const workDir = mkdtempSync(join(tmpdir(), "steppo-bench-algos-"));
  const verbose = Boolean(process.env.STEPPO_BENCH_VERBOSE);
  const log = (line: string) => process.stderr.write(`  ${line}\n`);
  const t0 = Date.now();
  const run = async (tasks: Task[], warmStartsDone: string[] = []) => {
    let done = 0;
    return runTasks(tasks, settings, {
      jobs: settings.jobs,
      workDir,
      verbose,
      log,
      warmStartsDone,
      onResult: (task, r) => {
        done++;
        const what =
          r.kind === "warm-start"
            ? `test ${r.initial.test.toFixed(2)} before RL`
            : `${r.validation === undefined ? "" : `validation ${r.validation.toFixed(2)}, `}test ${r.test.toFixed(2)}, ${Object.entries(r.ood)
                .map(([k, v]) => `${k} ${v.toFixed(2)}`)
                .join(", ")}; ${r.envSteps} env steps in ${r.updates} updates`;
        log(`[${done}/${tasks.length}] ${taskName(task)}: ${what}; ${r.wallSeconds.toFixed(0)} s wall, ${r.cpuSeconds.toFixed(0)} s CPU`);
      },
    });
  };
  const counts = (tasks: Task[]) =>
    `${tasks.filter((t) => t.kind === "train").length} trainings + ${tasks.filter((t) => t.kind === "warm-start").length} warm starts`;
  let results: TaskResult[];
  let tuning: TrainResult[] = [];
  let choices: TuneChoice[] = [];
  let tuningWarmStarts: WarmStartResult[] = [];
  try {
    if (settings.choicesFrom) {
      choices = settings.choicesFrom.choices;
      // Warm starts first, then every row of every (family, seed) with the config its tuned part chose.
      const tasks = [...planTasks(settings, []), ...planFinalTasks(settings, choices)];
      log(
        `algos (${settings.mode}, configs chosen by ${settings.choicesFrom.part}): ${settings.families.length} families × ${rows.length} rows × ${settings.seeds.length} seeds = ${counts(tasks)}, ${settings.jobs} worker process(es)`,
      );
      results = await run(tasks);
    } else if (!settings.tune) {
      const tasks = planTasks(settings, settings.rows);
      log(
        `algos (${settings.mode}): ${settings.families.length} families × ${rows.length} rows × ${settings.seeds.length} seeds = ${counts(tasks)}, ${settings.jobs} worker process(es)`,
      );
      results = await run(tasks);
    } else {
      const grid = settings.tune;
      const first = planTuningTasks(settings, settings.rows);
      log(
        `algos (${settings.mode}, tuned): ${settings.families.length} families × ${rows.length} rows × ${grid.learningRates.length * grid.clipFactors.length} configs × ` +
          `tuning seeds ${grid.seeds.join(", ")}, then final seeds ${settings.seeds.join(", ")}; tuning phase: ${counts(first)}, ${settings.jobs} worker process(es)`,
      );
      const firstResults = await run(first);
      tuning = firstResults.filter((r): r is TrainResult => r.kind === "train");
      choices = chooseConfigs(tuning, settings.families, rows, grid);
      for (const c of choices) {
        log(`${c.family} ${c.row}: chose ${c.chosen.id} (validation ${c.scores.map((x) => `${x.config.id} ${x.mean.toFixed(3)}`).join(", ")})`);
      }
      const final = planFinalTasks(settings, choices);
      log(`final phase: ${counts(final)}`);
      const warm = firstResults.filter((r): r is WarmStartResult => r.kind === "warm-start");
      // The tuning seeds' warm starts are the tuning runs' reference, not the reported rows': kept apart.
      tuningWarmStarts = warm.filter((w) => !settings.seeds.includes(w.seed));
      results = [...warm.filter((w) => settings.seeds.includes(w.seed)), ...(await run(final, warm.map(warmKey)))];
    }
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
  const totalWallSeconds = (Date.now() - t0) / 1000;

  const warmStarts = results.filter((r): r is WarmStartResult => r.kind === "warm-start");
  const runs = results.filter((r): r is TrainResult => r.kind === "train");
  const aggregates = { warmStarts: aggregateWarmStarts(warmStarts, settings.families), rows: aggregateRuns(runs, settings.families, settings.rows) };
  const prefix = resolve(settings.out);
  mkdirSync(dirname(prefix), { recursive: true });
  const svgs: Record<string, string> = {};
  for (const family of settings.families) {
    const path = `${prefix}-${family}.svg`;
    writeFileSync(path, familyCurvesSvg(family, rows, runs, settings.envStepBudget[family]));
    svgs[family] = path;
  }
  const meta = { ...runHeader(), totalWallSeconds };
  const paired = pairedDiffs(runs, warmStarts, settings.families, defaultPairs(settings.rows));
  const markdown = markdownReport({ settings, rows, aggregates, runs, paired, meta, svgs: relativeTo(dirname(prefix), svgs), tuning, choices });
  const json = {
    benchmark: "algos",
    description:
      "StepPO vs the paper's ablation and baselines: per (family, seed) one behaviour-cloning warm start shared by every row; each row trains " +
      "with the embedded runner until the family's environment-step budget is reached, with the same episodes per update, then greedy success " +
      "on the in-domain test split and each OOD family (fixed, seeded task sets). std is the sample std over seeds (n − 1). With settings.tune: " +
      "tuning[] holds every row's grid on the tuning seeds, choices[] each row's config by mean validation success; runs[] ran the chosen config.",
    ...meta,
    settings,
    rows: rows.map((r) => ({ ...r, groupSize: runs.find((x) => x.row === r.id)?.groupSize })),
    warmStarts,
    runs,
    ...(settings.tune ? { tuning, tuningWarmStarts, choices } : {}),
    ...(settings.choicesFrom ? { choices } : {}),
    aggregates,
    paired,
  };
  // This run is one part; the report is every family's newest part (bench/algos/assemble.ts).
  const part = partPath(settings);
  const partsDir = dirname(part);
  mkdirSync(partsDir, { recursive: true });
  writeFileSync(part, `${JSON.stringify(json, null, 2)}\n`);
  const parts = readdirSync(partsDir)
    .filter((f) => f.endsWith(".json"))
    .map((f) => JSON.parse(readFileSync(join(partsDir, f), "utf8")) as AlgosPart);
  const allSvgs = Object.fromEntries(FAMILY_NAMES.map((f) => [f, `${basename(prefix)}-${f}.svg`]));
  const assembled = assembleParts(parts, allSvgs);
  writeFileSync(`${prefix}.json`, `${JSON.stringify(assembled.json, null, 2)}\n`);
  writeFileSync(`${prefix}.md`, assembled.markdown);
  process.stdout.write(`${markdown}\n`);
  log(
    `algos: ${(totalWallSeconds / 60).toFixed(1)} min → ${part}; ${prefix}.json and ${prefix}.md assembled from ${parts.length} part(s); ${Object.values(svgs).join(", ")}`,
  );
}

function relativeTo(dir: string, paths: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(paths).map(([k, p]) => [k, p.startsWith(`${dir}/`) ? p.slice(dir.length + 1) : p]));
}

// Run directly (`npm run bench:algos`); bench/run.ts imports the module and calls main() itself.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    process.stderr.write(`bench algos: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
}
