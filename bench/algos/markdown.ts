// The Markdown report: a paragraph on how it was measured, then per family, rows × {in-domain test, each OOD family} as mean ± std over seeds,
// with the warm start (no RL) on top as the reference every row started from.
import type { RowAggregate, Stat, WarmStartAggregate } from "./aggregate.ts";
import type { PairedDiff } from "./paired.ts";
import type { TrainResult } from "./results.ts";
import type { AlgoRow } from "./rows.ts";
import type { AlgosSettings } from "./settings.ts";
import type { TuneChoice } from "./tuning.ts";

/** "0.48 ± 0.03"; the bare mean when there is no spread to show (one seed). */
export function formatStat(s: Stat | undefined, digits = 2): string {
  if (!s || s.n === 0 || !Number.isFinite(s.mean)) return "–";
  return s.std === null ? s.mean.toFixed(digits) : `${s.mean.toFixed(digits)} ± ${s.std.toFixed(digits)}`;
}

export interface FamilyTableInput {
  family: string;
  /** The family's held-out families, in column order. */
  oodNames: string[];
  warmStart?: WarmStartAggregate;
  rows: AlgoRow[];
  aggregates: RowAggregate[];
}

export function familyTable(t: FamilyTableInput): string {
  // The validation column only where the runs measured it (parts written before the split have none).
  const validation = t.aggregates.some((a) => a.family === t.family && a.validation !== undefined);
  const header = [
    "row",
    "estimator",
    "ratio",
    "G",
    "test (in-domain)",
    ...(validation ? ["validation"] : []),
    ...t.oodNames.map((n) => `OOD ${n}`),
    "train (sampled)",
    "env steps",
    "updates",
    "wall s",
  ];
  const lines = [`| ${header.join(" | ")} |`, `|${header.map((_, i) => (i < 4 ? "---" : "---:")).join("|")}|`];
  if (t.warmStart) {
    const w = t.warmStart.initial;
    lines.push(
      `| warm start (no RL) | – | – | – | ${formatStat(w.test)} | ${validation ? `${formatStat(w.validation)} | ` : ""}${t.oodNames.map((n) => formatStat(w[n])).join(" | ")} | ${formatStat(w.train)} | 0 | 0 | ${formatStat(t.warmStart.wallSeconds, 0)} |`,
    );
  }
  for (const row of t.rows) {
    const a = t.aggregates.find((x) => x.family === t.family && x.row === row.id);
    if (!a) continue;
    const cells = [
      row.label,
      row.estimator,
      row.ratio,
      String(a.groupSize),
      formatStat(a.test),
      ...(validation ? [formatStat(a.validation)] : []),
      ...t.oodNames.map((n) => formatStat(a.ood[n])),
      formatStat(a.train),
      formatStat(a.envSteps, 0),
      formatStat(a.updates, 1),
      formatStat(a.wallSeconds, 0),
    ];
    lines.push(`| ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

/** "+0.05 [−0.01, +0.11]": the paired mean difference and its 95% interval. */
export function formatPaired(d: PairedDiff): string {
  const sign = (x: number) => `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(3)}`;
  return d.low === null || d.high === null ? sign(d.mean) : `${sign(d.mean)} [${sign(d.low)}, ${sign(d.high)}]`;
}

/** The paired comparisons of one family: mean difference, 95% interval, whether it excludes 0, per-seed values. */
export function pairedTable(diffs: readonly PairedDiff[]): string {
  const lines = ["| comparison (held-out test) | mean [95% CI] | n | reads | per seed |", "|---|---:|---:|---|---|"];
  for (const d of diffs) {
    const reads = d.low === null || d.high === null ? "–" : d.low > 0 ? "above 0" : d.high < 0 ? "below 0" : "spans 0 (null)";
    lines.push(`| ${d.label} | ${formatPaired(d)} | ${d.seeds.length} | ${reads} | ${d.diffs.map((x) => x.toFixed(2)).join(", ")} |`);
  }
  return lines.join("\n");
}

export interface ReportInput {
  settings: AlgosSettings;
  rows: AlgoRow[];
  aggregates: { warmStarts: WarmStartAggregate[]; rows: RowAggregate[] };
  runs: TrainResult[];
  /** Paired (by seed) differences in held-out test success with 95% intervals. */
  paired: PairedDiff[];
  meta: { date: string; node: string; cpus: number; totalWallSeconds: number };
  /** Learning-curve picture per family, relative to the report. */
  svgs: Record<string, string>;
  /** --tune: every grid run on the tuning seeds, and each row's choice; absent or empty: untuned. */
  tuning?: TrainResult[];
  choices?: TuneChoice[];
}

/** The grid of one family: per row and config the validation success per tuning seed, its mean, the choice. */
export function tuningTable(choices: readonly TuneChoice[]): string {
  const lines = ["| row | config | learning rate | clip | validation per tuning seed | mean | chosen |", "|---|---|---:|---:|---|---:|---|"];
  for (const c of choices) {
    for (const x of c.scores) {
      const chosen = x.config.id === c.chosen.id ? "✓" : "";
      lines.push(
        `| ${c.row} | ${x.config.id} | ${x.config.learningRate} | ${x.config.clip} | ${x.seeds.map((seed, i) => `${seed}: ${x.validation[i].toFixed(2)}`).join(", ")} | ${x.mean.toFixed(3)} | ${chosen} |`,
      );
    }
  }
  return lines.join("\n");
}

/** The paragraph that says how (whether) the rows were tuned. */
export function tuningParagraph(s: AlgosSettings, choices: readonly TuneChoice[]): string {
  const from = s.choicesFrom;
  if (from && choices.length > 0) {
    const g = from.grid;
    return (
      `Configs reused (--choices-from): every row ran the learning rate and clip that the tuned part ${from.part} (${from.date.slice(0, 10)}) chose for it ` +
      `on the validation split — the same ${g.learningRates.length * g.clipFactors.length}-point grid for every row, learning rate ${g.learningRates.join(", ")} × clip ` +
      `${g.clipFactors.map((f) => `×${f}`).join(", ")} of the row's own default, tuning seeds ${g.seeds.join(", ")}, at that part's budget ` +
      `(${Object.entries(from.envStepBudget)
        .map(([f, n]) => `${f} ${n}`)
        .join(", ")} env steps). No tuning ran in this part; test played no part in the choice. Chosen: ` +
      choices.map((c) => `${c.family} ${c.row} ${c.chosen.id} (lr ${c.chosen.learningRate}, clip ${c.chosen.clip})`).join("; ") +
      "."
    );
  }
  const g = s.tune;
  if (!g || choices.length === 0) {
    return "Untuned: every row ran the shared settings above (this part predates the tuning protocol, or ran without --tune).";
  }
  return (
    `Tuned (--tune, bench/algos/tuning.ts): every row trained the same ${g.learningRates.length * g.clipFactors.length}-point grid — learning rate ` +
    `${g.learningRates.join(", ")} × clip ${g.clipFactors.map((f) => `×${f}`).join(", ")} of the row's own default — on tuning seeds ${g.seeds.join(", ")} ` +
    `(own warm starts, never final seeds), and kept the config with the best mean greedy success on the validation split ` +
    `(disjoint from train and test; ties go to the earlier config in grid order, the first being ${g.learningRates[0] === s.algorithm.learningRate && g.clipFactors[0] === 1 ? "the untuned default" : `lr ${g.learningRates[0]}, clip ×${g.clipFactors[0]}`}). The final seeds then ran ` +
    "each row's chosen config; test played no part in the choice. Chosen: " +
    choices.map((c) => `${c.family} ${c.row} ${c.chosen.id} (lr ${c.chosen.learningRate}, clip ${c.chosen.clip})`).join("; ") +
    "."
  );
}

