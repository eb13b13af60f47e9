// The end-to-end run (test/e2e/e2e.ts), short version, on a real single-node cluster (controller manager,
// scheduler, kubelet + containerd, the steppo image built here): helm install, the chart's operator as a
// container, kubectl apply of a 60-update tiny job, the learner's container SIGKILLed after a checkpoint and
// resumed by its next incarnation, kubectl scale up and down, kubectl wait Succeeded, the TTL deleting the
// finished job and the garbage collector its children, and a running job deleted with the operator stopped.
// `npm run e2e` runs the same steps with examples/quickstart-job.yaml.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { runE2E } from "../e2e/e2e.ts";

const TINY_JOB = fileURLToPath(new URL("../e2e/tiny-job.yaml", import.meta.url));

test("e2e (short): helm install → job → learner killed and resumed → scaled → Succeeded", { timeout: 900_000 }, async () => {
  const r = await runE2E({ jobFile: TINY_JOB, scaleUp: 2, scaleDown: 1, waitTimeout: "180s", stepTimeoutMs: 120_000, deletionGc: true });
  assert.equal(r.finalUpdate, 60);
  assert.equal(r.restarts, 1);
  assert.ok(r.resumedAt >= 5, `resumed from a checkpoint (update ${r.resumedAt})`);
  assert.ok(r.ttlGcSeconds !== undefined && r.deletionGcSeconds !== undefined);
  process.stderr.write(`[e2e] steps: ${r.steps.map((s) => `${s.name}: ${s.seconds.toFixed(1)} s`).join("; ")}\n`);
});
