// The end-to-end run (test/e2e/e2e.ts), short version: helm install, the chart's operator as a pod on the
// process-based node agent, kubectl apply of a 60-update tiny job, the learner SIGKILLed after a
// checkpoint and resumed by its next incarnation, kubectl scale up and down, kubectl wait Succeeded.
// `npm run e2e` runs the same steps with examples/quickstart-job.yaml.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { runE2E } from "../e2e/e2e.ts";

const TINY_JOB = fileURLToPath(new URL("../e2e/tiny-job.yaml", import.meta.url));

test("e2e (short): helm install → job → learner killed and resumed → scaled → Succeeded", { timeout: 300_000 }, async () => {
  const r = await runE2E({ jobFile: TINY_JOB, scaleUp: 2, scaleDown: 1, waitTimeout: "180s", stepTimeoutMs: 90_000 });
  assert.equal(r.finalUpdate, 60);
  assert.equal(r.restarts, 1);
  assert.ok(r.resumedAt >= 5, `resumed from a checkpoint (update ${r.resumedAt})`);
  process.stderr.write(`[e2e] steps: ${r.steps.map((s) => `${s.name}: ${s.seconds.toFixed(1)} s`).join("; ")}\n`);
});