export function markdownReport(r: ReportInput): string {
  const s = r.settings;
  const choices = r.choices ?? [];
  const tuned = (s.tune !== undefined || s.choicesFrom !== undefined) && choices.length > 0;
  const familyEpochs = Object.entries(s.warmupEpochs ?? {})
    .map(([f, e]) => ` (${f} ${e})`)
    .join("");
  const model = s.model.dModel ? `d=${s.model.dModel}, ${s.model.layers} layer(s), ${s.model.heads} heads` : `preset ${s.model.preset}`;
  const out = [
    `# Algorithms benchmark (${s.mode}${s.mode === "quick" ? ": a smoke run, its numbers mean nothing" : ""})`,
    "",
    `${r.meta.date}, node ${r.meta.node}, ${r.meta.cpus} CPUs, backend ${s.backend}, ${s.jobs} worker process(es); ` +
      `${(r.meta.totalWallSeconds / 60).toFixed(1)} min in all.`,
    "",
    `Every cell is the mean ± sample std over seeds ${s.seeds.join(", ")} (n = ${s.seeds.length}) of the success rate after RL: greedy on ` +
      `${s.evalEpisodes} fixed tasks of the in-domain test split${tuned ? ", of the validation split" : ""} and of each held-out (OOD) family, and sampled on ${s.evalEpisodes} training tasks. ` +
      "Per (family, seed) every row starts from one shared behaviour-cloning warm start (its success is the first line: what RL starts from) and " +
      `trains until the family's budget of environment steps is reached (${s.families.map((f) => `${f} ${s.envStepBudget[f]}`).join(", ")}; ` +
      `the last update may overshoot it, the env steps column shows by how much). ${s.episodesPerUpdate} episodes per update for every row: ` +
      `${s.episodesPerUpdate / s.groupSize} tasks × G = ${s.groupSize} episodes for the grouped estimators, ${s.episodesPerUpdate} tasks × 1 for the others. ` +
      `Model ${model}; warm-up ${s.warmup.demonstrations} demonstrations (${s.warmup.suboptimalFraction * 100}% sub-optimal) × ${s.warmup.epochs} epochs${familyEpochs}; ` +
      `RL ${s.algorithm.epochs} PPO epochs, minibatches of ${s.algorithm.minibatchSteps} steps, learning rate ${s.algorithm.learningRate}, ` +
      `rollout temperature ${s.temperature} for every row; clip, γ and λ are each ratio mode's and estimator's defaults unless the row names its own ` +
      `(below)${tuned ? "; learning rate and clip as tuned per row (below)" : "; nothing was tuned per row"}.`,
    "",
    tuningParagraph(s, choices),
    "",
    `Per row (ratio mode, clip, γ, λ, episodes per task G): ${r.rows
      .map((row) => {
        const x = r.runs.find((run) => run.row === row.id);
        const lr = x?.learningRate ?? s.algorithm.learningRate;
        return x ? `${row.id} ${x.ratio}, lr ${lr}, clip ${x.clip}, γ ${x.gamma}, λ ${x.lambda}, G ${x.groupSize}` : `${row.id} (not run)`;
      })
      .join("; ")}. Why each ratio mode: ${r.rows.map((row) => `${row.id}: ${row.ratioSource}`).join("; ")}.`,
    "",
  ];
  for (const family of s.families) {
    const oodNames = [...new Set(r.runs.filter((x) => x.family === family).flatMap((x) => Object.keys(x.ood)))];
    const warmStart = r.aggregates.warmStarts.find((w) => w.family === family);
    out.push(`## ${family}`, "", familyTable({ family, oodNames, warmStart, rows: r.rows, aggregates: r.aggregates.rows }), "");
    const familyChoices = choices.filter((c) => c.family === family);
    if (familyChoices.length > 0) {
      out.push(
        `Tuning on validation (seeds ${(s.tune ?? s.choicesFrom?.grid)?.seeds.join(", ")}${s.choicesFrom ? `, in ${s.choicesFrom.part}` : ""}): each row's grid, greedy validation success after RL per tuning seed; ✓ the config the final seeds ran.`,
        "",
        tuningTable(familyChoices),
        "",
      );
    }
    const paired = r.paired.filter((d) => d.family === family);
    if (paired.length > 0) {
      out.push(
        "Paired by seed (same warm start, same task draws): mean difference in held-out test success with its 95% Student-t interval.",
        "",
        pairedTable(paired),
        "",
      );
    }
    if (r.svgs[family]) out.push(`![${family} learning curves](${r.svgs[family]})`, "");
  }
  return out.join("\n");
}
