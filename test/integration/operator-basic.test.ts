// The operator against a REAL kube-apiserver (test/cluster): children appear with owner references and the
// right specs, pod phases (patched in place of a kubelet) drive the conditions, scale and suspend work,
// and a restarted operator creates no duplicates.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { learnerPodName, rolloutPodName } from "../../crds/names.ts";
import { type RunningOperator, startOperator } from "../../operator/operator.ts";
import { notYet } from "../support/poll.ts";
import { createJob, eventually, getJob, type Harness, jobPods, names, patchJobSpec, setPodPhase, startHarness } from "../support/operator-harness.ts";

const QUICKSTART = fileURLToPath(new URL("../../examples/quickstart.yaml", import.meta.url));

let h: Harness;
let op: RunningOperator;
const quiet = () => {};

describe("operator on a real kube-apiserver", () => {
  before(async () => {
    h = await startHarness();
    op = await startOperator({ clients: h.clients, leaderElection: false, log: quiet });
  });
  after(async () => {
    await op?.stop();
    await h?.stop();
  });

  test("create → learner, rollout pods, service, config map and PVC with owner refs and labels", async () => {
    await createJob(h.clients, "basic", { rollout: { replicas: 2 }, learner: { resources: { limits: { "nvidia.com/gpu": 1 } } } });
    const job = await getJob(h.clients, "basic");
    const pods = await eventually("3 pods", async () => {
      const p = await jobPods(h.clients, "basic");
      return p.length === 3 ? p : undefined;
    });
    assert.deepEqual(names(pods), [learnerPodName("basic", 0), rolloutPodName("basic", 0), rolloutPodName("basic", 1)]);
    const learner = pods[0];
    assert.equal(learner.metadata?.labels?.["steppo.dev/role"], "learner");
    assert.equal(learner.metadata?.labels?.["steppo.dev/job"], "basic");
    assert.equal(learner.spec?.containers[0].resources?.limits?.["nvidia.com/gpu"], "1");
    assert.ok(learner.spec?.volumes?.some((v) => v.persistentVolumeClaim?.claimName === "basic-checkpoints"));
    assert.ok(learner.spec?.containers[0].env?.some((e) => e.name === "STEPPO_NATS_URL"));
    for (const p of pods) {
      const ref = p.metadata?.ownerReferences?.[0];
      assert.equal(ref?.uid, job.metadata.uid);
      assert.equal(ref?.controller, true);
    }
    const ns = "default";
    const svc = await h.clients.core.readNamespacedService({ namespace: ns, name: "basic-learner" });
    const cm = await h.clients.core.readNamespacedConfigMap({ namespace: ns, name: "basic-spec" });
    const pvc = await h.clients.core.readNamespacedPersistentVolumeClaim({ namespace: ns, name: "basic-checkpoints" });
    for (const o of [svc, cm, pvc]) assert.equal(o.metadata?.ownerReferences?.[0]?.uid, job.metadata.uid);
    assert.match(cm.data?.["job.yaml"] ?? "", /replicas: 2/);
    const st = await eventually("status Created", async () => {
      const s = (await getJob(h.clients, "basic")).status;
      return s?.phase === "Created" ? s : undefined;
    });
    assert.deepEqual(st.rollout, { ready: 0, desired: 2 });
    assert.equal(st.selector, "steppo.dev/job=basic,steppo.dev/role=rollout");
  });

  test("pod phases drive the conditions: Running, then Succeeded", async () => {
    for (const p of ["basic-learner-0", "basic-rollout-0", "basic-rollout-1"]) await setPodPhase(h.clients, p, "Running");
    const st = await eventually("Running, 2 ready", async () => {
      const s = (await getJob(h.clients, "basic")).status;
      return s?.phase === "Running" && s.rollout?.ready === 2 ? s : undefined;
    });
    assert.ok(st.startTime);
    const spj = await h.cluster.kubectl(["get", "spj", "basic", "--no-headers"]);
    assert.match(spj.stdout, /basic\s+Running/);
    await setPodPhase(h.clients, "basic-learner-0", "Succeeded");
    const done = await eventually("Succeeded", async () => {
      const s = (await getJob(h.clients, "basic")).status;
      return s?.phase === "Succeeded" ? s : undefined;
    });
    assert.ok(done.completionTime);
    // cleanPodPolicy Running (default): the still-running rollout pods go, the finished learner stays.
    await eventually("rollout pods cleaned", async () => {
      const n = names((await jobPods(h.clients, "basic")).filter((p) => !p.metadata?.deletionTimestamp));
      return n.length === 1 && n[0] === "basic-learner-0" ? n : undefined;
    });
    const events = await h.clients.core.listNamespacedEvent({ namespace: "default", fieldSelector: "involvedObject.name=basic" });
    assert.ok(
      events.items.some((e) => e.reason === "LearnerSucceeded"),
      "an Event records the transition",
    );
  });

  test("the scale subresource changes the number of rollout pods", async () => {
    await createJob(h.clients, "scaled", { rollout: { replicas: 1, maxReplicas: 5 } });
    await eventually("2 pods", async () => ((await jobPods(h.clients, "scaled")).length === 2 ? true : undefined));
    const r = await h.cluster.kubectl(["scale", "spj/scaled", "--replicas=3"]);
    assert.equal(r.code, 0, r.stderr);
    await eventually("4 pods", async () => ((await jobPods(h.clients, "scaled")).length === 4 ? true : undefined));
    await h.cluster.kubectl(["scale", "spj/scaled", "--replicas=1"]);
    const left = await eventually("scaled down", async () => {
      const p = (await jobPods(h.clients, "scaled")).filter((x) => !x.metadata?.deletionTimestamp);
      return p.length === 2 ? p : undefined;
    });
    assert.deepEqual(names(left), ["scaled-learner-0", "scaled-rollout-0"]);
    const st = await eventually("desired 1", async () => {
      const s = (await getJob(h.clients, "scaled")).status;
      return s?.rollout?.desired === 1 ? s : undefined;
    });
    assert.equal(st.rollout?.desired, 1);
  });

  test("suspend deletes the pods and keeps the PVC; resume recreates them", async () => {
    await createJob(h.clients, "susp", { rollout: { replicas: 1 } });
    await eventually("2 pods", async () => ((await jobPods(h.clients, "susp")).length === 2 ? true : undefined));
    await patchJobSpec(h.clients, "susp", "/spec/runPolicy/suspend", true);
    await eventually("pods gone", async () => ((await jobPods(h.clients, "susp")).length === 0 ? true : undefined));
    const st = await eventually("Suspended", async () => {
      const s = (await getJob(h.clients, "susp")).status;
      return s?.phase === "Suspended" ? s : undefined;
    });
    assert.equal(st.rollout?.desired, 0);
    await h.clients.core.readNamespacedPersistentVolumeClaim({ namespace: "default", name: "susp-checkpoints" });
    await patchJobSpec(h.clients, "susp", "/spec/runPolicy/suspend", false);
    await eventually("pods back", async () => ((await jobPods(h.clients, "susp")).length === 2 ? true : undefined));
    const resumed = await eventually("not suspended", async () => {
      const s = (await getJob(h.clients, "susp")).status;
      return s?.phase !== "Suspended" ? s : undefined;
    });
    assert.equal(resumed.conditions?.find((c) => c.type === "Suspended")?.status, "False");
  });

  test("an operator restart creates no duplicates", async () => {
    await op.stop();
    await createJob(h.clients, "restart", { rollout: { replicas: 2 } });
    op = await startOperator({ clients: h.clients, leaderElection: false, log: quiet });
    await eventually("3 pods", async () => ((await jobPods(h.clients, "restart")).length === 3 ? true : undefined));
    await op.stop();
    op = await startOperator({ clients: h.clients, leaderElection: false, log: quiet });
    // The positive signal: the second operator has reconciled every job of its initial list (the phase
    // "Created" says nothing here: the first operator already wrote it).
    const second = op;
    await eventually("the second operator's reconciles of every job in its cache", async () => {
      const m = second.metrics;
      const jobs = [...m.jobsByPhase().values()].reduce((a, b) => a + b, 0);
      const done = (m.reconciles.get("success") ?? 0) + (m.reconciles.get("requeue") ?? 0);
      return jobs > 0 && done >= jobs && m.queueDepth() === 0 ? true : notYet({ jobs, reconciles: Object.fromEntries(m.reconciles), queue: m.queueDepth() });
    });
    assert.equal((await jobPods(h.clients, "restart")).length, 3);
    const created = op.metrics.childrenCreated;
    assert.equal(created, 0, "the second operator found everything in its cache and created nothing");
  });

  test("kubectl apply -f examples/quickstart.yaml, then kubectl get spj", async () => {
    const r = await h.cluster.kubectl(["apply", "-f", QUICKSTART]);
    assert.equal(r.code, 0, r.stderr);
    await eventually("quickstart pods", async () => ((await jobPods(h.clients, "quickstart")).length === 2 ? true : undefined));
    const get = await eventually("quickstart Created", async () => {
      const g = await h.cluster.kubectl(["get", "spj", "quickstart", "--no-headers"]);
      return /quickstart\s+Created/.test(g.stdout) ? g.stdout : undefined;
    });
    assert.match(get, /quickstart\s+Created/);
  });
});
