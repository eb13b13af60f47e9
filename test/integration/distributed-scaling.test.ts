// Scaling a run up and down while it trains, against a real nats-server with real `steppo learner` and
// `steppo worker` child processes (what the operator's autoscaler does to rollout pods):
//   - start with one worker, add two mid-run: each loads the current policy version from the object store
//     before producing, so everything it publishes is tagged with a version ≥ the one current when it was
//     started, and its behaviour log-probs are those of that version's weights;
//   - SIGTERM two workers while they are running episodes: each exits 0 within a bound (measured), publishes
//     only complete trajectories, and leaves the admission counter (its tickets returned, not reclaimed);
//   - the run finishes on the remaining worker with the accounting identity intact and nothing dead-lettered.
// A plain NATS subscription on the trajectory subjects sees every message the workers publish, so the test
// checks what reached the stream independently of the learner. A last case stops the NATS server under a
// worker and SIGTERMs it: the shutdown bound (STEPPO_SHUTDOWN_TIMEOUT_MS) still holds.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { loadJobFile } from "../../crds/job-spec.ts";
import { AdmissionKV, type AdmissionState, runningCount } from "../../runtime/nats/admission.ts";
import { connectNats } from "../../runtime/nats/connection.ts";
import { jobNames, KV_KEYS, natsJobRef } from "../../core/nats-names.ts";
import { type LearnerProgress, RUNTIME_KEYS, type RuntimeInfo } from "../../runtime/nats/runtime-state.ts";
import { JobStateKV, NatsWeightStore } from "../../runtime/nats/weights.ts";
import type { Trajectory } from "../../core/trajectory.ts";
import { decodeTrajectory } from "../../core/trajectory-codec.ts";
import { decodeWeights } from "../../core/weights-codec.ts";
import { selectBackend } from "../../policy/backend.ts";
import type { DistributedSummary } from "../../runtime/learner-process.ts";
import { PolicyModel } from "../../policy/model.ts";
import { natsRunFixture } from "../support/nats-run-fixture.ts";
import { pollUntil } from "../support/poll.ts";
import { exitCode, type Proc, startSteppo, tinyJobYaml } from "../support/steppo-process.ts";

const observers: Observer[] = [];
const fx = natsRunFixture(async () => {
  for (const o of observers) await o.close().catch(() => {});
});

const MAX_STEPS = 3; // tinyJobYaml's environment.maxSteps
/** No worker is presumed dead in this test: a SIGTERMed worker must return its tickets itself. */
const ENV = { STEPPO_ADMISSION_LEASE_MS: "15000" };

interface Seen {
  traj: Trajectory;
  at: number;
}

/** Everything published on the job's trajectory subjects, and every policy version's weights as it appears. */
class Observer {
  readonly seen: Seen[] = [];
  readonly undecodable: string[] = [];
  readonly blobs = new Map<number, Uint8Array>();
  private stops: (() => void)[] = [];

  private constructor(
    readonly nc: NatsConnection,
    readonly kv: JobStateKV,
    readonly admission: AdmissionKV,
  ) {}

  static async open(url: string, job: string): Promise<Observer> {
    const nc = await connectNats({ servers: url, name: "test-observer", log: () => {} });
    const kv = await JobStateKV.open(nc, { job: natsJobRef({ name: job }) });
    const o = new Observer(nc, kv, new AdmissionKV(kv.kv));
    nc.subscribe(jobNames(natsJobRef({ name: job })).trajFilter, {
      callback: (err, msg) => {
        if (err) return;
        try {
          o.seen.push({ traj: decodeTrajectory(msg.data), at: Date.now() });
        } catch (e) {
          o.undecodable.push(`${msg.subject}: ${(e as Error).message}`);
        }
      },
    });
    await nc.flush();
    const weights = await NatsWeightStore.open(nc, { job: natsJobRef({ name: job }), log: () => {} }, kv);
    o.stops.push(
      await weights.watchLatest((v) => {
        if (!o.blobs.has(v)) {
          weights.get(v).then(
            (b) => b && o.blobs.set(v, b),
            () => {},
          );
        }
      }),
    );
    return o;
  }

  of(workerId: string): Seen[] {
    return this.seen.filter((s) => s.traj.workerId === workerId);
  }

  progress(): Promise<LearnerProgress | undefined> {
    return this.kv.get<LearnerProgress>(KV_KEYS.learnerProgress);
  }

  async policyVersion(): Promise<number> {
    return (await this.kv.get<number>(KV_KEYS.policyVersion)) ?? -1;
  }

