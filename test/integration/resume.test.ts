// Checkpoint/resume through the real embedded runner: 2N updates straight vs N + resume + N must give
// bit-identical weights on the cpu backend, and a corrupt newest checkpoint falls back to the previous.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { parseJob } from "../../crds/job-spec.ts";
import { readCheckpoint, writeCheckpoint } from "../../learner/checkpoint-store.ts";
import { ResumeSpecError, trainingSpecHash } from "../../learner/resume-spec.ts";
import { runJob } from "../../runtime/run-job.ts";

function tinyJob(name: string, ckptDir: string, estimator = "step-gae", klCoef = 0) {
  return parseJob(
    {
      apiVersion: "steppo.dev/v1alpha1",
      kind: "StepPOJob",
      metadata: { name },
      spec: {
        seed: 7,
        // The entropy bonus makes every update depend on the sampled data even when no episode succeeds
        // (all-zero rewards give all-zero advantages), so the comparison below cannot pass vacuously.
        algorithm: { estimator, epochs: 1, minibatchSteps: 4, entropyCoef: 0.05, klCoef },
        model: { dModel: 16, layers: 1, heads: 2, contextLength: 120 },
        environment: { name: "multihop-qa", maxSteps: 3, maxStepTokens: 6 },
        warmup: { enabled: true, demonstrations: 3, epochs: 1, minibatchSteps: 4 },
        rollout: { episodesPerUpdate: 2 },
        learner: { backend: "cpu" },
        training: { updates: 4, evalEvery: 100, evalEpisodes: 2 },
        checkpoint: { interval: 1, keep: 5, dir: ckptDir },
      },
    },
    `${name}.yaml`,
  );
}

async function finalWeights(dir: string): Promise<Map<string, Float32Array>> {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".steppo"))
    .sort();
  const payload = await readCheckpoint(join(dir, files[files.length - 1]));
  return new Map(payload.tensors.map((t) => [t.name, t.data]));
}

async function straightVersusResumed(klCoef: number): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), "steppo-resume-"));
  const quiet = () => {};
  const straight = join(root, "straight");
  await runJob(tinyJob("straight", straight, "step-gae", klCoef), { runDir: join(root, "run-a"), log: quiet, updates: 4 });

  const split = join(root, "split");
  const first = await runJob(tinyJob("split", split, "step-gae", klCoef), { runDir: join(root, "run-b"), log: quiet, updates: 2 });
  assert.equal(first.updates, 2);
  const logs: string[] = [];
  const second = await runJob(tinyJob("split", split, "step-gae", klCoef), { runDir: join(root, "run-b"), log: (l) => logs.push(l), updates: 4 });
  assert.equal(second.updates, 4);
  assert.ok(second.resumedFrom?.endsWith("ckpt-00000002.steppo"), `resumed from ${second.resumedFrom}`);

  const a = await finalWeights(straight);
  const b = await finalWeights(split);
  assert.deepEqual([...a.keys()], [...b.keys()]);
  for (const [name, data] of a) assert.deepEqual(b.get(name), data, `tensor ${name} differs after resume`);
  assert.equal(second.envSteps, (await runJobEnvSteps(straight)) ?? second.envSteps);
  assert.ok(!logs.some((l) => l.includes("no KL reference")), logs.join("\n"));
}

test("N updates + resume + N updates is bit-identical to 2N straight (cpu backend)", { timeout: 600_000 }, async () => {
  await straightVersusResumed(0);
});

test("with a KL penalty, resume restores the post-warm-up reference policy: still bit-identical", { timeout: 600_000 }, async () => {
  // The reference is the policy after warm-up; a resumed run that dropped it (or re-froze the resumed
  // policy as the reference) would compute another KL term, and the weights would differ.
  await straightVersusResumed(0.2);
});

test(
  "a checkpoint without a KL reference (written by a version that did not save it): the restored policy becomes the reference, logged",
  { timeout: 600_000 },
  async () => {
    const root = mkdtempSync(join(tmpdir(), "steppo-kl-on-"));
    const dir = join(root, "ckpt");
    await runJob(tinyJob("kl-on", dir, "step-gae", 0.2), { runDir: join(root, "run"), log: () => {}, updates: 2 });
    // Rewrite the newest checkpoint as an older version wrote it: no reference tensors.
    const newest = join(dir, "ckpt-00000002.steppo");
    const old = await readCheckpoint(newest);
    await writeCheckpoint(dir, 2, { meta: old.meta, tensors: old.tensors.filter((t) => !t.name.startsWith("reference.")) }, 5);
    const logs: string[] = [];
    const resumed = await runJob(tinyJob("kl-on", dir, "step-gae", 0.2), { runDir: join(root, "run"), log: (l) => logs.push(l), updates: 3 });
    assert.equal(resumed.updates, 3);
    assert.ok(
      logs.some((l) => l.includes("ckpt-00000002.steppo holds no KL reference policy; the restored policy becomes the reference")),
      logs.join("\n"),
    );
    const saved = await readCheckpoint(join(dir, "ckpt-00000003.steppo"));
    assert.ok(
      saved.tensors.some((t) => t.name.startsWith("reference.")),
      "the reference is saved from then on",
    );
  },
);

