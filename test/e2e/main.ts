// npm run e2e — the full end-to-end run (test/e2e/e2e.ts) with examples/quickstart-job.yaml: the quickstart's
// 30 updates with warm-up, its learner SIGKILLed after the update-10 checkpoint and resumed, its rollout
// workers scaled 2 → 3 → 2. Takes many minutes on a small machine (the whole training runs).
//   npm run e2e                                   # examples/quickstart-job.yaml
//   npm run e2e -- --job FILE --up N --down M --timeout 1800s
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { runE2E } from "./e2e.ts";

const { values } = parseArgs({
  options: { job: { type: "string" }, up: { type: "string" }, down: { type: "string" }, timeout: { type: "string" } },
});
const jobFile = values.job ?? fileURLToPath(new URL("../../examples/quickstart-job.yaml", import.meta.url));
const started = Date.now();
try {
  const r = await runE2E({
    jobFile,
    scaleUp: Number(values.up ?? 3),
    scaleDown: Number(values.down ?? 2),
    waitTimeout: values.timeout ?? "3600s",
    stepTimeoutMs: 30 * 60_000,
  });
  const w = Math.max(...r.steps.map((s) => s.name.length));
  process.stdout.write(`\ne2e passed in ${((Date.now() - started) / 1000).toFixed(0)} s: job ${r.namespace}/${r.job}\n`);
  for (const s of r.steps) process.stdout.write(`  ${s.name.padEnd(w)}  ${s.seconds.toFixed(1).padStart(7)} s\n`);
  process.stdout.write(
    `  learner killed at update ${r.updateAtKill} (checkpoint ${r.checkpointAtKill}), resumed at update ${r.resumedAt}, restarts ${r.restarts}, final update ${r.finalUpdate}\n\n${r.getSpj}`,
  );
  process.exitCode = 0;
} catch (err) {
  process.stderr.write(`\ne2e FAILED after ${((Date.now() - started) / 1000).toFixed(0)} s: ${(err as Error).stack ?? err}\n`);
  process.exitCode = 1;
}
