// Pod templates and Kueue against a REAL kube-apiserver: the CRD's CEL refuses templates that would break the
// operator's pod; an accepted template (and the job's kueue.x-k8s.io/queue-name label) reaches the pods, beside
// the model volume the operator mounts (spec.model.volume); and spec.runPolicy.suspend toggled from outside, as
// Kueue does when it admits or preempts a workload, deletes the pods and recreates them.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { KUEUE_QUEUE_LABEL } from "../../crds/pod-template.ts";
import { type RunningOperator, startOperator } from "../../operator/operator.ts";
import { createJob, eventually, getJob, type Harness, jobPods, names, patchJobSpec, startHarness } from "../support/operator-harness.ts";

let h: Harness;
let op: RunningOperator;

async function refusal(name: string, spec: Record<string, unknown>): Promise<string> {
  try {
    await createJob(h.clients, name, spec);
  } catch (err) {
    assert.equal((err as { code?: number }).code, 422, String(err));
    return String((err as { body?: unknown }).body ?? err);
  }
  assert.fail(`${name}: the API server accepted the job`);
}

describe("pod templates and Kueue suspend on a real kube-apiserver", () => {
  before(async () => {
    h = await startHarness();
    op = await startOperator({ clients: h.clients, leaderElection: false, watchProgress: false, log: () => {} });
  });
  after(async () => {
    await op?.stop();
    await h?.stop();
  });

  test("CEL refuses templates that would override the operator's env, volumes, mounts, main container or labels", async () => {
    const learner = (spec: Record<string, unknown>, metadata?: Record<string, unknown>) => ({
      learner: { template: { spec, ...(metadata ? { metadata } : {}) } },
    });
    assert.match(await refusal("bad-env", learner({ env: [{ name: "STEPPO_JOB_FILE", value: "/x" }] })), /env vars named STEPPO_\*/);
    assert.match(await refusal("bad-vol", learner({ volumes: [{ name: "job", emptyDir: {} }] })), /volume names job, tmp, nats-creds, checkpoints/);
    assert.match(await refusal("bad-mount", learner({ volumeMounts: [{ name: "x", mountPath: "/etc/steppo/job" }] })), /mount paths/);
    assert.match(
      await refusal("bad-main", { rollout: { template: { spec: { containers: [{ name: "rollout", image: "x", command: ["sh"] }] } } } }),
      /container names learner, rollout/,
    );
    assert.match(await refusal("bad-label", learner({}, { labels: { "steppo.dev/job": "other" } })), /labels steppo\.dev\/\*/);
    const model = { source: "/models/tiny", volume: { persistentVolumeClaim: { claimName: "models" } } };
    assert.match(
      await refusal("bad-model-vol", { model, ...learner({ volumes: [{ name: "model", emptyDir: {} }] }) }),
      /the volume name model is the operator's/,
    );
  });

  test("a template and the Kueue queue label reach the pods; the operator's fields stay", async () => {
    await createJob(
      h.clients,
      "tmpl",
      {
        model: { source: "/models/tiny", volume: { persistentVolumeClaim: { claimName: "models" }, subPath: "tiny" } },
        rollout: {
          replicas: 1,
          template: { metadata: { annotations: { "example.com/owner": "rl" } }, spec: { containers: [{ name: "sidecar", image: "busybox" }] } },
        },
        learner: {
          template: {
            metadata: { labels: { team: "rl" } },
            spec: {
              env: [{ name: "HF_HOME", value: "/cache" }],
              volumes: [{ name: "cache", emptyDir: {} }],
              volumeMounts: [{ name: "cache", mountPath: "/cache" }],
              imagePullSecrets: [{ name: "regcred" }],
              serviceAccountName: "trainer",
              priorityClassName: "",
              tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
            },
          },
        },
      },
      { labels: { [KUEUE_QUEUE_LABEL]: "team-a" } },
    );
    const pods = await eventually("2 pods", async () => {
      const p = await jobPods(h.clients, "tmpl");
      return p.length === 2 ? p : undefined;
    });
    const [learner, rollout] = pods;
    assert.equal(learner.metadata?.labels?.team, "rl");
    for (const p of pods) assert.equal(p.metadata?.labels?.[KUEUE_QUEUE_LABEL], "team-a");
    const main = learner.spec!.containers[0];
    assert.deepEqual(main.command, ["steppo", "learner"]);
    assert.ok(main.env?.some((e) => e.name === "STEPPO_JOB_FILE"));
    assert.ok(main.env?.some((e) => e.name === "HF_HOME" && e.value === "/cache"));
    assert.ok(main.volumeMounts?.some((m) => m.name === "cache" && m.mountPath === "/cache"));
    assert.ok(learner.spec?.volumes?.some((v) => v.name === "cache" && v.emptyDir));
    assert.deepEqual(
      learner.spec?.imagePullSecrets?.map((s) => s.name),
      ["regcred"],
    );
    assert.equal(learner.spec?.serviceAccountName, "trainer");
    assert.equal(learner.spec?.tolerations?.[0]?.key, "nvidia.com/gpu");
    assert.equal(rollout.metadata?.annotations?.["example.com/owner"], "rl");
    assert.deepEqual(
      rollout.spec?.containers.map((c) => c.name),
      ["rollout", "sidecar"],
    );
    // spec.model.volume: the same read-only mount in both main containers, as the API server stored the pods
    // (client-node returns class instances: spread into plain objects to compare).
    for (const p of pods) {
      const mounts = p.spec?.containers[0].volumeMounts?.filter((m) => m.name === "model").map((m) => ({ ...m }));
      assert.deepEqual(mounts, [{ name: "model", mountPath: "/models/tiny", readOnly: true, subPath: "tiny" }], p.metadata?.name);
      const claim = p.spec?.volumes?.find((v) => v.name === "model")?.persistentVolumeClaim;
      assert.deepEqual({ ...claim }, { claimName: "models", readOnly: true }, p.metadata?.name);
    }
  });

  test("suspend as Kueue drives it: created suspended → no pods; unsuspended → pods; suspended again → deleted; resumed → recreated", async () => {
    await createJob(h.clients, "queued", { rollout: { replicas: 2 }, runPolicy: { suspend: true } }, { labels: { [KUEUE_QUEUE_LABEL]: "team-a" } });
    await eventually("Suspended", async () => ((await getJob(h.clients, "queued")).status?.phase === "Suspended" ? true : undefined));
    assert.deepEqual(await jobPods(h.clients, "queued"), [], "a suspended job has no pods");
    const live = async () => (await jobPods(h.clients, "queued")).filter((p) => !p.metadata?.deletionTimestamp);
    const three = async () => {
      const p = await live();
      return p.length === 3 ? p : undefined;
    };
    // Kueue admits the workload: it sets suspend false.
    await patchJobSpec(h.clients, "queued", "/spec/runPolicy/suspend", false);
    const first = await eventually("pods after admission", three);
    assert.deepEqual(names(first), ["queued-learner-0", "queued-rollout-0", "queued-rollout-1"]);
    for (const p of first) assert.equal(p.metadata?.labels?.[KUEUE_QUEUE_LABEL], "team-a");
    // Kueue preempts it: suspend true again, every pod goes.
    await patchJobSpec(h.clients, "queued", "/spec/runPolicy/suspend", true);
    await eventually("pods deleted on preemption", async () => ((await live()).length === 0 ? true : undefined));
    // The status follows the deletions (the pass deletes first, then writes status; a write computed from a
    // stale copy of the job is refused and decided again), so it is waited for, not read at once.
    await eventually("Suspended again", async () => ((await getJob(h.clients, "queued")).status?.phase === "Suspended" ? true : undefined));
    // Re-admitted: new pods under the same names.
    await patchJobSpec(h.clients, "queued", "/spec/runPolicy/suspend", false);
    const again = await eventually("pods recreated", three);
    assert.deepEqual(names(again), names(first));
    assert.ok(
      again.every((p, i) => p.metadata?.uid !== first[i].metadata?.uid),
      "new pods",
    );
  });
});
