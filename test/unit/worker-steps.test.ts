// The rollout worker process's steps (runtime/worker/*.ts) called directly, with fakes for the job's KV and
// object store: following the policy, stopping and waking, and the tally of a batch. The whole process is
// covered against a real nats-server by test/integration/distributed-*.test.ts.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Trajectory } from "../../core/trajectory.ts";
import type { StepPOJob } from "../../crds/steppojob.ts";
import type { ModelConfig } from "../../policy/model.ts";
import type { RuntimeInfo } from "../../runtime/nats/runtime-state.ts";
import { addBatch, emptyTotals, episodesPerRequest, tallyBatch, totalsLine } from "../../runtime/worker/episode-tally.ts";
import { checkVocabulary, PolicyFollower, type PolicySources, VocabularyMismatchError, type VersionEntry } from "../../runtime/worker/policy-follower.ts";
import { WorkerStop } from "../../runtime/worker/worker-stop.ts";
import { handmadeTrajectory } from "../support/trajectories.ts";

const MODEL: ModelConfig = { vocabSize: 40, dModel: 8, layers: 1, heads: 1, contextLength: 64 };
const VOCAB = { hash: "h1", size: 40 };

function runtimeInfo(over: Partial<RuntimeInfo> = {}): RuntimeInfo {
  return { tokenizerHash: "h1", vocabSize: 40, model: MODEL, learnerIncarnation: "L1", startedAt: "2024-01-01T00:00:00Z", ...over };
}

class FakeModel {
  disposed = false;
  loaded: number[] = [];
  constructor(readonly config: ModelConfig) {}
  dispose(): void {
    this.disposed = true;
  }
}

/** A KV and object store in memory: `put` rewrites policy.version (a new revision), blobs are bytes [version]. */
function fakeJob() {
  const s = {
    info: runtimeInfo() as RuntimeInfo | undefined,
    entry: undefined as VersionEntry | undefined,
    revision: 0,
    blobs: new Map<number, Uint8Array>(),
    /** Versions whose blob the model refuses. */
    bad: new Set<number>(),
    fetched: [] as number[],
    models: [] as FakeModel[],
    logs: [] as string[],
    put(version: number) {
      s.revision++;
      s.blobs.set(version, Uint8Array.of(version));
      s.entry = { operation: "PUT", revision: s.revision, json: <T>() => version as T };
    },
  };
  const sources: PolicySources<FakeModel> = {
    runtimeInfo: async () => s.info,
    versionEntry: async () => s.entry,
    weights: async (v) => {
      s.fetched.push(v);
      return s.blobs.get(v);
    },
    newModel: (config) => {
      const m = new FakeModel(config);
      s.models.push(m);
      return m;
    },
    load: (model, blob) => {
      if (s.bad.has(blob[0])) return "weights blob: truncated";
      model.loaded.push(blob[0]);
      return undefined;
    },
  };
  const follower = new PolicyFollower<FakeModel>({ sources, vocabulary: VOCAB, workerId: "w0", jobFile: "job.yaml", log: (l) => s.logs.push(l) });
  return { s, follower };
}

