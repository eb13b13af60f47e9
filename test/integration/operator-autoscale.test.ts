// The operator reading learner progress from a REAL NATS KV bucket and autoscaling the rollout pods through
// the scale subresource of a REAL kube-apiserver. The test writes `learner.progress` exactly as a learner
// does (JobStateKV.put), so status and scaling follow what a learner would report.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { NatsConnection } from "@nats-io/transport-node";
import { connectNats } from "../../runtime/nats/connection.ts";
import { KV_KEYS, natsJobRef } from "../../core/nats-names.ts";
import type { LearnerProgress } from "../../runtime/nats/runtime-state.ts";
import { JobStateKV } from "../../runtime/nats/weights.ts";
import { type RunningOperator, startOperator } from "../../operator/operator.ts";
import { NatsServer } from "../support/nats-server.ts";
import { GROUP, VERSION } from "../../crds/steppojob.ts";
import type { StepPOJobStatus } from "../../crds/steppojob-status.ts";
import { PLURAL } from "../../crds/names.ts";
import { createJob, eventually, getJob, type Harness, jobManifest, jobPods, names, setPodPhase, startHarness } from "../support/operator-harness.ts";

let h: Harness;
let nats: NatsServer;
let nc: NatsConnection;
let op: RunningOperator;

function progress(update: number, demand: Partial<LearnerProgress["demand"]>, extra: Partial<LearnerProgress> = {}): LearnerProgress {
  return {
    phase: "training",
    update,
    updates: 50,
    envSteps: update * 100,
    trainSuccess: 0.25,
    testSuccess: 0.5,
    lastCheckpoint: null,
    demand: { waitSecondsLastUpdate: 0, waitSecondsPerUpdate: 0, backlog: 0, staleDrops: 0, workers: 1, ...demand },
    trajectories: { published: 0, consumed: 0, stale: 0, deadLettered: 0, duplicates: 0, inFlight: 0 },
    updatedAt: new Date().toISOString(),
    ...extra,
  };
}

