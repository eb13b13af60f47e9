// The informers against a REAL kube-apiserver whose watches end often (--min-request-timeout=1) and go
// straight to etcd (--watch-cache=false), so that compacting etcd makes a re-watch from the informer's old
// resourceVersion answer 410 Gone: client-node 2.x must re-list. And a control-plane restart: the watches
// fail, the informers restart with backoff, and the operator goes on reconciling.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { CRD_NAME, CRD_PATH } from "../../crds/generate.ts";
import { type InformerSet, makeInformers, startInformers, stopInformers } from "../../operator/informers.ts";
import { addFinalizer, type Clients, loadKubeConfig, makeClients, removeFinalizer, writeStatus } from "../../operator/kube.ts";
import { type RunningOperator, startOperator } from "../../operator/operator.ts";
import { startTestCluster, type TestCluster } from "../cluster/cluster.ts";
import { createJob, deleteJob, eventually, getJob, jobPods } from "../support/operator-harness.ts";

let cluster: TestCluster;
let clients: Clients;

async function etcd(path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${cluster.etcdUrl}${path}`, { method: "POST", body: JSON.stringify(body) });
  const text = await res.text();
  assert.equal(res.status, 200, `etcd ${path}: ${res.status} ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

/** Compacts etcd's history up to its current revision (what kube-apiserver does every 5 min). */
async function compactEtcd(): Promise<number> {
  const range = await etcd("/v3/kv/range", { key: Buffer.from("/").toString("base64") });
  const revision = Number((range.header as { revision: string }).revision);
  await etcd("/v3/kv/compaction", { revision: String(revision), physical: true });
  return revision;
}

describe("informers: 410 Gone re-list and reconnect after a control-plane restart", () => {
  before(async () => {
    cluster = await startTestCluster({ apiserverArgs: ["--watch-cache=false", "--min-request-timeout=1"] });
    assert.equal((await cluster.kubectl(["apply", "-f", CRD_PATH])).code, 0);
    assert.equal((await cluster.kubectl(["wait", "--for=condition=Established", "--timeout=60s", `crd/${CRD_NAME}`])).code, 0);
    clients = makeClients(loadKubeConfig(cluster.kubeconfigPath));
  });
  after(async () => {
    await cluster?.stop();
  });

  test("a status computed from an older copy of the job is refused (409), never written over a newer one", async () => {
    // No operator runs yet: this test alone writes the job's status.
    await createJob(clients, "stale", { rollout: { replicas: 1 } });
    const first = (await getJob(clients, "stale")).metadata;
    assert.equal(await writeStatus(clients, "default", "stale", first, { phase: "Restarting", restarts: 1 }), true);
    // The same (now outdated) copy again, as a pass working from a cache that has not seen the first write.
    assert.equal(await writeStatus(clients, "default", "stale", first, { phase: "Running", restarts: 0 }), false);
    const now = await getJob(clients, "stale");
    assert.deepEqual([now.status?.phase, now.status?.restarts], ["Restarting", 1]);
    assert.equal(await writeStatus(clients, "default", "stale", now.metadata, { phase: "Running", restarts: 1 }), true);
    assert.equal((await getJob(clients, "stale")).status?.phase, "Running");
    await deleteJob(clients, "stale");
  });

  test("a finalizer added to the cached copy gives the version it made: that copy's status is written against it; an outdated copy's finalizer is refused", async () => {
    await createJob(clients, "fin", { rollout: { replicas: 1 } });
    const seen = (await getJob(clients, "fin")).metadata;
    const made = await addFinalizer(clients, "default", "fin", seen, "steppo.dev/test");
    assert.ok(made && made !== seen.resourceVersion, `a new resourceVersion, got ${made}`);
    assert.deepEqual((await getJob(clients, "fin")).metadata.finalizers, ["steppo.dev/test"]);
    // A status computed from `seen` is refused against seen's own version, written against the patch's.
    assert.equal(await writeStatus(clients, "default", "fin", seen, { phase: "Created", restarts: 0 }), false);
    assert.equal(await writeStatus(clients, "default", "fin", { uid: seen.uid, resourceVersion: made }, { phase: "Created", restarts: 0 }), true);
    // The outdated copy (no finalizers) again: refused, so the list the server holds is not overwritten.
    assert.equal(await addFinalizer(clients, "default", "fin", seen, "steppo.dev/other"), undefined);
    assert.deepEqual((await getJob(clients, "fin")).metadata.finalizers, ["steppo.dev/test"]);
    const now = (await getJob(clients, "fin")).metadata;
    await removeFinalizer(clients, "default", "fin", now.finalizers ?? [], "steppo.dev/test");
    await deleteJob(clients, "fin");
  });

  test("a watch resumed from a compacted resourceVersion gets 410 and the informer re-lists", async () => {
    // Count list calls on the real client: the jobs informer lists once at start, then only on 410.
    let lists = 0;
    const custom = new Proxy(clients.custom, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver);
        if (prop === "listClusterCustomObject" && typeof v === "function") {
          return (...args: unknown[]) => {
            lists++;
            return v.apply(target, args);
          };
        }
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const errors: unknown[] = [];
    const set: InformerSet = makeInformers({ ...clients, custom }, { onError: (_w, e) => errors.push(e) });
    await startInformers(set);
    try {
      assert.equal(lists, 1);
      await createJob(clients, "before-compaction", {});
      await eventually("cache has the job", async () => set.jobs.get("before-compaction", "default") ?? undefined);

      // Writes the jobs watch does not see, then compaction past the informer's resourceVersion.
      for (let i = 0; i < 5; i++) {
        await clients.core.createNamespacedConfigMap({ namespace: "default", body: { metadata: { name: `filler-${i}` }, data: { i: String(i) } } });
      }
      await compactEtcd();

      // The server closes the watch within 1–2 s; the re-watch from the old version answers 410.
      await eventually("a re-list after 410", async () => (lists >= 2 ? true : undefined), 45_000);
      assert.deepEqual(errors, [], "410 is handled by client-node itself, not reported as a watch error");

      // The cache is whole and live after the re-list.
      assert.ok(set.jobs.get("before-compaction", "default"));
      await createJob(clients, "after-compaction", {});
      await eventually("cache sees a new job", async () => set.jobs.get("after-compaction", "default") ?? undefined, 20_000);
    } finally {
      await stopInformers(set);
    }
  });

  test("kube-apiserver restart: watches fail, informers reconnect with backoff, reconciling goes on", async () => {
    const op: RunningOperator = await startOperator({ clients, leaderElection: false, watchProgress: false, log: () => {} });
    try {
      await createJob(clients, "pre-restart", {});
      await eventually("children of pre-restart", async () => ((await jobPods(clients, "pre-restart")).length === 2 ? true : undefined));
      const errorsBefore = op.metrics.watchErrors;

      await cluster.restartApiserver({ downMs: 2000 });
      await eventually("watch errors counted", async () => (op.metrics.watchErrors > errorsBefore ? true : undefined), 20_000);

      await createJob(clients, "post-restart", { rollout: { replicas: 2 } });
      const pods = await eventually(
        "children of post-restart",
        async () => {
          const p = await jobPods(clients, "post-restart");
          return p.length === 3 ? p : undefined;
        },
        60_000,
      );
      assert.deepEqual(pods.map((p) => p.metadata?.name).sort(), ["post-restart-learner-0", "post-restart-rollout-0", "post-restart-rollout-1"]);
    } finally {
      await op.stop();
    }
  });
});
