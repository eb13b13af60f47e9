// Failure handling against a REAL kube-apiserver: a failed learner is recreated (next incarnation) until
// backoffLimit, then the job fails; a failed rollout pod is replaced under the same name; the active
// deadline fails a job; ttlSecondsAfterFinished deletes it; two replicas elect one leader.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { SKIP_NATS_CLEANUP_ANNOTATION } from "../../operator/finalizer.ts";
import { type RunningOperator, startOperator } from "../../operator/operator.ts";
import { createJob, eventually, getJob, type Harness, jobPods, names, setPodPhase, setPodWaiting, startHarness } from "../support/operator-harness.ts";
import { notYet } from "../support/poll.ts";

let h: Harness;
let op: RunningOperator;
const quiet = () => {};

describe("operator failure handling on a real kube-apiserver", () => {
  before(async () => {
    h = await startHarness();
    op = await startOperator({ clients: h.clients, leaderElection: false, log: quiet });
  });
  after(async () => {
    await op?.stop();
    await h?.stop();
  });

  test("learner failure → recreated; backoff exhausted → Failed", async () => {
    await createJob(h.clients, "flaky", { rollout: { replicas: 1 }, runPolicy: { backoffLimit: 1 } });
    await eventually("learner-0", async () => ((await jobPods(h.clients, "flaky")).length === 2 ? true : undefined));
    await setPodPhase(h.clients, "flaky-learner-0", "Running");
    await setPodPhase(h.clients, "flaky-learner-0", "Failed", { exitCode: 137 });
    const st = await eventually("Restarting", async () => {
      const s = (await getJob(h.clients, "flaky")).status;
      return s?.phase === "Restarting" ? s : undefined;
    });
    assert.equal(st.restarts, 1);
    assert.match(st.conditions?.find((c) => c.type === "Restarting")?.message ?? "", /exit code 137/);
    assert.ok(names(await jobPods(h.clients, "flaky")).includes("flaky-learner-1"));
    await setPodPhase(h.clients, "flaky-learner-1", "Running");
    await eventually("Running again", async () => ((await getJob(h.clients, "flaky")).status?.phase === "Running" ? true : undefined));
    await setPodPhase(h.clients, "flaky-learner-1", "Failed");
    const failed = await eventually("Failed", async () => {
      const s = (await getJob(h.clients, "flaky")).status;
      return s?.phase === "Failed" ? s : undefined;
    });
    assert.equal(failed.conditions?.find((c) => c.type === "Failed")?.reason, "BackoffLimitExceeded");
    assert.ok(!names(await jobPods(h.clients, "flaky")).includes("flaky-learner-2"), "no third incarnation");
    const ev = await h.clients.core.listNamespacedEvent({ namespace: "default", fieldSelector: "involvedObject.name=flaky" });
    assert.ok(ev.items.some((e) => e.reason === "LearnerFailed" && e.type === "Warning"));
    assert.ok(ev.items.some((e) => e.reason === "BackoffLimitExceeded"));
  });

  test("a pod stuck in ImagePullBackOff → PodsHealthy=False with the kubelet's reason, a Warning Event, kubectl get -o wide", async () => {
    await createJob(h.clients, "pullfail", { rollout: { replicas: 1 }, training: { updates: 30 } });
    await eventually("2 pods", async () => ((await jobPods(h.clients, "pullfail")).length === 2 ? true : undefined));
    await setPodWaiting(h.clients, "pullfail-learner-0", "ImagePullBackOff", 'Back-off pulling image "ghcr.io/steppo/nope:1"');
    const cond = await eventually("PodsHealthy=False", async () =>
      (await getJob(h.clients, "pullfail")).status?.conditions?.find((c) => c.type === "PodsHealthy" && c.status === "False"),
    );
    assert.equal(cond.reason, "ImagePullBackOff");
    assert.match(cond.message ?? "", /pod pullfail-learner-0: ImagePullBackOff: container learner: Back-off pulling image "ghcr.io\/steppo\/nope:1"/);
    const ev = await eventually("PodsUnhealthy Event", async () => {
      const l = await h.clients.core.listNamespacedEvent({ namespace: "default", fieldSelector: "involvedObject.name=pullfail" });
      return l.items.find((e) => e.reason === "PodsUnhealthy");
    });
    assert.equal(ev.type, "Warning");
    const wide = await h.cluster.kubectl(["get", "spj", "pullfail", "-o", "wide"]);
    assert.equal(wide.code, 0, wide.stderr);
    const [header, row] = wide.stdout.trim().split("\n");
    assert.match(header, /^NAME\s+PHASE\s+UPDATE\s+SUCCESS\s+LAG\s+READY\s+AGE\s+TRAIN\s+STEPS\/S\s+EPISODES\/S\s+CHECKPOINT\s+RESTARTS\s+PODS$/);
    assert.match(row, /^pullfail\s+Created\s+0\/30\s+.*0\/1\s+.*ImagePullBackOff$/);
    // The kubelet pulls the image after all: the condition clears.
    await setPodPhase(h.clients, "pullfail-learner-0", "Running");
    await eventually("PodsHealthy=True", async () =>
      (await getJob(h.clients, "pullfail")).status?.conditions?.find((c) => c.type === "PodsHealthy" && c.status === "True"),
    );
  });

  test("a failed rollout pod is replaced under the same name", async () => {
    await createJob(h.clients, "rfail", { rollout: { replicas: 1 } });
    const first = await eventually("rollout-0", async () => (await jobPods(h.clients, "rfail")).find((p) => p.metadata?.name === "rfail-rollout-0"));
    await setPodPhase(h.clients, "rfail-rollout-0", "Failed");
    const replaced = await eventually("new rollout-0", async () => {
      const p = (await jobPods(h.clients, "rfail")).find((x) => x.metadata?.name === "rfail-rollout-0");
      return p && p.metadata?.uid !== first.metadata?.uid ? p : undefined;
    });
    assert.equal(replaced.status?.phase ?? "Pending", "Pending");
  });

  test("activeDeadlineSeconds fails the job; ttlSecondsAfterFinished deletes it", async () => {
    await createJob(
      h.clients,
      "deadline",
      {
        rollout: { replicas: 1 },
        runPolicy: { activeDeadlineSeconds: 1, ttlSecondsAfterFinished: 1, cleanPodPolicy: "All" },
      },
      // No NATS server in this suite: the documented escape hatch lets the finalizer go without NATS cleanup.
      { annotations: { [SKIP_NATS_CLEANUP_ANNOTATION]: "true" } },
    );
    const st = await eventually(
      "Failed by deadline",
      async () => {
        const s = (await getJob(h.clients, "deadline")).status;
        return s?.phase === "Failed" ? s : undefined;
      },
      10_000,
    );
    assert.equal(st.conditions?.find((c) => c.type === "Failed")?.reason, "DeadlineExceeded");
    await eventually(
      "job deleted by TTL",
      async () => {
        try {
          await getJob(h.clients, "deadline");
          return undefined;
        } catch {
          return true;
        }
      },
      10_000,
    );
  });

  test("two operator replicas: one leader; the standby takes over when it stops", async () => {
    await op.stop();
    const le = { namespace: "default", leaseDurationMs: 2000, renewDeadlineMs: 1500, retryPeriodMs: 300 };
    const a = await startOperator({ clients: h.clients, identity: "op-a", leaderElection: le, port: 0, log: quiet });
    await eventually("a leads", async () => (a.isLeader() ? true : undefined));
    const b = await startOperator({ clients: h.clients, identity: "op-b", leaderElection: le, port: 0, log: quiet });
    // The positive signal: op-a renewed the lease again and again while op-b campaigned (every 300 ms) for it.
    const renewals = new Set<string>();
    await eventually("op-a renewing the lease 3 times while op-b campaigns", async () => {
      const l = await h.clients.coordination.readNamespacedLease({ namespace: "default", name: "steppo-operator" });
      if (l.spec?.holderIdentity === "op-a" && l.spec.renewTime) renewals.add(new Date(l.spec.renewTime).toISOString());
      return renewals.size >= 3 ? true : notYet({ holder: l.spec?.holderIdentity, renewals: [...renewals] });
    });
    assert.equal(a.isLeader(), true);
    assert.equal(b.isLeader(), false);
    const lease = await h.clients.coordination.readNamespacedLease({ namespace: "default", name: "steppo-operator" });
    assert.equal(lease.spec?.holderIdentity, "op-a");
    const metrics = await (await fetch(`http://127.0.0.1:${a.port}/metrics`)).text();
    assert.match(metrics, /steppo_operator_leader 1/);
    assert.equal((await fetch(`http://127.0.0.1:${b.port}/healthz`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${a.port}/readyz`)).status, 200);
    await createJob(h.clients, "led", { rollout: { replicas: 1 } });
    await eventually("leader reconciles", async () => ((await jobPods(h.clients, "led")).length === 2 ? true : undefined));
    assert.equal(b.metrics.childrenCreated, 0, "the standby does not reconcile");
    await a.stop();
    await eventually("b takes over", async () => (b.isLeader() ? true : undefined), 10_000);
    op = b;
  });
});
