// What the dashboard shows of each path it was given, re-read on every request (a live run rewrites its files
// after each update):
//   - a run directory (`steppo run`, `steppo learner`): curve.csv, summary.json (OOD success, the final numbers;
//     written when the run ends) and episodes/update-*.json;
//   - an algorithm-bench result (bench/results/algos.json, or a directory holding algos*.json): one run per
//     training in it, curves only.
// Every problem becomes a sentence in `problems`, so a missing, half-written or truncated run shows a message.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import type { CurvePoint } from "../../learner/report.ts";
import { EPISODES_DIR, episodeFileName } from "../../learner/run-record.ts";
import { fillPoint, parseCurveCsv } from "./curve-file.ts";

export interface RunView {
  id: string;
  name: string;
  /** The path the dashboard was given (and, for bench runs, which training in it). */
  source: string;
  kind: "run" | "bench";
  /** finished: summary.json read; running: a curve but no summary yet; empty: nothing to show; broken: unreadable. */
  state: "finished" | "running" | "empty" | "broken";
  problems: string[];
  notes: string[];
  meta: Record<string, string | number>;
  curve: CurvePoint[];
  /** Greedy success per held-out family at the end (and before RL), from the summary. */
  ood: Record<string, number>;
  oodInitial: Record<string, number>;
  final: { train?: number; test?: number };
  /** Updates with an episode sample on disk, ascending. */
  episodeUpdates: number[];
}

/** Reads every source; source i gives run id "i" (a bench file: "i.j" for its j-th training). */
export function readSources(paths: string[]): RunView[] {
  const views = paths.flatMap((p, i) => readSource(p, String(i)));
  // Two runs of one job name (runs/a/x and runs/b/x) are told apart by their path.
  const seen = new Map<string, number>();
  for (const v of views) seen.set(v.name, (seen.get(v.name) ?? 0) + 1);
  for (const v of views) if ((seen.get(v.name) ?? 0) > 1 && v.kind === "run") v.name = `${v.name} (${v.source})`;
  return views;
}

export function readSource(path: string, id: string): RunView[] {
  const abs = resolve(path);
  if (!existsSync(abs))
    return [emptyView(id, path, "broken", [`${path} does not exist: give a run directory (runs/<job>) or a bench result (bench/results/algos.json)`])];
  if (statSync(abs).isFile()) {
    if (abs.endsWith(".json")) return readBenchFile(abs, path, id);
    return [emptyView(id, path, "broken", [`${path} is a file, not a run directory (nor a bench .json result)`])];
  }
  const hasRunFiles = existsSync(join(abs, "curve.csv")) || existsSync(join(abs, "summary.json"));
  const benchFiles = readdirSync(abs).filter((n) => /^algos.*\.json$/.test(n));
  if (!hasRunFiles && benchFiles.length > 0) return benchFiles.flatMap((n, j) => readBenchFile(join(abs, n), join(path, n), `${id}.${j}`));
  return [readRunDir(abs, path, id)];
}

function emptyView(id: string, source: string, state: RunView["state"], problems: string[]): RunView {
  return {
    id,
    name: basename(resolve(source)),
    source,
    kind: "run",
    state,
    problems,
    notes: [],
    meta: {},
    curve: [],
    ood: {},
    oodInitial: {},
    final: {},
    episodeUpdates: [],
  };
}

/** JSON.parse with the file named in the error, and the usual cause of a bad one (a file cut short) said. */
function readJson(path: string, shown: string): { value?: unknown; problem?: string } {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    return { problem: `${shown} could not be read: ${(err as Error).message}` };
  }
  try {
    return { value: JSON.parse(text) };
  } catch (err) {
    return { problem: `${shown} is not valid JSON (${(err as Error).message}): a truncated or half-written file?` };
  }
}