  /** Admission records of one worker id (key `<id>.<incarnation>`). */
  async holders(workerId: string): Promise<{ state: AdmissionState; mine: [string, AdmissionState["holders"][string]][] }> {
    const { state } = await this.admission.read();
    return { state, mine: Object.entries(state.holders).filter(([k]) => k.startsWith(`${workerId}.`)) };
  }

  async close(): Promise<void> {
    for (const s of this.stops) s();
    await this.nc.close();
  }
}

/**
 * Waits for `p` to start a new batch of episodes (its admission record takes fresh tickets) and SIGTERMs it at
 * once: the first step of a batch takes at least the minimum tool latency, so the signal lands mid-episode.
 * Returns how long the process took to exit after the signal, and its exit code.
 */
async function sigtermMidEpisode(o: Observer, p: Proc, workerId: string): Promise<{ code: number; ms: number; running: number }> {
  let last: number | undefined;
  const running = await pollUntil(
    `${workerId} starting a batch`,
    60_000,
    async () => {
      const { mine } = await o.holders(workerId);
      const rec = mine.at(-1)?.[1];
      if (!rec) return undefined;
      const fresh = last !== undefined && rec.admitted > last && runningCount(rec) > 0;
      last = rec.admitted;
      return fresh ? runningCount(rec) : undefined;
    },
    15,
  );
  const t0 = Date.now();
  p.kill("SIGTERM");
  const code = await exitCode(p, 40_000);
  return { code, ms: Date.now() - t0, running };
}

/** Complete = ended by the environment (only the last step done), or cut by the step budget (no step done). */
function complete(t: Trajectory): boolean {
  if (t.steps.length === 0) return false;
  const doneAt = t.steps.findIndex((s) => s.done);
  if (t.truncated) return doneAt === -1 && t.steps.length === MAX_STEPS && t.bootstrapContextIds !== undefined;
  return doneAt === t.steps.length - 1 && t.steps.every((s) => s.actionIds.length === s.logProbs.length && s.actionIds.length > 0);
}

/** The log-probs a model assigns to a step's action tokens under softmax(logits / T), token by token. */
function logProbsUnder(model: PolicyModel, contextIds: Int32Array, actionIds: Int32Array, temperature: number): number[] {
  const V = model.config.vocabSize;
  const dec = model.decoder([contextIds]);
  const out: number[] = [];
  try {
    for (let i = 0; i < actionIds.length; i++) {
      const logits = dec.logits();
      let max = -Infinity;
      for (let v = 0; v < V; v++) max = Math.max(max, logits[v] / temperature);
      let z = 0;
      for (let v = 0; v < V; v++) z += Math.exp(logits[v] / temperature - max);
      out.push(logits[actionIds[i]] / temperature - max - Math.log(z));
      if (i < actionIds.length - 1) dec.push(Int32Array.of(actionIds[i]));
    }
  } finally {
    dec.dispose();
  }
  return out;
}

function lineMatching(p: Proc, re: RegExp): RegExpExecArray | undefined {
  for (const l of p.lines) {
    const m = re.exec(l);
    if (m) return m;
  }
  return undefined;
}