test(
  "resume under a changed estimator is refused, naming the field; --fresh moves the old checkpoints aside and starts over",
  { timeout: 600_000 },
  async () => {
    const root = mkdtempSync(join(tmpdir(), "steppo-spec-change-"));
    const dir = join(root, "ckpt");
    const runDir = join(root, "run");
    await runJob(tinyJob("changed", dir, "step-gae"), { runDir, log: () => {}, updates: 1 });
    const saved = await readCheckpoint(join(dir, "ckpt-00000001.steppo"));
    assert.equal(saved.meta.specHash, trainingSpecHash(tinyJob("changed", dir, "step-gae").spec), "the checkpoint stores the spec's hash");
    assert.equal((saved.meta.spec as { algorithm: { estimator: string } }).algorithm.estimator, "step-gae", "and a copy of the spec");

    await assert.rejects(runJob(tinyJob("changed", dir, "grpo"), { runDir, log: () => {}, updates: 2 }), (err: Error) => {
      assert.ok(err instanceof ResumeSpecError, String(err));
      assert.deepEqual(err.fields, ["algorithm.estimator"]);
      assert.match(err.message, /ckpt-00000001\.steppo was trained under another spec: algorithm\.estimator "step-gae" → "grpo"/);
      assert.match(err.message, /--fresh/);
      return true;
    });

    const logs: string[] = [];
    const fresh = await runJob(tinyJob("changed", dir, "grpo"), { runDir, log: (l) => logs.push(l), updates: 1, fresh: true });
    assert.equal(fresh.resumedFrom, undefined, "a fresh run resumes nothing");
    assert.equal(fresh.estimator, "grpo");
    const aside = readdirSync(dir).find((f) => f.startsWith("replaced-"));
    assert.ok(aside, `old checkpoints moved aside: ${readdirSync(dir).join(", ")}`);
    assert.deepEqual(readdirSync(join(dir, aside)), ["ckpt-00000001.steppo"]);
    assert.ok(
      logs.some((l) => l.includes(`moved the existing checkpoints to ${join(dir, aside)}`)),
      logs.join("\n"),
    );
  },
);

test("changes declared safe (updates, evalEvery, checkpoint interval/keep, replicas) resume", { timeout: 600_000 }, async () => {
  const root = mkdtempSync(join(tmpdir(), "steppo-safe-change-"));
  const dir = join(root, "ckpt");
  const runDir = join(root, "run");
  await runJob(tinyJob("safe", dir), { runDir, log: () => {}, updates: 1 });
  const changed = tinyJob("safe", dir);
  changed.spec.training.updates = 2;
  changed.spec.training.evalEvery = 50;
  changed.spec.checkpoint.interval = 2;
  changed.spec.checkpoint.keep = 4;
  changed.spec.rollout.replicas = 2;
  const resumed = await runJob(changed, { runDir, log: () => {} });
  assert.ok(resumed.resumedFrom?.endsWith("ckpt-00000001.steppo"), `resumed from ${resumed.resumedFrom}`);
  assert.equal(resumed.updates, 2);
});

async function runJobEnvSteps(dir: string): Promise<number | undefined> {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".steppo"))
    .sort();
  const payload = await readCheckpoint(join(dir, files[files.length - 1]));
  return (payload.meta.run as { envSteps: number }).envSteps;
}

test("a truncated newest checkpoint is reported by path and the previous one is used", { timeout: 600_000 }, async () => {
  const root = mkdtempSync(join(tmpdir(), "steppo-corrupt-"));
  const dir = join(root, "ckpt");
  await runJob(tinyJob("corrupt", dir), { runDir: join(root, "run"), log: () => {}, updates: 2 });
  const newest = join(dir, "ckpt-00000002.steppo");
  truncateSync(newest, 100);
  const logs: string[] = [];
  const resumed = await runJob(tinyJob("corrupt", dir), { runDir: join(root, "run"), log: (l) => logs.push(l), updates: 2 });
  assert.ok(
    logs.some((l) => l.includes(newest) && l.includes("unusable")),
    logs.join("\n"),
  );
  assert.ok(resumed.resumedFrom?.endsWith("ckpt-00000001.steppo"), `resumed from ${resumed.resumedFrom}`);
  assert.equal(resumed.updates, 2, "it re-trains update 2 from checkpoint 1");
});