describe("policy follower", () => {
  test("the vocabulary check names both sides and the job file", () => {
    checkVocabulary(runtimeInfo(), VOCAB, "w0", "job.yaml");
    for (const other of [runtimeInfo({ tokenizerHash: "h2" }), runtimeInfo({ vocabSize: 41 })]) {
      assert.throws(
        () => checkVocabulary(other, VOCAB, "w0", "job.yaml"),
        (err: Error) => err instanceof VocabularyMismatchError && /worker w0: vocabulary mismatch/.test(err.message) && err.message.includes("(job.yaml)"),
      );
    }
  });

  test("nothing to sample with until the learner has described itself and published a version", async () => {
    const { s, follower } = fakeJob();
    assert.equal(await follower.sync(), false, "no policy.version yet");
    s.info = undefined;
    s.put(0);
    assert.equal(await follower.sync(), false, "no runtime description yet");
    assert.equal(follower.model, undefined);
    assert.equal(follower.contextLength, 0);
    s.info = runtimeInfo();
    assert.equal(await follower.sync(), true);
    assert.equal(follower.loadedVersion, 0);
    assert.equal(follower.contextLength, 64);
    assert.match(s.logs.at(-1) ?? "", /^policy v0 loaded from the object store \(1 bytes, \d+ ms\)$/);
  });

  test("loads each rewrite of policy.version once, an older version too (learner restored)", async () => {
    const { s, follower } = fakeJob();
    s.put(3);
    assert.equal(await follower.sync(), true);
    assert.equal(await follower.sync(), true);
    assert.deepEqual(s.fetched, [3], "the same revision is not fetched again");
    s.put(4);
    await follower.sync();
    s.put(2);
    await follower.sync();
    assert.deepEqual(s.fetched, [3, 4, 2]);
    assert.equal(follower.loadedVersion, 2);
    assert.deepEqual(s.models.length, 1);
    assert.deepEqual(s.models[0].loaded, [3, 4, 2]);
  });

  test("a deleted policy.version stops sampling; a pruned blob keeps the loaded version", async () => {
    const { s, follower } = fakeJob();
    s.put(1);
    await follower.sync();
    s.put(2);
    s.blobs.delete(2);
    assert.equal(await follower.sync(), true, "pruned already: keep v1");
    assert.equal(follower.loadedVersion, 1);
    s.entry = { operation: "DEL", revision: 9, json: <T>() => 0 as T };
    assert.equal(await follower.sync(), false);
  });

  test("a refused blob keeps the loaded version, is logged once and not fetched again", async () => {
    const { s, follower } = fakeJob();
    s.bad.add(0);
    s.put(0);
    assert.equal(await follower.sync(), false, "nothing loaded yet: nothing to sample with");
    assert.equal(await follower.sync(), false);
    assert.deepEqual(s.fetched, [0], "the refused revision is not fetched again");
    assert.deepEqual(
      s.logs.filter((l) => l.includes("refused")),
      ["policy v0 from the object store refused (weights blob: truncated); no policy loaded yet; waiting for the next version"],
    );
    s.put(1);
    assert.equal(await follower.sync(), true);
    s.bad.add(2);
    s.put(2);
    assert.equal(await follower.sync(), true, "keeps sampling with v1");
    assert.equal(follower.loadedVersion, 1);
    assert.equal(s.logs.at(-1), "policy v2 from the object store refused (weights blob: truncated); keeping policy v1");
  });

  test("a restarted learner: same model shape keeps the model, another shape replaces it", async () => {
    const { s, follower } = fakeJob();
    s.put(0);
    await follower.sync();
    s.info = runtimeInfo({ learnerIncarnation: "L2" });
    s.put(0);
    await follower.sync();
    assert.ok(s.logs.includes("learner restarted (incarnation L2)"));
    assert.equal(s.models.length, 1, "same shape: the model stays");
    s.info = runtimeInfo({ learnerIncarnation: "L3", model: { ...MODEL, contextLength: 128 } });
    s.put(0);
    await follower.sync();
    assert.equal(s.models.length, 2);
    assert.ok(s.models[0].disposed);
    assert.equal(follower.model, s.models[1]);
    assert.equal(follower.contextLength, 128);
  });

  test("a learner with another vocabulary fails the sync", async () => {
    const { s, follower } = fakeJob();
    s.info = runtimeInfo({ tokenizerHash: "other" });
    s.put(0);
    await assert.rejects(follower.sync(), VocabularyMismatchError);
  });
});