describe("scaling rollout workers mid-run (real processes, real nats-server)", { timeout: 240_000 }, () => {
  it("1 worker, then 3, then 2 SIGTERMed mid-episode: clean exits, current weights on scale-up, identity intact", async (t) => {
    const name = "scale";
    const updates = 12;
    // An entropy bonus moves the weights at every update even before any episode succeeds, so consecutive
    // policy versions are told apart by the log-probs they give.
    const file = join(fx.ws.dir, `${name}.yaml`);
    const yaml = tinyJobYaml({ name, updates, maxPolicyLag: 1, checkpointInterval: 4, toolLatencyMs: [200, 400] });
    const tuned = yaml.replace(
      "algorithm: {epochs: 1, minibatchSteps: 32, criticWarmup: {episodes: 16}}",
      "algorithm: {epochs: 1, minibatchSteps: 32, criticWarmup: {episodes: 16}, entropyCoef: 0.05, learningRate: 0.003}",
    );
    assert.notEqual(tuned, yaml);
    writeFileSync(file, tuned);
    const runDir = join(fx.ws.dir, name);
    const o = await Observer.open(fx.server.url, name);
    observers.push(o);
    const worker = (id: string) => startSteppo(id, ["worker", "--job", file, "--nats", fx.server.url, "--id", id], ENV);

    const t0 = Date.now();
    const learner = startSteppo("learner", ["learner", "--job", file, "--nats", fx.server.url, "--run-dir", runDir], ENV);
    const w0 = worker("w0");
    await pollUntil("update 1 (one worker)", 90_000, async () => ((await o.progress())?.update ?? 0) >= 1 || undefined);

    // Scale up: two workers join a run in progress.
    const added: Record<string, { proc: Proc; versionAtStart: number; startedAt: number }> = {};
    for (const id of ["w1", "w2"]) added[id] = { versionAtStart: await o.policyVersion(), startedAt: Date.now(), proc: worker(id) };
    await pollUntil("both added workers publishing", 90_000, () => (o.of("w1").length > 0 && o.of("w2").length > 0) || undefined);
    const atScaleDown = await o.progress();
    assert.ok(atScaleDown && atScaleDown.phase !== "done" && atScaleDown.update < updates, `the run must still be going: ${JSON.stringify(atScaleDown)}`);

    // Scale down: SIGTERM the original worker and one added one, each while it runs a batch of episodes.
    const [s0, s1] = await Promise.all([sigtermMidEpisode(o, w0, "w0"), sigtermMidEpisode(o, added.w1.proc, "w1")]);
    for (const [id, s, p] of [
      ["w0", s0, w0],
      ["w1", s1, added.w1.proc],
    ] as const) {
      t.diagnostic(`${id}: SIGTERM with ${s.running} episode(s) running → exit ${s.code} after ${s.ms} ms`);
      assert.equal(s.code, 0, `${id} exits 0 on SIGTERM:\n${p.lines.slice(-20).join("\n")}`);
      assert.ok(s.ms < 10_000, `${id} took ${s.ms} ms to exit after SIGTERM`);
      // Its own account: it was running episodes when told to stop, and stopped cleanly (not by the deadline).
      const asked = lineMatching(p, /stop requested: (\d+) episode\(s\) running/);
      assert.ok(asked && Number(asked[1]) > 0, `${id} was mid-episode when signalled:\n${p.lines.slice(-20).join("\n")}`);
      const left = lineMatching(p, new RegExp(`worker ${id} stopped: published (\\d+) episodes .*abandoned (\\d+)[^;]*; shut down (\\d+) ms after`));
      assert.ok(left, `${id} reports its clean stop:\n${p.lines.slice(-20).join("\n")}`);
      // Exactly what it says it published reached the subjects; the episodes it cut off did not.
      const published = Number(left[1]);
      await pollUntil(`${id}'s ${published} trajectories on the subscription`, 5000, () => o.of(id).length >= published || undefined).catch(() => {});
      assert.equal(new Set(o.of(id).map((x) => x.traj.trajId)).size, published, `${id}: trajectories seen on the stream vs its published count`);
      // Its tickets are returned: its admission record is gone (published ones folded into the base).
      const { mine } = await o.holders(id);
      assert.deepEqual(mine, [], `${id} left the admission counter`);
    }
    assert.ok(
      Number(lineMatching(w0, /abandoned (\d+)[,;]/)?.[1]) + Number(lineMatching(added.w1.proc, /abandoned (\d+)[,;]/)?.[1]) > 0,
      "at least one episode was cut off by the SIGTERMs",
    );

    // The run finishes on the one worker left.
    assert.equal(await exitCode(learner, 120_000), 0, learner.lines.slice(-30).join("\n"));
    assert.equal(await exitCode(added.w2.proc, 30_000), 0, added.w2.proc.lines.slice(-20).join("\n"));
    t.diagnostic(`run of ${updates} updates: ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    // Accounting identity from the learner's final progress in KV; nothing dead-lettered.
    const p = await o.progress();
    assert.ok(p && p.phase === "done" && p.update === updates, JSON.stringify(p));
    const a = p.trajectories;
    assert.equal(a.published, a.consumed + a.stale + a.deadLettered + a.inFlight, `accounting identity: ${JSON.stringify(a)}`);
    assert.equal(a.deadLettered, 0, "no trajectory was half-written");
    assert.equal(a.consumed, updates * 8);
    const summary = JSON.parse(readFileSync(join(runDir, "summary.json"), "utf8")) as DistributedSummary;
    assert.equal(summary.distributed.reclaimedWorkers, 0, "every worker that left returned its own tickets");

    // What reached the stream: every message decodes to a complete trajectory, each stored once.
    assert.deepEqual(o.undecodable, []);
    const incomplete = o.seen.filter((s) => !complete(s.traj)).map((s) => s.traj.trajId);
    assert.deepEqual(incomplete, [], "only complete trajectories are published");
    const jsm = await jetstreamManager(o.nc);
    const stream = await jsm.streams.info(jobNames(natsJobRef({ name })).trajStream);
    const ids = new Set(o.seen.map((s) => s.traj.trajId)); // a publish retried after a lost PubAck is seen twice, stored once
    assert.equal(stream.state.last_seq, ids.size, "the stream stored exactly the trajectories seen on the subjects");
    assert.ok(a.published <= ids.size, "the learner's final count covers what was published until then");

    // Scale-up: the added workers sampled with the current weights, fetched from the object store.
    const spec = loadJobFile(file).spec;
    const info = await o.kv.get<RuntimeInfo>(RUNTIME_KEYS.runtime);
    assert.ok(info);
    await selectBackend("wasm", () => {});
    const model = new PolicyModel(info.model, spec.seed);
    try {
      for (const id of ["w1", "w2"]) {
        const { versionAtStart, startedAt, proc } = added[id];
        const mine = o.of(id);
        assert.ok(mine.length > 0, `${id} produced trajectories`);
        const low = mine.filter((s) => s.traj.policyVersion < versionAtStart).map((s) => `${s.traj.trajId}@v${s.traj.policyVersion}`);
        assert.deepEqual(low, [], `${id} was started at policy v${versionAtStart}: nothing older may come from it`);
        const loaded = lineMatching(proc, /policy v(\d+) loaded from the object store/);
        assert.ok(loaded && Number(loaded[1]) >= versionAtStart, `${id} loaded the current weights first:\n${proc.lines.slice(0, 20).join("\n")}`);
        const first = mine[0].traj;
        t.diagnostic(
          `${id}: started at v${versionAtStart}, loaded v${loaded[1]}, first trajectory (v${first.policyVersion}) ${mine[0].at - startedAt} ms after spawn`,
        );
        // Its behaviour log-probs are those of the weights stored under the version it tagged.
        const blob = o.blobs.get(first.policyVersion);
        assert.ok(blob, `weights v${first.policyVersion} were captured from the object store`);
        model.importWeights(decodeWeights(blob));
        const step = first.steps[0];
        const lp = logProbsUnder(model, step.contextIds, step.actionIds, spec.rollout.temperature);
        const err = Math.max(...lp.map((x, i) => Math.abs(x - step.logProbs[i])));
        assert.ok(err < 2e-3, `${id}: behaviour log-probs differ from weights v${first.policyVersion} by ${err}`);
        // …and not those of the version before it (what a worker that skipped the object store would hold).
        const previous = o.blobs.get(first.policyVersion - 1);
        assert.ok(previous, `weights v${first.policyVersion - 1} were captured from the object store`);
        model.importWeights(decodeWeights(previous));
        const lpPrev = logProbsUnder(model, step.contextIds, step.actionIds, spec.rollout.temperature);
        const errPrev = Math.max(...lpPrev.map((x, i) => Math.abs(x - step.logProbs[i])));
        t.diagnostic(`${id}: max |Δ log-prob| vs v${first.policyVersion} ${err.toExponential(1)}, vs v${first.policyVersion - 1} ${errPrev.toExponential(1)}`);
        assert.ok(
          errPrev > 10 * Math.max(err, 1e-5),
          `${id}: v${first.policyVersion} and v${first.policyVersion - 1} must be told apart (${errPrev} vs ${err})`,
        );
      }
    } finally {
      model.dispose();
    }
  });

  it("NATS unreachable during a scale-down: the worker still exits within STEPPO_SHUTDOWN_TIMEOUT_MS", async (t) => {
    const name = "scale-nats-down";
    const file = fx.ws.writeJob({ name, updates: 50, maxPolicyLag: 1, toolLatencyMs: [200, 400] });
    const o = await Observer.open(fx.server.url, name);
    observers.push(o);
    const learner = startSteppo("learner-b", ["learner", "--job", file, "--nats", fx.server.url, "--run-dir", join(fx.ws.dir, name)], ENV);
    const w = startSteppo("wb", ["worker", "--job", file, "--nats", fx.server.url, "--id", "wb"], { ...ENV, STEPPO_SHUTDOWN_TIMEOUT_MS: "3000" });
    await pollUntil("a first trajectory", 90_000, () => o.of("wb").length > 0 || undefined);
    await fx.server.stop();
    const t0 = Date.now();
    w.kill("SIGTERM");
    const code = await exitCode(w, 20_000);
    const ms = Date.now() - t0;
    t.diagnostic(`SIGTERM with NATS down → exit ${code} after ${ms} ms`);
    assert.equal(code, 143, `exits through the deadline, not cleanly:\n${w.lines.slice(-10).join("\n")}`);
    assert.ok(ms >= 3000 && ms < 8000, `exit after ${ms} ms`);
    assert.ok(lineMatching(w, /clean shutdown did not finish within 3000 ms/));
    learner.kill("SIGKILL");
    await learner.exited;
    await fx.server.restart();
  });
});
