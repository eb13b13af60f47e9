// The previous implementation, for side-by-side benchmarks: a detached git worktree of a baseline commit,
// made once next to the system's temp files and reused, with this checkout's node_modules linked in. Its
// modules are imported by path into the same process, so both versions share one tfjs engine and backend
// and alternate rep by rep on the same machine noise.
import { spawnSync } from "node:child_process";
import { existsSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The last commit before the learner speed change (depthwise attention products, gathered embeddings, heads at the loss's positions). */
export const SPEED_BASELINE_REV = "1bb9297";

function git(args: string[]): string {
  const r = spawnSync("git", ["-C", REPO, ...args], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr.trim() || `exit ${r.status}`}`);
  return r.stdout.trim();
}

/** A checkout of `rev` to import from: STEPPO_BENCH_BASELINE if set, else a worktree made on first use. */
export function baselineCheckout(rev: string = SPEED_BASELINE_REV): string {
  const given = process.env.STEPPO_BENCH_BASELINE;
  if (given) return given;
  const full = git(["rev-parse", "--verify", `${rev}^{commit}`]);
  const dir = join(tmpdir(), `steppo-baseline-${full.slice(0, 12)}`);
  if (!existsSync(join(dir, "learner"))) git(["worktree", "add", "--force", "--detach", dir, full]);
  if (!existsSync(join(dir, "node_modules"))) symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"));
  return dir;
}
