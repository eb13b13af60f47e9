// `steppo run` as a user runs it: a child process on a job file, checked through its files and exit code.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

const BIN = join(import.meta.dirname, "../../bin/steppo.mjs");

function steppo(args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", timeout: 300_000 });
}

const TINY = `apiVersion: steppo.dev/v1alpha1
kind: StepPOJob
metadata:
  name: tiny
spec:
  seed: 3
  algorithm: { estimator: step-gae, minibatchSteps: 8 }
  model: { dModel: 16, layers: 1, heads: 2, contextLength: 120 }
  environment: { name: multihop-qa, maxSteps: 3, maxStepTokens: 8 }
  warmup: { demonstrations: 8, epochs: 1, minibatchSteps: 8 }
  rollout: { episodesPerUpdate: 4 }
  training: { updates: 5, evalEvery: 1, evalEpisodes: 4 }
  checkpoint: { interval: 1, keep: 2 }
`;

test("steppo run trains a job file and writes summary, curve and checkpoints", { timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "steppo-cli-"));
  const job = join(dir, "tiny.yaml");
  writeFileSync(job, TINY);
  const runDir = join(dir, "run");
  const out = steppo(["run", job, "--updates", "2", "--run-dir", runDir, "--summary", join(dir, "out.json")]);
  assert.equal(out.status, 0, out.stderr);
  assert.match(out.stderr, /backend: (wasm|cpu|tensorflow)/, "the backend choice is logged");
  const summary = JSON.parse(readFileSync(join(dir, "out.json"), "utf8"));
  assert.equal(summary.updates, 2, "--updates overrides spec.training.updates");
  assert.equal(summary.estimator, "step-gae");
  assert.ok(summary.envSteps > 0);
  assert.ok(summary.successRate.initial >= 0 && summary.successRate.final <= 1);
  assert.deepEqual(Object.keys(summary.ood).sort(), ["comparison", "compositional"]);
  assert.equal(summary.checkpoints.length, 2, "keep: 2");
  for (const p of summary.checkpoints) assert.ok(existsSync(p), p);
  assert.ok(summary.wallSeconds > 0);
  const csv = readFileSync(join(runDir, "curve.csv"), "utf8").trim().split("\n");
  assert.equal(csv.length, 1 + 3, "header + update 0 + 2 updates");
  assert.ok(!csv.join("").includes("NaN"));
  assert.match(readFileSync(join(runDir, "curve.svg"), "utf8"), /^<svg[\s\S]*<path d="M/);
});

test("steppo run refuses a bad job file with the field named, and exit code 1", () => {
  const dir = mkdtempSync(join(tmpdir(), "steppo-cli-bad-"));
  const job = join(dir, "bad.yaml");
  writeFileSync(job, TINY.replace("estimator: step-gae", "estimator: ppo2").replace("episodesPerUpdate: 4", "episodesPerUpdate: -4"));
  const out = steppo(["run", job]);
  assert.equal(out.status, 1);
  assert.match(out.stderr, /spec\.algorithm\.estimator: must be one of step-gae/);
  assert.match(out.stderr, /spec\.rollout\.episodesPerUpdate: must be >= 1/);
  const usage = steppo(["run"]);
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /run takes exactly one job file/);
});