function readRunDir(abs: string, source: string, id: string): RunView {
  const view = emptyView(id, source, "empty", []);
  const curvePath = join(abs, "curve.csv");
  const summaryPath = join(abs, "summary.json");
  if (existsSync(curvePath)) {
    const parsed = parseCurveCsv(readFileSync(curvePath, "utf8"));
    view.curve = parsed.points;
    view.problems.push(...parsed.problems);
  }
  if (existsSync(summaryPath)) {
    const { value, problem } = readJson(summaryPath, `${source}/summary.json`);
    if (problem) view.problems.push(problem);
    else applySummary(view, value as Record<string, unknown>);
  }
  view.episodeUpdates = episodeUpdates(join(abs, EPISODES_DIR));
  const hasSummary = view.state === "finished";
  if (view.curve.length === 0 && !hasSummary) {
    view.state = view.problems.length > 0 ? "broken" : "empty";
    if (view.problems.length === 0)
      view.problems.push(`${source} has no curve.csv and no summary.json: not a run directory, or a run that has not finished its first update yet`);
  } else if (!hasSummary) {
    view.state = view.problems.some((p) => p.includes("summary.json")) ? "broken" : "running";
    if (view.state === "running")
      view.notes.push("no summary.json yet: the run is training (or stopped before it ended); held-out OOD success appears when it ends");
  }
  return view;
}

function applySummary(view: RunView, s: Record<string, unknown>): void {
  view.state = "finished";
  if (typeof s.job === "string") view.name = s.job;
  for (const k of ["job", "estimator", "ratio", "clip", "gamma", "lambda", "backend", "parameters", "updates", "envSteps", "wallSeconds"]) {
    const v = s[k];
    if (typeof v === "string" || typeof v === "number") view.meta[k] = v;
  }
  view.ood = numbers(s.ood);
  view.oodInitial = numbers(s.oodInitial);
  const rate = s.successRate as { final?: unknown } | undefined;
  const test = s.test as { final?: unknown } | undefined;
  view.final = { train: num(rate?.final), test: num(test?.final) };
  // An older run without curve.csv still has its curve in the summary.
  if (view.curve.length === 0 && Array.isArray(s.curve)) view.curve = s.curve.map((p) => fillPoint(p as Record<string, number | null>));
}

function episodeUpdates(dir: string): number[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((n) => /^update-(\d+)\.json$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

function readBenchFile(abs: string, source: string, id: string): RunView[] {
  const { value, problem } = readJson(abs, source);
  if (problem) return [emptyView(id, source, "broken", [problem])];
  const bench = value as { benchmark?: unknown; runs?: unknown };
  if (!Array.isArray(bench.runs)) return [emptyView(id, source, "broken", [`${source} is neither a run's summary nor a bench result (no "runs" list)`])];
  const trainings = bench.runs.filter((r) => (r as { kind?: string }).kind === "train") as Record<string, unknown>[];
  return trainings.map((r, j) => {
    const view = emptyView(`${id}.${j}`, `${source}#${j}`, "finished", []);
    view.kind = "bench";
    view.name = `${r.family} · ${r.row} · seed ${r.seed}`;
    for (const k of ["family", "row", "seed", "estimator", "ratio", "clip", "gamma", "lambda", "updates", "envSteps", "wallSeconds"]) {
      const v = r[k];
      if (typeof v === "string" || typeof v === "number") view.meta[k] = v;
    }
    view.curve = Array.isArray(r.curve) ? r.curve.map((p) => fillPoint(p as Record<string, number | null>)) : [];
    view.ood = numbers(r.ood);
    view.final = { train: num(r.train), test: num(r.test) };
    view.notes.push("a bench training: its curve has train and test success only, and no episode samples");
    return view;
  });
}

function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

function numbers(v: unknown): Record<string, number> {
  if (!v || typeof v !== "object") return {};
  return Object.fromEntries(Object.entries(v).filter(([, x]) => typeof x === "number" && Number.isFinite(x))) as Record<string, number>;
}

/** Reads one episode sample file, or says why it cannot be shown. */
export function readEpisodeFile(view: RunView, update: number): { value?: unknown; problem?: string } {
  if (view.kind !== "run") return { problem: `${view.name} is a bench result: it keeps no episodes` };
  const path = join(resolve(view.source), EPISODES_DIR, episodeFileName(update));
  if (!existsSync(path)) {
    const near = view.episodeUpdates.length > 0 ? ` (samples kept: updates ${view.episodeUpdates[0]}–${view.episodeUpdates.at(-1)})` : " (this run kept none)";
    return { problem: `no episode sample for update ${update}${near}` };
  }
  return readJson(path, `${view.source}/${EPISODES_DIR}/${episodeFileName(update)}`);
}
