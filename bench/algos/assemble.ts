// bench/results/algos.{json,md} assembled from part runs: a full grid does not fit in one ~90-minute run on
// 2 cores, so each run (`--families …`) is saved as a part, and every family is reported from the newest
// part that trained it. Each part keeps its own settings and date: parts run with different settings are
// shown as such, never merged into one row. Parts written before the tuning protocol (no tuning[], no
// validation scores) are reported as untuned.
import { aggregateRuns, aggregateWarmStarts, type RowAggregate, type WarmStartAggregate } from "./aggregate.ts";
import { markdownReport } from "./markdown.ts";
import { defaultPairs, type PairedDiff, pairedDiffs } from "./paired.ts";
import type { TrainResult, WarmStartResult } from "./results.ts";
import type { AlgoRow } from "./rows.ts";
import type { AlgosSettings, Family } from "./settings.ts";
import type { TuneChoice } from "./tuning.ts";

/** What one run writes (its algos.json as it always was). */
export interface AlgosPart {
  date: string;
  node: string;
  cpus: number;
  totalWallSeconds: number;
  settings: AlgosSettings;
  rows: AlgoRow[];
  warmStarts: WarmStartResult[];
  runs: TrainResult[];
  /** --tune parts: every grid run on the tuning seeds, their warm starts, and each row's choice. */
  tuning?: TrainResult[];
  tuningWarmStarts?: WarmStartResult[];
  choices?: TuneChoice[];
}

/** Each family's owner: the newest part that ran it. */
export function familyOwners(parts: readonly AlgosPart[]): Map<string, AlgosPart> {
  const owners = new Map<string, AlgosPart>();
  for (const part of [...parts].sort((a, b) => a.date.localeCompare(b.date))) {
    for (const family of part.settings.families) owners.set(family, part);
  }
  return owners;
}

export interface Assembled {
  json: {
    benchmark: "algos";
    description: string;
    parts: { date: string; families: string[]; settings: AlgosSettings; totalWallSeconds: number }[];
    warmStarts: WarmStartResult[];
    runs: TrainResult[];
    /** Tuning runs and choices of the tuned parts (empty where no part was tuned). */
    tuning: TrainResult[];
    tuningWarmStarts: WarmStartResult[];
    choices: TuneChoice[];
    aggregates: { warmStarts: WarmStartAggregate[]; rows: RowAggregate[] };
    paired: PairedDiff[];
  };
  markdown: string;
}

/** The report of `parts`: per family the records of its owner only; `svgs` per family, relative to the report. */
export function assembleParts(parts: readonly AlgosPart[], svgs: Record<string, string>): Assembled {
  const owners = familyOwners(parts);
  const used = [...new Set(owners.values())].sort((a, b) => a.date.localeCompare(b.date));
  const owned = (p: AlgosPart): Family[] => p.settings.families.filter((f) => owners.get(f) === p);
  const warmStarts = used.flatMap((p) => p.warmStarts.filter((w) => owners.get(w.family) === p));
  const runs = used.flatMap((p) => p.runs.filter((r) => owners.get(r.family) === p));
  const mine = <T extends { family: string }>(p: AlgosPart, xs: readonly T[] | undefined) => (xs ?? []).filter((x) => owners.get(x.family) === p);
  const tuning = used.flatMap((p) => mine(p, p.tuning));
  const tuningWarmStarts = used.flatMap((p) => mine(p, p.tuningWarmStarts));
  const choices = used.flatMap((p) => mine(p, p.choices));
  const families = [...owners.keys()];
  const rowIds = [...new Set(used.flatMap((p) => p.rows.map((r) => r.id)))];
  const paired = used.flatMap((p) => pairedDiffs(p.runs, p.warmStarts, owned(p), defaultPairs(p.rows.map((r) => r.id))));
  const sections = used.map((p) => {
    const families: string[] = owned(p);
    // Parts written before the temperature setting existed sampled at 1.0.
    const settings = { ...p.settings, families: owned(p), temperature: p.settings.temperature ?? 1 };
    const partRuns = p.runs.filter((r) => families.includes(r.family));
    const partWarm = p.warmStarts.filter((w) => families.includes(w.family));
    const aggregates = {
      warmStarts: aggregateWarmStarts(partWarm, families),
      rows: aggregateRuns(
        partRuns,
        families,
        p.rows.map((r) => r.id),
      ),
    };
    const md = markdownReport({
      settings,
      rows: p.rows,
      aggregates,
      runs: partRuns,
      paired: paired.filter((d) => families.includes(d.family)),
      meta: { date: p.date, node: p.node, cpus: p.cpus, totalWallSeconds: p.totalWallSeconds },
      svgs,
      tuning: mine(p, p.tuning),
      choices: mine(p, p.choices),
    });
    // One level down: the part's title becomes a section of the assembled report.
    return md
      .split("\n")
      .map((line) => (line.startsWith("#") ? `#${line}` : line))
      .join("\n");
  });
  const markdown = [
    "# Algorithms benchmark",
    "",
    `Assembled from ${used.length} run(s); each family comes from the newest run that trained it (${families
      .map((f) => `${f}: ${owners.get(f)?.date.slice(0, 10)}`)
      .join(", ")}). Runs with different settings are reported separately, with their own settings.`,
    "",
    ...sections,
  ].join("\n");
  return {
    json: {
      benchmark: "algos",
      description:
        "StepPO vs the paper's ablation and baselines, assembled from part runs (each family from the newest run that trained it). Per (family, seed) " +
        "one behaviour-cloning warm start shared by every row; each row trains with the embedded runner until the family's environment-step budget; " +
        "greedy success on the in-domain test split and each OOD family. paired: per-seed differences with 95% Student-t intervals. Tuned parts " +
        "(parts[].settings.tune): tuning[] is every row's grid on the tuning seeds, choices[] each row's config by mean validation success, and " +
        "runs[] of those families ran the chosen config (runs[].config, runs[].validation); other parts are untuned.",
      parts: used.map((p) => ({ date: p.date, families: owned(p), settings: p.settings, totalWallSeconds: p.totalWallSeconds })),
      warmStarts,
      runs,
      tuning,
      tuningWarmStarts,
      choices,
      aggregates: { warmStarts: aggregateWarmStarts(warmStarts, families), rows: aggregateRuns(runs, families, rowIds) },
      paired,
    },
    markdown,
  };
}
