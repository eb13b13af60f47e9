// `steppo run --nats`: 1 learner + 3 workers as real processes against a real nats-server, with a garbage
// message and a duplicate publish on the trajectory subjects, /metrics and /healthz scraped while it runs.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { jetstream } from "@nats-io/jetstream";
import { DLQ_HEADERS } from "../../runtime/nats/dead-letters.ts";
import { NatsTrajectoryPublisher } from "../../runtime/nats/trajectory-publisher.ts";
import { connectNats } from "../../runtime/nats/connection.ts";
import { jobNames, natsJobRef } from "../../core/nats-names.ts";
import { encodeTrajectory } from "../../core/trajectory-codec.ts";
import type { DistributedSummary } from "../../runtime/learner-process.ts";
import { natsRunFixture } from "../support/nats-run-fixture.ts";
import { handmadeTrajectory } from "../support/trajectories.ts";
import { exitCode, metricsPort, type Proc, startSteppo, tinyJobYaml } from "../support/steppo-process.ts";

const fx = natsRunFixture();

async function scrape(p: Proc, path: string): Promise<{ status: number; body: string } | undefined> {
  const port = metricsPort(p);
  if (!port) return undefined;
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: res.status, body: await res.text() };
  } catch {
    return undefined;
  }
}

describe("distributed training (real processes, real nats-server)", { timeout: 120_000 }, () => {
  it("trains 1 learner + 3 workers; accounting identity; garbage dead-lettered; duplicate suppressed; /metrics and /healthz", async () => {
    const job = "dist-e2e";
    const jobFile = fx.ws.writeJob({ name: job, updates: 4, maxPolicyLag: 1 });
    const names = jobNames(natsJobRef({ name: job }));

    // Before the run: a garbage message and the same trajectory published twice with one message id.
    const nc = await connectNats({ servers: fx.server.url, name: "test", log: () => {} });
    const bus = await NatsTrajectoryPublisher.open(nc, { job: natsJobRef({ name: job }), workerId: "test", log: () => {} }); // creates the stream
    await bus.close();
    const js = jetstream(nc);
    await js.publish(names.trajSubject("intruder"), new TextEncoder().encode("definitely not a trajectory"));
    const data = encodeTrajectory(handmadeTrajectory("handmade-1"));
    const first = await js.publish(names.trajSubject("test"), data, { msgID: "handmade-1" });
    const second = await js.publish(names.trajSubject("test"), data, { msgID: "handmade-1" });
    assert.equal(first.duplicate, false);
    assert.equal(second.duplicate, true, "the stream suppresses a duplicate publish of the same trajId");

    const runDir = join(fx.ws.dir, "run-e2e");
    const t0 = Date.now();
    const run = startSteppo("run", ["run", jobFile, "--nats", fx.server.url, "--workers", "3", "--run-dir", runDir]);
    // Scrape the learner and a worker while they run.
    const learnerOf = () => ({ ...run, lines: run.lines.filter((l) => l.includes("[learner]")) });
    const workerOf = () => ({ ...run, lines: run.lines.filter((l) => l.includes("[worker-0]")) });
    let learnerMetrics = "";
    let workerMetrics = "";
    let healthz: number | undefined;
    let readyz: number | undefined;
    while (
      run.running() &&
      (!learnerMetrics.includes("steppo_trajectories") || !workerMetrics.includes("steppo_worker_policy_version") || !healthz || readyz !== 200)
    ) {
      const lm = await scrape(learnerOf(), "/metrics");
      if (lm?.status === 200) learnerMetrics = lm.body;
      const wm = await scrape(workerOf(), "/metrics");
      if (wm?.status === 200) workerMetrics = wm.body;
      healthz = (await scrape(learnerOf(), "/healthz"))?.status ?? healthz;
      const r = (await scrape(workerOf(), "/readyz"))?.status;
      if (r === 200) readyz = r;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(await exitCode(run, 90_000), 0, run.lines.slice(-30).join("\n"));
    const seconds = (Date.now() - t0) / 1000;

    const summary = JSON.parse(readFileSync(join(runDir, "summary.json"), "utf8")) as DistributedSummary;
    const t = summary.trajectories;
    assert.equal(summary.updates, 4);
    assert.equal(t.published, t.consumed + t.stale + t.deadLettered + t.inFlight, `accounting identity: ${JSON.stringify(t)}`);
    assert.equal(t.consumed, 4 * 8, "every update trained on a full batch, all checkpointed");
    assert.equal(t.deadLettered, 1, "the garbage message was dead-lettered");
    assert.ok(summary.curve.length === 5 && summary.successRate.final >= 0);
    assert.ok(summary.distributed.policyLag.max <= 1, "no trained sample older than maxPolicyLag");

    // The dead-lettered copy names its cause.
    const dlq = await jetstream(nc).consumers.get(names.dlqStream);
    const m = await dlq.next({ expires: 2000 });
    assert.ok(m, "the DLQ stream holds the garbage message");
    assert.equal(m.headers?.get(DLQ_HEADERS.reason), "malformed");
    assert.equal(new TextDecoder().decode(m.data), "definitely not a trajectory");
    await nc.close();

    assert.equal(healthz, 200, "learner /healthz");
    assert.equal(readyz, 200, "worker /readyz");
    assert.match(learnerMetrics, /steppo_trajectories\{[^}]*kind="published"[^}]*\} \d+/);
    assert.match(learnerMetrics, /steppo_learner_policy_version/);
    assert.match(workerMetrics, /steppo_worker_policy_version/);
    process.stderr.write(`  e2e: 4 updates with 3 workers in ${seconds.toFixed(1)} s; trajectories ${JSON.stringify(t)}\n`);
  });

  it("a worker whose job spec gives another vocabulary refuses to run, naming the mismatch", async () => {
    const jobFile = fx.ws.writeJob({ name: "vocab-check" });
    const otherFile = join(fx.ws.dir, "vocab-check-textworld.yaml");
    writeFileSync(otherFile, tinyJobYaml({ name: "vocab-check" }).replace("multihop-qa", "textworld"));
    const learner = startSteppo("learner", ["learner", "--job", jobFile, "--nats", fx.server.url, "--run-dir", join(fx.ws.dir, "run-vocab")]);
    const worker = startSteppo("worker", ["worker", "--job", otherFile, "--nats", fx.server.url, "--id", "odd"]);
    assert.equal(await exitCode(worker, 60_000), 1, worker.lines.slice(-10).join("\n"));
    assert.ok(
      worker.lines.some((l) => /vocabulary mismatch with the learner .*same job file/.test(l)),
      worker.lines.slice(-5).join("\n"),
    );
    learner.kill("SIGTERM");
    assert.equal(await exitCode(learner, 30_000), 0, learner.lines.slice(-10).join("\n"));
  });

  it("a run directory moves between runtimes: embedded → distributed → embedded continues one run", async () => {
    const jobFile = fx.ws.writeJob({ name: "cross-runtime", updates: 3, replicas: 1 });
    const runDir = join(fx.ws.dir, "run-cross");
    const embedded = startSteppo("embedded", ["run", jobFile, "--updates", "1", "--run-dir", runDir]);
    assert.equal(await exitCode(embedded, 90_000), 0, embedded.lines.slice(-10).join("\n"));
    const dist = startSteppo("distributed", ["run", jobFile, "--nats", fx.server.url, "--workers", "1", "--updates", "2", "--run-dir", runDir]);
    assert.equal(await exitCode(dist, 90_000), 0, dist.lines.slice(-20).join("\n"));
    assert.ok(
      dist.lines.some((l) => /resumed from .* at update 1 \(written by the embedded runtime; distributed starts its own transport state\)/.test(l)),
      dist.lines.slice(-20).join("\n"),
    );
    const afterDist = JSON.parse(readFileSync(join(runDir, "summary.json"), "utf8")) as DistributedSummary;
    assert.equal(afterDist.updates, 2);
    assert.equal(afterDist.trajectories.consumed, 8, "the distributed leg trained one batch of its own");
    const back = startSteppo("embedded-again", ["run", jobFile, "--run-dir", runDir]);
    assert.equal(await exitCode(back, 90_000), 0, back.lines.slice(-10).join("\n"));
    const final = JSON.parse(readFileSync(join(runDir, "summary.json"), "utf8")) as DistributedSummary;
    assert.equal(final.updates, 3);
    assert.deepEqual(
      final.curve.map((p) => p.update),
      [0, 1, 2, 3],
      "one curve across the three legs",
    );
    assert.ok(final.envSteps > afterDist.envSteps);
  });
});
