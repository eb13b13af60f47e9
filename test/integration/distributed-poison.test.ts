// One poison message must not stop training: a NaN-reward trajectory and one with a token id outside the
// vocabulary, published among the workers' good ones to a running learner (real processes, real
// nats-server), are dead-lettered with their causes and counted; training reaches its update count. And
// weights from the bus are not trusted: a malformed blob published as the newest policy version leaves the
// workers on the version they have, and training goes on.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { jetstream } from "@nats-io/jetstream";
import { DLQ_HEADERS } from "../../runtime/nats/dead-letters.ts";
import { connectNats } from "../../runtime/nats/connection.ts";
import { jobNames, KV_KEYS, natsJobRef } from "../../core/nats-names.ts";
import { JobStateKV, NatsWeightStore } from "../../runtime/nats/weights.ts";
import { decodeTrajectory, encodeTrajectory } from "../../core/trajectory-codec.ts";
import { encodeWeights } from "../../core/weights-codec.ts";
import type { DistributedSummary } from "../../runtime/learner-process.ts";
import { natsRunFixture } from "../support/nats-run-fixture.ts";
import { handmadeTrajectory } from "../support/trajectories.ts";
import { exitCode, ProgressWatch, startSteppo } from "../support/steppo-process.ts";

const fx = natsRunFixture();

describe("poison trajectories (real processes, real nats-server)", { timeout: 150_000 }, () => {
  it("a NaN reward and an out-of-vocabulary token are dead-lettered with their causes; training completes; accounting counts them", async () => {
    const job = "poison";
    const updates = 5;
    const jobFile = fx.ws.writeJob({ name: job, updates, maxPolicyLag: 1, replicas: 2 });
    const names = jobNames(natsJobRef({ name: job }));
    const runDir = join(fx.ws.dir, "run-poison");
    const run = startSteppo("run", ["run", jobFile, "--nats", fx.server.url, "--workers", "2", "--run-dir", runDir]);

    // Once the learner has trained, publish the poison among what the workers keep publishing.
    const watch = await ProgressWatch.open(fx.server.url, job);
    await watch.until((p) => p.phase === "training" && p.update >= 1, 90_000, "the learner's first update");
    const nan = handmadeTrajectory("poison-nan", "intruder");
    nan.steps[0].reward = Number.NaN;
    const oov = handmadeTrajectory("poison-oov", "intruder");
    oov.steps[0].actionIds = Int32Array.of(5, 1_000_000);
    const nc = await connectNats({ servers: fx.server.url, name: "test", log: () => {} });
    const js = jetstream(nc);
    for (const t of [nan, oov]) await js.publish(names.trajSubject("intruder"), encodeTrajectory(t), { msgID: t.trajId });

    assert.equal(await exitCode(run, 120_000), 0, run.lines.slice(-30).join("\n"));
    await watch.close();
    const summary = JSON.parse(readFileSync(join(runDir, "summary.json"), "utf8")) as DistributedSummary;
    const t = summary.trajectories;
    assert.equal(summary.updates, updates, "training reached its update count");
    assert.equal(t.published, t.consumed + t.stale + t.deadLettered + t.inFlight, `accounting identity: ${JSON.stringify(t)}`);
    assert.equal(t.deadLettered, 2, `both poison messages dead-lettered: ${JSON.stringify(t)}`);
    assert.equal(t.rejected, 2, "and counted as refused at intake");
    assert.ok(
      run.lines.some((l) => /intake: dead-lettered trajectory poison-nan: step 0: reward is NaN \(non-finite\)/.test(l)),
      "the learner logs the refusal with its cause",
    );

    // The DLQ holds both, as published, with their causes in the headers.
    const dlq = await js.consumers.get(names.dlqStream);
    const held: { trajId: string; reason: string; error: string }[] = [];
    while (held.length < 2) {
      const m = await dlq.next({ expires: 2000 });
      assert.ok(m, `the DLQ stream holds 2 messages (got ${held.length})`);
      held.push({ trajId: decodeTrajectory(m.data).trajId, reason: m.headers?.get(DLQ_HEADERS.reason) ?? "", error: m.headers?.get(DLQ_HEADERS.error) ?? "" });
    }
    held.sort((a, b) => a.trajId.localeCompare(b.trajId));
    assert.deepEqual(
      held.map((h) => [h.trajId, h.reason]),
      [
        ["poison-nan", "non-finite"],
        ["poison-oov", "token-out-of-range"],
      ],
    );
    assert.match(held[1].error, /action token 1000000 is outside the vocabulary/);
    await nc.close();
  });

  it("a malformed weights blob as the newest version: workers keep their policy, log why, and training completes", async () => {
    const job = "bad-weights";
    const updates = 12; // room for the workers to look between batches before the run ends
    const jobFile = fx.ws.writeJob({ name: job, updates, maxPolicyLag: 1, replicas: 2 });
    const runDir = join(fx.ws.dir, "run-bad-weights");
    const run = startSteppo("run", ["run", jobFile, "--nats", fx.server.url, "--workers", "2", "--run-dir", runDir]);
    const watch = await ProgressWatch.open(fx.server.url, job);
    await watch.until((p) => p.phase === "training" && p.update >= 1, 90_000, "the learner's first update");

    // Far ahead of the learner. The learner points the workers back at its own version after each update (as
    // after a restore that found a newer one), and workers read the pointer between batches, so the pointer is
    // set again until a worker has looked at it and said why it refused the blob.
    const nc = await connectNats({ servers: fx.server.url, name: "test-weights", log: () => {} });
    const store = await NatsWeightStore.open(nc, { job: natsJobRef({ name: job }), log: () => {} });
    const kv = await JobStateKV.open(nc, { job: natsJobRef({ name: job }) });
    const truncated = encodeWeights([{ name: "a", shape: [4], data: new Float32Array(4) }]).subarray(0, 20);
    await store.publish(10_000, truncated);
    const refusal = /policy v10000 from the object store refused \(weights blob: .+\); keeping policy v\d+/;
    while (!run.lines.some((l) => refusal.test(l)) && run.running()) {
      await new Promise((r) => setTimeout(r, 100));
      await kv.put(KV_KEYS.policyVersion, 10_000).catch(() => {});
    }
    assert.ok(
      run.lines.some((l) => refusal.test(l)),
      `a worker logged the refusal with cause and version:\n${run.lines.slice(-20).join("\n")}`,
    );

    assert.equal(await exitCode(run, 120_000), 0, run.lines.slice(-30).join("\n"));
    await watch.close();
    await nc.close();
    const summary = JSON.parse(readFileSync(join(runDir, "summary.json"), "utf8")) as DistributedSummary;
    assert.equal(summary.updates, updates, "training reached its update count");
    assert.ok(!run.lines.some((l) => /WeightsFormatError|TypeError|RangeError|SyntaxError/.test(l)), "no raw decoding error escaped");
  });
});