async function events(name: string, namespace = "default"): Promise<string[]> {
  const list = await h.clients.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` });
  return list.items.map((e) => `${e.reason}: ${e.message}`);
}

async function createJobIn(namespace: string, name: string): Promise<void> {
  await h.clients.core.createNamespace({ body: { metadata: { name: namespace } } }).catch(() => {}); // may exist
  const body = { ...jobManifest(name, {}), metadata: { name, namespace } };
  await h.clients.custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, body });
}

async function statusIn(namespace: string, name: string): Promise<StepPOJobStatus | undefined> {
  const j = (await h.clients.custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, name })) as {
    status?: StepPOJobStatus;
  };
  return j.status;
}

/**
 * Plays the kubelet for the job's learner: once its pod exists it runs. The operator watches a job's
 * progress only from then on (a learner writes it only then).
 */
async function learnerRuns(name: string, namespace = "default"): Promise<void> {
  const pod = `${name}-learner-0`;
  await eventually(`${namespace}/${pod} created`, async () =>
    (await h.clients.core.listNamespacedPod({ namespace })).items.some((p) => p.metadata?.name === pod) ? true : undefined,
  );
  await setPodPhase(h.clients, pod, "Running", { namespace });
}

const rolloutNames = async (job: string) => names((await jobPods(h.clients, job)).filter((p) => p.metadata?.labels?.["steppo.dev/role"] === "rollout"));

describe("operator + NATS KV: progress in status, built-in autoscaler", () => {
  before(async () => {
    [h, nats] = await Promise.all([startHarness(), NatsServer.start()]);
    nc = await connectNats({ servers: nats.url, name: "test-learner", log: () => {} });
    op = await startOperator({ clients: h.clients, leaderElection: false, defaults: { image: "steppo:test", natsUrl: nats.url }, log: () => {} });
  });
  after(async () => {
    await op?.stop();
    await nc?.close();
    await nats?.dispose();
    await h?.stop();
  });

  test("the learner's KV progress reaches the job status (update, success rate, checkpoint)", async () => {
    await createJob(h.clients, "prog", {});
    await learnerRuns("prog");
    const kv = await JobStateKV.open(nc, { job: natsJobRef({ name: "prog" }) });
    const at = new Date().toISOString();
    await kv.put(KV_KEYS.learnerProgress, progress(7, {}, { testSuccess: 0.625, lastCheckpoint: { update: 6, path: "/var/lib/steppo/checkpoints/u6", at } }));
    const st = await eventually("status from KV", async () => {
      const s = (await getJob(h.clients, "prog")).status;
      return s?.update === 7 ? s : undefined;
    });
    assert.equal(st.successRate, 0.625);
    assert.deepEqual(st.lastCheckpoint, { update: 6, path: "/var/lib/steppo/checkpoints/u6", time: at });
    assert.equal(st.autoscaler, undefined, "autoscale is off by default");
  });

  test("same-named jobs in two namespaces: each status comes from its own KV bucket only", async () => {
    await createJobIn("ns-a", "quickstart");
    await createJobIn("ns-b", "quickstart");
    await Promise.all([learnerRuns("quickstart", "ns-a"), learnerRuns("quickstart", "ns-b")]);
    await eventually("ns-a/quickstart reconciled", async () => ((await statusIn("ns-a", "quickstart"))?.phase ? true : undefined));
    // ns-b's learner reports first; once ns-b's status shows it, ns-a's must still have no update.
    await (await JobStateKV.open(nc, { job: { namespace: "ns-b", name: "quickstart" } })).put(KV_KEYS.learnerProgress, progress(42, {}));
    await eventually("ns-b status from its KV", async () => ((await statusIn("ns-b", "quickstart"))?.update === 42 ? true : undefined));
    assert.equal((await statusIn("ns-a", "quickstart"))?.update, undefined, "ns-b's progress is not ns-a's");
    await (await JobStateKV.open(nc, { job: { namespace: "ns-a", name: "quickstart" } })).put(KV_KEYS.learnerProgress, progress(7, {}));
    await eventually("ns-a status from its KV", async () => ((await statusIn("ns-a", "quickstart"))?.update === 7 ? true : undefined));
    assert.equal((await statusIn("ns-b", "quickstart"))?.update, 42);
  });

  test("a malformed progress record: a Warning Event names the field, and status goes on updating", async () => {
    await createJob(h.clients, "poison", {});
    await learnerRuns("poison");
    const kv = await JobStateKV.open(nc, { job: natsJobRef({ name: "poison" }) });
    await kv.put(KV_KEYS.learnerProgress, progress(3, {}));
    await eventually("status update 3", async () => ((await getJob(h.clients, "poison")).status?.update === 3 ? true : undefined));
    await kv.put(KV_KEYS.learnerProgress, { ...progress(4, {}), update: "x", testSuccess: {} });
    const e = await eventually("InvalidLearnerProgress event", async () => (await events("poison")).find((x) => x.startsWith("InvalidLearnerProgress")));
    assert.match(e, /field "update" must be a non-negative integer, got string "x"/);
    assert.equal((await getJob(h.clients, "poison")).status?.update, 3, "the bad record is not in status");
    // A status patch the API server refused would freeze status; the next valid record still lands.
    await kv.put(KV_KEYS.learnerProgress, progress(5, {}, { testSuccess: 0.75 }));
    const st = await eventually("status update 5", async () => {
      const s = (await getJob(h.clients, "poison")).status;
      return s?.update === 5 ? s : undefined;
    });
    assert.equal(st.successRate, 0.75);
  });

  test("starved learner → scale up (maxStep, within maxReplicas); backlog → scale down; decision in status and Events", async () => {
    await createJob(h.clients, "auto", {
      rollout: { replicas: 1, minReplicas: 1, maxReplicas: 4, episodesPerUpdate: 8, autoscale: { enabled: true, stabilizationSeconds: 0, maxStep: 2 } },
    });
    await eventually("1 rollout pod", async () => ((await rolloutNames("auto")).length === 1 ? true : undefined));
    await learnerRuns("auto");
    const kv = await JobStateKV.open(nc, { job: natsJobRef({ name: "auto" }) });

    await kv.put(KV_KEYS.learnerProgress, progress(1, { waitSecondsLastUpdate: 5, workers: 1 }));
    const up = await eventually("scaled to 3", async () => {
      const j = await getJob(h.clients, "auto");
      return j.spec.rollout.replicas === 3 && j.status?.autoscaler?.decision ? j : undefined;
    });
    assert.equal(up.status?.autoscaler?.decision?.action, "up");
    assert.match(up.status?.autoscaler?.decision?.reason ?? "", /waited 5\.00 s/);
    assert.equal(up.status?.autoscaler?.signals?.waitSecondsLastUpdate, 5);
    await eventually("3 rollout pods", async () => {
      const n = await rolloutNames("auto");
      return n.length === 3 ? n : undefined;
    });
    assert.ok((await eventually("ScaledUp event", async () => (await events("auto")).find((e) => e.startsWith("ScaledUp")))).includes("1 → 3"));

    // Still starved next update: up by 2 would pass maxReplicas 4, so 4.
    await kv.put(KV_KEYS.learnerProgress, progress(2, { waitSecondsLastUpdate: 5, workers: 3 }));
    await eventually("scaled to 4", async () => ((await getJob(h.clients, "auto")).spec.rollout.replicas === 4 ? true : undefined));

    // Flooded: 40 episodes waiting > 2 × 8 → down by 2; the highest-indexed pods go.
    await kv.put(KV_KEYS.learnerProgress, progress(3, { backlog: 40, workers: 4 }));
    const down = await eventually("scaled to 2", async () => {
      const j = await getJob(h.clients, "auto");
      return j.spec.rollout.replicas === 2 ? j : undefined;
    });
    assert.equal(down.status?.autoscaler?.decision?.action, "down");
    const left = await eventually("rollout-2 and rollout-3 deleted", async () => {
      const pods = (await jobPods(h.clients, "auto")).filter((p) => p.metadata?.labels?.["steppo.dev/role"] === "rollout" && !p.metadata?.deletionTimestamp);
      return pods.length === 2 ? names(pods) : undefined;
    });
    assert.deepEqual(left, ["auto-rollout-0", "auto-rollout-1"]);
    assert.ok(await eventually("ScaledDown event", async () => (await events("auto")).find((e) => e.startsWith("ScaledDown"))));

    // The same signals again (no new update) change nothing. The positive signal that the operator read
    // this very record: its success rate (one plan computes status and the autoscaler's decision) in status.
    const decided = (await getJob(h.clients, "auto")).status?.autoscaler?.decision;
    await kv.put(KV_KEYS.learnerProgress, progress(3, { backlog: 40, workers: 2 }, { testSuccess: 0.375 }));
    const again = await eventually("the repeated record in status (successRate 0.375)", async () => {
      const j = await getJob(h.clients, "auto");
      return j.status?.successRate === 0.375 ? j : undefined;
    });
    assert.equal(again.spec.rollout.replicas, 2);
    assert.deepEqual(again.status?.autoscaler?.decision, decided, "no new decision on the same update");
  });
});
