// What a run writes after every update so the dashboard (dashboard/) is live while it trains: the curve so far
// (curve.csv, the same file the run writes at its end) and the update's episode sample
// (episodes/update-NNNNNN.json). Files are written to a temporary name and renamed, so the dashboard never
// reads half a file; old episode files are pruned so a long run's directory stays bounded.
import { mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Trajectory } from "../core/trajectory.ts";
import { buildEpisodeSample } from "./episode-sample.ts";
import type { Learner } from "./learner.ts";
import { type CurvePoint, curveCsv } from "./report.ts";
import type { AgentTokenizer } from "../policy/agent-tokenizer.ts";

/** Bounds on episodes/: the newest files are kept within both (a sample file is typically 20–200 kB). */
export const EPISODE_FILES_KEPT = 200;
export const EPISODE_BYTES_KEPT = 64 * 1024 * 1024;

export const EPISODES_DIR = "episodes";

export function episodeFileName(update: number): string {
  return `update-${String(update).padStart(6, "0")}.json`;
}

export interface UpdateRecord {
  runDir: string;
  learner: Learner;
  tokenizer: AgentTokenizer;
  /** The trajectories the update trained on. */
  batch: Trajectory[];
  /** The run's curve including this update's point. */
  curve: CurvePoint[];
  log: (line: string) => void;
  limits?: { files: number; bytes: number };
}

/**
 * Called once per update by the run loops, after learner.update and after the update's curve point is pushed.
 * A failure here (a full disk) is logged, never thrown: the dashboard's files must not stop a training run.
 */
export function recordUpdate(r: UpdateRecord): void {
  try {
    writeAtomically(join(r.runDir, "curve.csv"), curveCsv(r.curve));
    const dir = join(r.runDir, EPISODES_DIR);
    mkdirSync(dir, { recursive: true });
    const sample = buildEpisodeSample(r.learner, r.tokenizer, r.batch);
    writeAtomically(join(dir, episodeFileName(sample.update)), JSON.stringify(sample));
    pruneEpisodeFiles(dir, r.limits ?? { files: EPISODE_FILES_KEPT, bytes: EPISODE_BYTES_KEPT });
  } catch (err) {
    r.log(`dashboard: recording update ${r.learner.version} failed: ${(err as Error).message}`);
  }
}

export function writeAtomically(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/** Deletes the oldest update files until at most `files` remain and they take at most `bytes`. */
export function pruneEpisodeFiles(dir: string, limits: { files: number; bytes: number }): void {
  const names = readdirSync(dir)
    .filter((n) => /^update-\d+\.json$/.test(n))
    .sort(); // zero-padded: name order is update order
  const sizes = names.map((n) => statSync(join(dir, n)).size);
  let total = sizes.reduce((s, x) => s + x, 0);
  let count = names.length;
  for (let i = 0; i < names.length - 1 && (count > limits.files || total > limits.bytes); i++) {
    rmSync(join(dir, names[i]), { force: true });
    total -= sizes[i];
    count--;
  }
}
