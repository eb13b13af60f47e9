// Faults against real processes and a real nats-server: a worker SIGKILLed mid-run, the learner SIGKILLed
// and restarted from its checkpoint, the NATS server restarted mid-run. In every case training completes and
// the accounting identity holds, i.e. no trajectory was lost:
//   published = consumed + stale + deadLettered + inFlight
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { DistributedSummary } from "../../runtime/learner-process.ts";
import { natsRunFixture } from "../support/nats-run-fixture.ts";
import { exitCode, type Proc, ProgressWatch, startSteppo } from "../support/steppo-process.ts";

const fx = natsRunFixture(async () => {
  for (const w of watches) await w.close().catch(() => {});
});
const watches: ProgressWatch[] = [];

async function watchJob(name: string): Promise<ProgressWatch> {
  const w = await ProgressWatch.open(fx.server.url, name);
  watches.push(w);
  return w;
}

interface Job {
  name: string;
  file: string;
  runDir: string;
  learnerArgs: string[];
}

function job(name: string, updates: number, maxPolicyLag: number): Job {
  const file = fx.ws.writeJob({ name, updates, maxPolicyLag, checkpointInterval: 2 });
  const runDir = join(fx.ws.dir, name);
  return { name, file, runDir, learnerArgs: ["learner", "--job", file, "--nats", fx.server.url, "--run-dir", runDir] };
}

function startWorkers(j: Job, n: number): Proc[] {
  return Array.from({ length: n }, (_, i) => startSteppo(`worker-${i}`, ["worker", "--job", j.file, "--nats", fx.server.url, "--id", `w${i}`]));
}

function summaryOf(j: Job): DistributedSummary {
  return JSON.parse(readFileSync(join(j.runDir, "summary.json"), "utf8")) as DistributedSummary;
}

function assertIdentity(s: DistributedSummary): void {
  const t = s.trajectories;
  assert.equal(t.published, t.consumed + t.stale + t.deadLettered + t.inFlight, `accounting identity: ${JSON.stringify(t)}`);
}

async function finish(learner: Proc, workers: Proc[]): Promise<void> {
  assert.equal(await exitCode(learner, 60_000), 0, learner.lines.slice(-30).join("\n"));
  // Workers see the job done and leave on their own with exit code 0.
  for (const w of workers) assert.equal(await exitCode(w, 20_000), 0, w.lines.slice(-20).join("\n"));
}

describe("distributed runtime under faults (real processes, real nats-server)", { timeout: 180_000 }, () => {
  it("a worker SIGKILLed and another SIGTERMed mid-run: training completes on the last one (synchronous, maxPolicyLag 0)", async () => {
    const j = job("kill-worker", 5, 0);
    const watch = await watchJob(j.name);
    const learner = startSteppo("learner", j.learnerArgs);
    const workers = startWorkers(j, 3);
    await watch.until((p) => p.update >= 1, 45_000, "update 1");
    workers[1].kill("SIGKILL");
    assert.equal(await workers[1].exited, 137);
    // SIGTERM: the worker stops between steps, publishes what finished, returns its other tickets, exits 0.
    await watch.until((p) => p.update >= 2, 45_000, "update 2");
    workers[2].kill("SIGTERM");
    assert.equal(await exitCode(workers[2], 20_000), 0, workers[2].lines.slice(-20).join("\n"));
    assert.ok(workers[2].lines.some((l) => /worker w2 stopped: published \d+ episodes .* abandoned \d+/.test(l)));
    await finish(learner, [workers[0]]);
    const s = summaryOf(j);
    assert.equal(s.updates, 5);
    assert.equal(s.trajectories.consumed, 5 * 8);
    assert.equal(s.distributed.policyLag.max, 0, "synchronous: every trained sample is on-policy");
    assertIdentity(s);
  });

  it("the learner SIGKILLed after a checkpoint resumes from it and loses no trajectory", async () => {
    const j = job("kill-learner", 6, 1);
    const watch = await watchJob(j.name);
    const learner = startSteppo("learner", j.learnerArgs);
    const workers = startWorkers(j, 3);
    // Past the checkpoint at update 2, with trained-but-uncheckpointed trajectories held unacked.
    await watch.until((p) => (p.lastCheckpoint?.update ?? 0) >= 2 && p.update >= 3, 45_000, "a checkpoint and one more update");
    learner.kill("SIGKILL");
    assert.equal(await learner.exited, 137);
    const restarted = startSteppo("learner-2", j.learnerArgs);
    await finish(restarted, workers);
    assert.ok(
      restarted.lines.some((l) => /resumed from/.test(l)),
      "resumed from the checkpoint",
    );
    const s = summaryOf(j);
    assert.ok(s.resumedFrom, "summary names the checkpoint it resumed from");
    assert.equal(s.updates, 6);
    assert.equal(s.trajectories.consumed, 6 * 8, "consumed counts each update's batch once, redelivered ones included");
    assertIdentity(s);
  });

  it("the NATS server restarted mid-run: learner and workers reconnect and training completes", async () => {
    const j = job("nats-restart", 6, 1);
    const watch = await watchJob(j.name);
    const learner = startSteppo("learner", j.learnerArgs);
    const workers = startWorkers(j, 3);
    await watch.until((p) => p.update >= 2, 45_000, "update 2");
    await fx.server.restart({ downMs: 1000 });
    await finish(learner, workers);
    const s = summaryOf(j);
    assert.equal(s.updates, 6);
    assertIdentity(s);
    assert.ok(
      [learner, ...workers].some((p) => p.lines.some((l) => /reconnected/.test(l))),
      "the processes logged their reconnect",
    );
  });
});
