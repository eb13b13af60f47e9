// The operator's progress watch against a REAL nats-server (no Kubernetes): a job reads only its own
// bucket, whatever other namespace or cluster runs a job of the same name on the same server, and a
// malformed record is refused (kept for an Event) while the last valid one stays.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { NatsConnection } from "@nats-io/transport-node";
import { connectNats } from "../../runtime/nats/connection.ts";
import { KV_KEYS, type NatsJobRef } from "../../core/nats-names.ts";
import type { LearnerProgress } from "../../runtime/nats/runtime-state.ts";
import { JobStateKV } from "../../runtime/nats/weights.ts";
import { ProgressWatcher } from "../../operator/progress-watch.ts";
import { NatsServer } from "../support/nats-server.ts";

let nats: NatsServer;
let nc: NatsConnection;

function progress(update: number): LearnerProgress {
  return {
    phase: "training",
    update,
    updates: 50,
    envSteps: update * 100,
    trainSuccess: 0.25,
    testSuccess: 0.5,
    lastCheckpoint: null,
    demand: { waitSecondsLastUpdate: 0, waitSecondsPerUpdate: 0, backlog: 0, staleDrops: 0, workers: 1 },
    trajectories: { published: 0, consumed: 0, stale: 0, deadLettered: 0, duplicates: 0, inFlight: 0 },
    updatedAt: new Date().toISOString(),
  };
}

/**
 * A watcher that records, per key, the update number it held after each change, with a way to wait for
 * the n-th change of a key. `watch` starts watching a key (as the reconciler's first observe does).
 */
function recordingWatcher() {
  const refs = new Map<string, NatsJobRef>();
  const seen = new Map<string, (number | undefined)[]>();
  const waiters: { key: string; n: number; resolve: () => void }[] = [];
  const watcher: ProgressWatcher = new ProgressWatcher({
    log: () => {},
    connect: (url) => connectNats({ servers: url, name: "test-operator", log: () => {} }),
    onChange: (key) => {
      const list = seen.get(key) ?? [];
      list.push(watcher.latest(key, refs.get(key)!, nats.url)?.update);
      seen.set(key, list);
      for (const w of waiters.filter((x) => x.key === key && list.length >= x.n)) w.resolve();
    },
  });
  const watch = (key: string, ref: NatsJobRef) => {
    refs.set(key, ref);
    return watcher.latest(key, ref, nats.url);
  };
  const changed = (key: string, n: number) =>
    new Promise<void>((resolve) => {
      if ((seen.get(key)?.length ?? 0) >= n) resolve();
      else waiters.push({ key, n, resolve });
    });
  return { watcher, watch, seen, changed };
}

async function put(job: NatsJobRef, value: unknown): Promise<void> {
  await (await JobStateKV.open(nc, { job })).put(KV_KEYS.learnerProgress, value);
}

describe("operator progress watch on real NATS", { timeout: 60_000 }, () => {
  before(async () => {
    nats = await NatsServer.start();
    nc = await connectNats({ servers: nats.url, name: "test-learners", log: () => {} });
  });
  after(async () => {
    await nc?.close();
    await nats?.dispose();
  });

  test("ns-b's progress never reaches ns-a's job of the same name, nor another cluster's", async () => {
    const { watcher, watch, seen, changed } = recordingWatcher();
    try {
      const a = { namespace: "ns-a", name: "quickstart" };
      const b = { namespace: "ns-b", name: "quickstart" };
      const otherCluster = { cluster: "west", namespace: "ns-a", name: "quickstart" };
      assert.equal(watch("ns-a/quickstart", a), undefined);
      // ns-a's first record proves its watch is live; then the same-named jobs write, then ns-a again. A
      // KV watch delivers in order: had ns-a shared a bucket with either, it would see 99 or 55 before 7.
      await put(a, progress(1));
      await changed("ns-a/quickstart", 1);
      await put(b, progress(99));
      await put(otherCluster, progress(55));
      await put(a, progress(7));
      await changed("ns-a/quickstart", 2);
      assert.deepEqual(seen.get("ns-a/quickstart"), [1, 7], "ns-a saw its own records only");
      // And each same-named job sees its own record only.
      watch("ns-b/quickstart", b);
      watch("west:ns-a/quickstart", otherCluster);
      await Promise.all([changed("ns-b/quickstart", 1), changed("west:ns-a/quickstart", 1)]);
      assert.deepEqual(seen.get("ns-b/quickstart"), [99]);
      assert.deepEqual(seen.get("west:ns-a/quickstart"), [55]);
      assert.deepEqual(seen.get("ns-a/quickstart"), [1, 7]);
    } finally {
      await watcher.stop();
    }
  });

  test("a malformed record is refused, reported once, and the last valid one stays", async () => {
    const { watcher, watch, changed } = recordingWatcher();
    try {
      const job = { namespace: "poison", name: "quickstart" };
      const key = "poison/quickstart";
      watch(key, job);
      await put(job, progress(3));
      await changed(key, 1);
      assert.equal(watcher.latest(key, job, nats.url)?.update, 3);

      await put(job, { ...progress(4), update: "x" });
      await changed(key, 2);
      assert.equal(watcher.latest(key, job, nats.url)?.update, 3, "the bad record is dropped");
      const rejected = watcher.takeRejected(key);
      assert.equal(rejected.length, 1);
      assert.match(rejected[0].problem, /field "update" must be a non-negative integer/);
      assert.ok(rejected[0].revision > 0);
      assert.deepEqual(watcher.takeRejected(key), [], "each refusal is taken once");

      await put(job, { ...progress(5), testSuccess: {} });
      await put(job, progress(6));
      await changed(key, 4);
      assert.equal(watcher.latest(key, job, nats.url)?.update, 6, "a later valid record is used again");
      assert.match(watcher.takeRejected(key)[0]?.problem ?? "", /"testSuccess"/);
    } finally {
      await watcher.stop();
    }
  });
});
