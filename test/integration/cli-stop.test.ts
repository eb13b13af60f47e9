// `steppo run` stopped by SIGTERM, as Kubernetes stops a learner pod that is deleted or preempted. During the
// warm-up the behaviour cloning stops between two minibatches (it used to run to its end, minutes, past the
// pod's grace period) and nothing half-trained is checkpointed; during training the run stops after the
// current update with a checkpoint (it used to go on until its next file write: with no checkpoint due, the
// end of the run) and the same command resumes it. A stop after the cloning keeps the warm start, so a pod
// preempted again and again does not clone every time. All exit with 130.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { pollUntil } from "../support/poll.ts";
import { exitCode, killAll, startSteppo } from "../support/steppo-process.ts";

// A tiny multihop-qa job; each test gives it the part that makes its stop land where it wants.
function tinyJob(name: string, rest: string): string {
  return `apiVersion: steppo.dev/v1alpha1
kind: StepPOJob
metadata:
  name: ${name}
spec:
  seed: 3
  model: { dModel: 16, layers: 1, heads: 2, contextLength: 120 }
  environment: { name: multihop-qa, maxSteps: 3, maxStepTokens: 8 }
${rest}`;
}

// A long warm-up for a tiny model: 50 epochs of 4-step minibatches over ~300 demonstration steps.
const LONG_WARMUP = tinyJob(
  "long-warmup",
  `  warmup: { demonstrations: 100, epochs: 50, minibatchSteps: 4 }
  rollout: { episodesPerUpdate: 4 }
  training: { updates: 2, evalEpisodes: 4 }
`,
);

const dir = mkdtempSync(join(tmpdir(), "steppo-stop-"));
after(() => {
  killAll();
  rmSync(dir, { recursive: true, force: true });
});

/** Writes `yaml` as job `name`, starts `steppo run` on it, sends SIGTERM once a log line matches `when`, and waits for exit 130. */
async function stopWhen(name: string, yaml: string, what: string, when: RegExp) {
  const job = join(dir, `${name}.yaml`);
  writeFileSync(job, yaml);
  const runDir = join(dir, `run-${name}`);
  const run = startSteppo(name, ["run", job, "--run-dir", runDir]);
  await pollUntil(what, 120_000, () => run.lines.some((l) => when.test(l)) || undefined);
  run.kill("SIGTERM");
  assert.equal(await exitCode(run, 120_000), 130, run.lines.slice(-10).join("\n"));
  return { job, runDir, run };
}

test("SIGTERM during the warm-up stops steppo run between cloning minibatches: exit 130, nothing checkpointed", { timeout: 180_000 }, async () => {
  const { runDir, run } = await stopWhen("long-warmup", LONG_WARMUP, "the warm-up to start cloning", /warm-up: cloning/);

  const stopped = run.lines.map((l) => /warm-up: stopped by the signal after (\d+) of (\d+) minibatches/.exec(l)).find((m) => m);
  assert.ok(stopped, `the warm-up says where it stopped:\n${run.lines.slice(-10).join("\n")}`);
  const [done, total] = [Number(stopped[1]), Number(stopped[2])];
  assert.ok(done < total, `stopped part-way (${done} of ${total} minibatches)`);
  assert.ok(!run.lines.some((l) => l.includes("warm-up: cloned")), "the cloning did not run to its end");
  assert.ok(!run.lines.some((l) => l.includes("initial success")), "no evaluation after the stop");
  assert.ok(run.lines.some((l) => l.includes("stopped before the first update (nothing was checkpointed")));
  const checkpoints = join(runDir, "checkpoints");
  assert.deepEqual(existsSync(checkpoints) ? readdirSync(checkpoints) : [], [], "a half-cloned policy is not saved");
});

// A short warm-up and a long initial evaluation: the signal lands after the cloning, before the first update.
const LONG_EVALUATION = tinyJob(
  "long-evaluation",
  `  warmup: { demonstrations: 40, epochs: 1, minibatchSteps: 16 }
  rollout: { episodesPerUpdate: 4 }
  training: { updates: 2, evalEpisodes: 300 }
`,
);

test("SIGTERM after the warm-up keeps the warm start: the same command starts from it without cloning again", { timeout: 300_000 }, async () => {
  const { job, runDir, run } = await stopWhen("long-evaluation", LONG_EVALUATION, "the cloning to end", /warm-up: cloned/);
  // Whether the stop lands in the initial evaluation or in the critic's warm-up, the loop stops at update 0 and
  // its own checkpoint keeps the warm start.
  assert.ok(
    run.lines.some((l) => l.includes("stopped at update 0 (checkpointed")),
    run.lines.slice(-10).join("\n"),
  );
  assert.equal(readdirSync(join(runDir, "checkpoints")).filter((f) => !f.startsWith(".")).length, 1, "the warm start, at update 0");

  const again = startSteppo("eval-again", ["run", job, "--run-dir", runDir]);
  assert.equal(await exitCode(again, 240_000), 0, again.lines.slice(-10).join("\n"));
  assert.ok(
    again.lines.some((l) => l.includes("started from the warm start")),
    again.lines.slice(0, 12).join("\n"),
  );
  assert.ok(!again.lines.some((l) => l.includes("warm-up: cloning")), "no second cloning");
});

// Many quick updates and no checkpoint due before the last one: only the signal can make one early.
const MANY_UPDATES = tinyJob(
  "many-updates",
  `  warmup: { enabled: false }
  rollout: { episodesPerUpdate: 8 }
  training: { updates: 2000, evalEvery: 5000, evalEpisodes: 4 }
  checkpoint: { interval: 5000, keep: 1 }
`,
);

test("SIGTERM during training stops steppo run after the current update with a checkpoint; the same command resumes", { timeout: 300_000 }, async () => {
  const { job, runDir, run } = await stopWhen("many-updates", MANY_UPDATES, "the third update", /update 3\/2000/);
  const stopped = run.lines.map((l) => /stopped at update (\d+) \(checkpointed/.exec(l)).find((m) => m);
  assert.ok(stopped, `the run says where it stopped:\n${run.lines.slice(-10).join("\n")}`);
  const at = Number(stopped[1]);
  assert.ok(at >= 3 && at < 2000, `stopped part-way, at update ${at} of 2000`);
  assert.equal(readdirSync(join(runDir, "checkpoints")).filter((f) => !f.startsWith(".")).length, 1, "one checkpoint, written at the stop");

  const again = startSteppo("again", ["run", job, "--run-dir", runDir, "--updates", String(at + 1)]);
  assert.equal(await exitCode(again, 120_000), 0, again.lines.slice(-10).join("\n"));
  assert.ok(
    again.lines.some((l) => new RegExp(`resumed from .* at update ${at}\\b`).test(l)),
    again.lines.slice(0, 12).join("\n"),
  );
  const summary = JSON.parse(readFileSync(join(runDir, "summary.json"), "utf8")) as { updates: number };
  assert.equal(summary.updates, at + 1);
});