describe("worker stop", () => {
  test("a stop request aborts once, remembers when, and ends a wait", async () => {
    const external = new AbortController();
    let requests = 0;
    const stop = new WorkerStop(external.signal, () => requests++);
    const t0 = Date.now();
    const waiting = stop.waitForChange(10_000);
    external.abort();
    await waiting;
    assert.ok(Date.now() - t0 < 5000, "the wait ended with the stop");
    assert.equal(requests, 1);
    assert.ok(stop.signal.aborted);
    assert.ok(stop.signalledAt !== undefined && stop.signalledAt >= t0);
    assert.equal(stop.done, false);
  });

  test("a signal aborted before the worker started stops it at once", () => {
    const external = new AbortController();
    external.abort();
    let requests = 0;
    const stop = new WorkerStop(external.signal, () => requests++);
    assert.equal(requests, 1);
    assert.ok(stop.signal.aborted);
  });

  test("wake() ends a wait early; waits time out otherwise; the learner's done stops without a request", async () => {
    const stop = new WorkerStop(undefined, () => assert.fail("no stop request"));
    const t0 = Date.now();
    const waiting = stop.waitForChange(10_000);
    stop.wake();
    await waiting;
    assert.ok(Date.now() - t0 < 5000);
    await stop.waitForChange(5);
    stop.jobDone();
    assert.ok(stop.done && stop.signal.aborted);
    assert.equal(stop.signalledAt, undefined);
  });

  test("after dispose() the process's signal no longer reaches it", () => {
    const external = new AbortController();
    const stop = new WorkerStop(external.signal, () => assert.fail("disposed"));
    stop.dispose();
    external.abort();
    assert.equal(stop.signal.aborted, false);
  });
});

describe("episode tally", () => {
  const trajs: Trajectory[] = ["a", "b", "c"].map((id, i) => {
    const t = handmadeTrajectory(id);
    t.success = i !== 1;
    t.steps = Array.from({ length: i + 1 }, () => ({ ...t.steps[0] }));
    return t;
  });

  test("every admitted episode is published, excluded or abandoned", () => {
    const b = tallyBatch(8, 3, trajs, { faults: 2, oversized: 1 }, 2);
    assert.deepEqual(b, { published: 3, steps: 6, excludedForFaults: 2, oversized: 1, abandoned: 2, stepsPerSecond: 3, successRate: 2 / 3 });
    const none = tallyBatch(4, 0, [], { faults: 0, oversized: 0 }, 0);
    assert.deepEqual([none.abandoned, none.successRate, none.stepsPerSecond], [4, 0, 0]);
    assert.equal(tallyBatch(3, 2, trajs, { faults: 0, oversized: 0 }, 1).steps, 3, "only the published ones count");
  });

  test("totals add up over batches and make the last log line", () => {
    const t = emptyTotals();
    addBatch(t, tallyBatch(8, 3, trajs, { faults: 2, oversized: 1 }, 1));
    addBatch(t, tallyBatch(2, 1, trajs, { faults: 0, oversized: 0 }, 1));
    assert.deepEqual(t, { episodes: 4, envSteps: 7, published: 4, abandoned: 3, excludedForFaults: 2, oversized: 1 });
    assert.equal(
      totalsLine("w0", "done", t, undefined),
      "worker w0 done: published 4 episodes (7 env steps), abandoned 3, excluded for environment faults 2, oversized 1",
    );
    assert.match(totalsLine("w0", "stopped", t, 1000, 1250), /oversized 1; shut down 250 ms after the stop request$/);
  });

  test("a worker asks for its share of an update's groups, whole groups", () => {
    const spec = (episodesPerUpdate: number, groupSize: number, replicas: number) =>
      ({ rollout: { episodesPerUpdate, groupSize, replicas } }) as StepPOJob["spec"];
    assert.equal(episodesPerRequest(spec(32, 4, 2)), 16);
    assert.equal(episodesPerRequest(spec(32, 4, 3)), 12, "3 groups (8 / 3 rounded up) of 4");
    assert.equal(episodesPerRequest(spec(4, 8, 1)), 8, "at least one group");
    assert.equal(episodesPerRequest(spec(8, 1, 0)), 8, "no replicas counts as one");
  });
});
