// Nothing left behind, against a REAL kube-apiserver and a REAL nats-server: a deleted StepPOJob keeps its
// finalizer until its pods are gone and its NATS streams and buckets (created here by the project's own
// classes, as the learner and workers would) are deleted; an operator restarted mid-deletion finishes it;
// a NATS server that is down delays the deletion with a CleanupBlocked condition and a Warning Event, and
// the deletion completes once NATS is back.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { NatsTrajectoryConsumer } from "../../runtime/nats/trajectory-consumer.ts";
import { connectNats } from "../../runtime/nats/connection.ts";
import { natsJobRef } from "../../core/nats-names.ts";
import { NatsWeightStore } from "../../runtime/nats/weights.ts";
import { FINALIZER } from "../../operator/finalizer.ts";
import { jobStreams } from "../../operator/nats-cleanup.ts";
import { type RunningOperator, startOperator } from "../../operator/operator.ts";
import { NatsServer } from "../support/nats-server.ts";
import { createJob, deleteJob, eventually, getJob, type Harness, jobGone, jobPods, startHarness } from "../support/operator-harness.ts";

let h: Harness;
let nats: NatsServer;
let nc: NatsConnection;
let op: RunningOperator | undefined;
const quiet = (m: string) => {
  if (process.env.DBG) console.error(m);
};

const start = () => startOperator({ clients: h.clients, leaderElection: false, defaults: { image: "steppo:test", natsUrl: nats.url }, log: quiet });

/** What the learner and a worker create on NATS for a job: both streams, the KV bucket, the object store. */
async function createNatsResources(name: string): Promise<string[]> {
  const job = natsJobRef({ name, namespace: "default" });
  const bus = await NatsTrajectoryConsumer.open(nc, { job, log: quiet });
  await bus.close();
  await NatsWeightStore.open(nc, { job, log: quiet });
  return jobStreams(job);
}

async function streamNames(): Promise<string[]> {
  const jsm = await jetstreamManager(nc);
  return (await jsm.streams.names().next()).sort();
}

describe("operator finalizer: NATS cleanup on a real kube-apiserver and nats-server", { timeout: 120_000 }, () => {
  before(async () => {
    [h, nats] = await Promise.all([startHarness(), NatsServer.start()]);
    nc = await connectNats({ servers: nats.url, name: "test-learner", log: quiet });
    op = await start();
  });
  after(async () => {
    await op?.stop();
    await nc?.close();
    await nats?.dispose();
    await h?.stop();
  });

  test("delete → pods, then streams and buckets gone, then the object; a restart mid-deletion finishes it", async () => {
    await createJob(h.clients, "clean", { rollout: { replicas: 1 } });
    await eventually("2 pods", async () => ((await jobPods(h.clients, "clean")).length === 2 ? true : undefined));
    assert.deepEqual((await getJob(h.clients, "clean")).metadata.finalizers, [FINALIZER]);
    const streams = await createNatsResources("clean");
    assert.deepEqual(
      (await streamNames()).filter((s) => streams.includes(s)),
      [...streams].sort(),
    );

    // The operator is down when the job is deleted: the finalizer holds it, with everything it made.
    await op?.stop();
    op = undefined;
    await deleteJob(h.clients, "clean");
    const held = await getJob(h.clients, "clean");
    assert.ok(held.metadata.deletionTimestamp, "deletion requested");
    assert.deepEqual(held.metadata.finalizers, [FINALIZER]);
    assert.equal((await jobPods(h.clients, "clean")).length, 2);

    // A fresh operator reads the state from the object and finishes the deletion.
    op = await start();
    await jobGone(h.clients, "clean");
    assert.deepEqual(await jobPods(h.clients, "clean"), []);
    const left = (await streamNames()).filter((s) => streams.includes(s));
    assert.deepEqual(left, [], `streams left behind: ${left.join(", ")}`);
  });

  test("NATS down → CleanupBlocked and a Warning Event, the job waits; NATS back → deletion completes", async () => {
    await createJob(h.clients, "nonats", { rollout: { replicas: 1 } });
    await eventually("2 pods", async () => ((await jobPods(h.clients, "nonats")).length === 2 ? true : undefined));
    const streams = await createNatsResources("nonats");
    await nats.stop();
    await deleteJob(h.clients, "nonats");
    const cond = await eventually(
      "CleanupBlocked=True",
      async () => (await getJob(h.clients, "nonats")).status?.conditions?.find((c) => c.type === "CleanupBlocked" && c.status === "True"),
      30_000,
    );
    assert.equal(cond.reason, "NatsUnavailable");
    assert.match(cond.message ?? "", /steppo\.dev\/skip-nats-cleanup=true/);
    const ev = await h.clients.core.listNamespacedEvent({ namespace: "default", fieldSelector: "involvedObject.name=nonats" });
    assert.ok(ev.items.some((e) => e.reason === "NatsCleanupFailed" && e.type === "Warning"));
    assert.deepEqual(await jobPods(h.clients, "nonats"), [], "the pods went first");
    assert.ok((await getJob(h.clients, "nonats")).metadata.finalizers?.includes(FINALIZER), "the job waits for NATS");

    await nats.restart();
    await jobGone(h.clients, "nonats", 60_000);
    const left = (await streamNames()).filter((s) => streams.includes(s));
    assert.deepEqual(left, [], `streams left behind: ${left.join(", ")}`);
  });
});
