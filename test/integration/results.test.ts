// Results that outlive the job: a short `steppo run --nats` (real learner and worker processes, real
// nats-server) uploads summary.json, curve.csv, curve.svg and its newest checkpoint to the job's results
// object store; `steppo results <job>` downloads files equal to the run directory's; the operator's NATS
// cleanup (the finalizer's) leaves the store alone; a learner that resumes the finished run uploads the same
// set again; an upload that fails is logged and the run still succeeds; a job without results gets an error
// naming the job, its NATS identity and the store.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { jetstreamManager, type StreamUpdateConfig } from "@nats-io/jetstream";
import { STEPPO_BIN } from "../../cli/distributed-run.ts";
import { natsJobRef } from "../../core/nats-names.ts";
import { listCheckpoints } from "../../learner/checkpoint-store.ts";
import { JetStreamCleaner } from "../../operator/nats-cleanup.ts";
import { connectNats } from "../../runtime/nats/connection.ts";
import { POLICY_OBJECT, RESULT_FILES, resultsStream } from "../../runtime/nats/results.ts";
import { natsRunFixture } from "../support/nats-run-fixture.ts";
import { runBinary } from "../support/run-binary.ts";
import { exitCode, startSteppo, tinyJobYaml } from "../support/steppo-process.ts";

const fx = natsRunFixture();

const steppo = (args: string[]) => runBinary(process.execPath, [STEPPO_BIN, ...args], { timeoutMs: 60_000 });

describe("results that outlive the job (real processes, real nats-server)", { timeout: 240_000 }, () => {
  it("a distributed run uploads its results; steppo results downloads them as the run directory holds them; they survive the finalizer's cleanup and a resume", async () => {
    const job = "res-e2e";
    const ref = natsJobRef({ name: job });
    const jobFile = join(fx.ws.dir, `${job}.yaml`);
    writeFileSync(jobFile, `${tinyJobYaml({ name: job, updates: 2, replicas: 2, checkpointInterval: 1 })}  results: {ttlSeconds: 3600}\n`);
    const runDir = join(fx.ws.dir, "run-res");
    const run = startSteppo("run", ["run", jobFile, "--nats", fx.server.url, "--workers", "2", "--run-dir", runDir]);
    assert.equal(await exitCode(run, 120_000), 0, run.lines.slice(-30).join("\n"));
    assert.ok(
      run.lines.some((l) => l.includes(`results: uploaded summary.json, curve.csv, curve.svg, ${POLICY_OBJECT} to results store ${resultsStream(ref)}`)),
      run.lines.slice(-15).join("\n"),
    );

    // The store's TTL is spec.results.ttlSeconds.
    const nc = await connectNats({ servers: fx.server.url, name: "test", log: () => {} });
    const jsm = await jetstreamManager(nc);
    assert.equal((await jsm.streams.info(resultsStream(ref))).config.max_age, 3600 * 1e9);

    const newestCheckpoint = async () => {
      const ckpts = await listCheckpoints(join(runDir, "checkpoints"));
      assert.ok(ckpts.length > 0);
      return readFileSync(ckpts.at(-1)?.path as string);
    };
    const downloadAndCompare = async (out: string) => {
      const r = await steppo(["results", job, "--nats", fx.server.url, "--out", out]);
      assert.equal(r.code, 0, r.stderr);
      for (const f of RESULT_FILES) assert.deepEqual(readFileSync(join(out, f)), readFileSync(join(runDir, f)), `${f} equals the run directory's`);
      assert.deepEqual(readFileSync(join(out, POLICY_OBJECT)), await newestCheckpoint(), "policy.steppo is the newest checkpoint");
      assert.match(r.stdout, /policy\.steppo\t.*expires \d{4}-/);
      return r;
    };
    await downloadAndCompare(join(fx.ws.dir, "out-1"));
    const summary = JSON.parse(readFileSync(join(fx.ws.dir, "out-1", "summary.json"), "utf8")) as { updates: number };
    assert.equal(summary.updates, 2);

    // The operator's finalizer cleanup (job deleted) removes the job's streams and buckets, not its results.
    const cleaner = new JetStreamCleaner({ log: () => {} });
    const deleted = await cleaner.cleanup(ref, fx.server.url);
    await cleaner.close();
    assert.ok(!deleted.includes(resultsStream(ref)) && deleted.length > 0, `deleted ${deleted.join(", ")}`);
    await downloadAndCompare(join(fx.ws.dir, "out-2"));

    // A learner that resumes the finished run (a pod restarted after the end) uploads the same set again: no duplicates.
    const learnerArgs = ["learner", "--job", jobFile, "--nats", fx.server.url, "--run-dir", runDir];
    const again = startSteppo("learner", learnerArgs);
    assert.equal(await exitCode(again, 90_000), 0, again.lines.slice(-20).join("\n"));
    assert.ok(again.lines.some((l) => l.includes("results: uploaded")));
    const listed = await steppo(["results", job, "--nats", fx.server.url, "--list"]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(
      listed.stdout
        .trim()
        .split("\n")
        .map((l) => l.split("\t")[0]),
      ["curve.csv", "curve.svg", POLICY_OBJECT, "summary.json"],
    );
    await downloadAndCompare(join(fx.ws.dir, "out-3"));

    // An upload that fails (the store sealed: every write refused) is logged; the run still succeeds.
    // `sealed` is a stream setting the server accepts on update; the client's update type leaves it out.
    await jsm.streams.update(resultsStream(ref), { sealed: true } as Partial<StreamUpdateConfig>);
    const sealed = startSteppo("learner", learnerArgs);
    assert.equal(await exitCode(sealed, 90_000), 0, sealed.lines.slice(-20).join("\n"));
    assert.ok(
      sealed.lines.some((l) => /results: uploading .* failed \(.*\); the run succeeded and its files stay in /.test(l)),
      sealed.lines.slice(-15).join("\n"),
    );
    await nc.close();
  });

  it("a job without results: the error names the job, its NATS identity and the store", async () => {
    const r = await steppo(["results", "never-ran", "--nats", fx.server.url, "--namespace", "team-a", "--cluster-id", "east"]);
    assert.equal(r.code, 1, r.stdout);
    const ref = { cluster: "east", namespace: "team-a", name: "never-ran" };
    assert.ok(
      r.stderr.includes(
        `no results for job team-a/never-ran (cluster id "east") on NATS ${fx.server.url}: its results store ${resultsStream(ref)} does not exist`,
      ),
      r.stderr,
    );
    const usage = await steppo(["results", "--nats", fx.server.url]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /results takes exactly one job name/);
  });
});
