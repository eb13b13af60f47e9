// The embedded runner's benchmark hooks, through the real runner: a run started from a shared warm start
// is the run that warms up itself, an environment-step budget stops a run after the update that reaches
// it, and a warm start made for another job is refused.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { parseJob } from "../../crds/job-spec.ts";
import { readCheckpoint } from "../../learner/checkpoint-store.ts";
import type { CurvePoint } from "../../learner/report.ts";
import { runJob } from "../../runtime/run-job.ts";
import { writeWarmStart } from "../../learner/warm-start.ts";

function tinyJob(name: string, overrides: { demonstrations?: number; estimator?: string } = {}) {
  return parseJob(
    {
      apiVersion: "steppo.dev/v1alpha1",
      kind: "StepPOJob",
      metadata: { name },
      spec: {
        seed: 5,
        // The entropy bonus makes every update depend on the sampled data even when no episode succeeds.
        algorithm: { estimator: overrides.estimator ?? "step-gae", epochs: 1, minibatchSteps: 4, entropyCoef: 0.05 },
        model: { dModel: 16, layers: 1, heads: 2, contextLength: 120 },
        environment: { name: "multihop-qa", maxSteps: 3, maxStepTokens: 6 },
        warmup: { enabled: true, demonstrations: overrides.demonstrations ?? 6, epochs: 1, minibatchSteps: 4 },
        rollout: { episodesPerUpdate: 4 },
        learner: { backend: "cpu" },
        training: { updates: 3, evalEvery: 1, evalEpisodes: 4 },
        checkpoint: { interval: 100, keep: 1 },
      },
    },
    `${name}.yaml`,
  );
}

async function newestWeights(dir: string): Promise<Map<string, Float32Array>> {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".steppo"))
    .sort();
  const payload = await readCheckpoint(join(dir, files[files.length - 1]));
  return new Map(payload.tensors.map((t) => [t.name, t.data]));
}

// Wall-clock figures differ between any two runs; everything else must be equal.
const withoutTimes = (curve: CurvePoint[]) => curve.map(({ seconds: _s, samplesPerSecond: _r, ...p }) => p);

test("a run from a warm start equals the run that warms up itself (cpu backend)", { timeout: 600_000 }, async () => {
  const root = mkdtempSync(join(tmpdir(), "steppo-warm-start-"));
  const quiet = () => {};
  const straight = await runJob(tinyJob("straight"), { runDir: join(root, "straight"), log: quiet });

  const warm = await writeWarmStart(tinyJob("warm"), join(root, "warm"), quiet);
  assert.deepEqual(warm.initial, {
    train: straight.successRate.initial,
    test: straight.test.initial,
    validation: straight.validation?.initial,
    ...straight.oodInitial,
  });
  const logs: string[] = [];
  const fromWarm = await runJob(tinyJob("from-warm"), { runDir: join(root, "from-warm"), log: (l) => logs.push(l), warmStart: join(root, "warm") });
  assert.ok(
    logs.some((l) => l.startsWith("started from the warm start")),
    logs.join("\n"),
  );
  assert.ok(!logs.some((l) => l.startsWith("warm-up:")), "no second warm-up");
  assert.equal(fromWarm.updates, 3);
  assert.deepEqual(withoutTimes(fromWarm.curve), withoutTimes(straight.curve));
  assert.deepEqual(fromWarm.ood, straight.ood);
  assert.deepEqual(fromWarm.test, straight.test);
  assert.deepEqual(fromWarm.validation, straight.validation);
  assert.equal(fromWarm.successRate.demonstrations, straight.successRate.demonstrations);
  // Bit-identical weights and Adam state after the updates, and the updates did move away from the warm start.
  const a = await newestWeights(join(root, "straight", "checkpoints"));
  const b = await newestWeights(join(root, "from-warm", "checkpoints"));
  const w = await newestWeights(join(root, "warm"));
  assert.deepEqual([...b.keys()], [...a.keys()]);
  for (const [name, data] of a) assert.deepEqual(b.get(name), data, `tensor ${name} differs`);
  assert.ok(
    [...w].some(([name, data]) => !name.startsWith("adam.") && a.get(name)?.some((v, i) => v !== data[i])),
    "the updates changed the weights",
  );
});

test("an environment-step budget stops after the update that reaches it; a foreign warm start is refused", { timeout: 600_000 }, async () => {
  const root = mkdtempSync(join(tmpdir(), "steppo-budget-"));
  const quiet = () => {};
  await writeWarmStart(tinyJob("warm"), join(root, "warm"), quiet);
  // Another estimator shares the warm start: it does not enter the warm-up.
  const budget = 8;
  const s = await runJob(tinyJob("budget", { estimator: "grpo" }), {
    runDir: join(root, "budget"),
    log: quiet,
    updates: 50,
    envStepBudget: budget,
    warmStart: join(root, "warm"),
  });
  assert.ok(s.envSteps >= budget, `${s.envSteps} env steps`);
  assert.ok(s.updates < 50);
  const beforeLast = s.curve[s.curve.length - 2].envSteps;
  assert.ok(beforeLast < budget, `stopped late: ${beforeLast} env steps before the last update`);
  assert.notEqual(s.curve[s.curve.length - 1].testSuccess, null, "the last update is evaluated");

  await assert.rejects(
    runJob(tinyJob("other", { demonstrations: 7 }), { runDir: join(root, "other"), log: quiet, warmStart: join(root, "warm") }),
    /warm start: .* was made for a job with another warmup/,
  );
});
