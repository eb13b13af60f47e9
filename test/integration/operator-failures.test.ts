// Failure handling against a REAL kube-apiserver: a failed learner is recreated (next incarnation) until
// backoffLimit, then the job fails; a failed rollout pod is replaced under the same name; the active
// deadline fails a job; ttlSecondsAfterFinished deletes it; two replicas elect one leader.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { SKIP_NATS_CLEANUP_ANNOTATION } from "../../operator/finalizer.ts";
import { type RunningOperator, startOperator } from "../../operator/operator.ts";
import { createJob, eventually, getJob, type Harness, jobPods, names, setPodPhase, startHarness } from "../support/operator-harness.ts";

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
    await new Promise((r) => setTimeout(r, 1000));
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
