// The end-to-end run, as a user would do it, on a test cluster that really runs pods:
//   real kube-apiserver + etcd (test/cluster), the process-based node agent (test/node-agent) as the one
//   node, a real nats-server, the real helm and kubectl binaries.
//   1. helm install charts/steppo (nats.url → the test's nats-server); the chart's operator Deployment runs
//      as a pod through the node agent (the cluster has no controller manager, so this test does the
//      ReplicaSet controller's one job: it creates the Deployment's pod from its template). The operator
//      authenticates with its pod's service-account token: exactly the chart's RBAC.
//   2. kubectl apply -f <job>: the operator creates the learner and rollout pods; the agent runs them as
//      `node bin/steppo.mjs learner|worker` processes.
//   3. once status.lastCheckpoint exists (and training is not over), SIGKILL the learner's process: the
//      operator creates the next incarnation, which resumes from the checkpoint on the claim.
//   4. kubectl scale spj/<job> --replicas=up, then down: the running worker processes follow.
//   5. kubectl wait --for=condition=Succeeded spj/<job>; kubectl get spj shows it.
// Every process (cluster, nats, agent's pods) is stopped at the end, on failure too.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import yaml from "js-yaml";
import { startTestCluster, type TestCluster } from "../cluster/cluster.ts";
import { DEFAULT_METRICS_PORT } from "../../core/process-config.ts";
import { NodeAgent } from "../node-agent/agent.ts";
import { HOST_PORTS_ANNOTATION } from "../node-agent/pod-runner.ts";
import { NatsServer } from "../support/nats-server.ts";
import { pollUntil } from "../support/poll.ts";
import { type InstalledChart, installChart, startDeploymentPods } from "./chart.ts";

export interface E2EOptions {
  /** The StepPOJob manifest (applied with kubectl as is). */
  jobFile: string;
  /** Rollout replicas mid-run: scaled up to `scaleUp`, then down to `scaleDown`. */
  scaleUp: number;
  scaleDown: number;
  /** kubectl wait --timeout for the job's Succeeded condition, e.g. "900s". */
  waitTimeout: string;
  /** How long to wait for any one intermediate step (pods running, a checkpoint, the resume). */
  stepTimeoutMs?: number;
  /** nvidia.com/gpu the node advertises (default 1: the jobs' learners may ask for one). */
  gpus?: number;
  /** Keep the agent's directory (pod logs, claims) when the run fails (default true). */
  keepOnFailure?: boolean;
  log?: (m: string) => void;
}

export interface E2EResult {
  job: string;
  namespace: string;
  /** Seconds per step, in order. */
  steps: { name: string; seconds: number }[];
  checkpointAtKill: number;
  updateAtKill: number;
  killedPid: number;
  resumedAt: number;
  restarts: number;
  finalUpdate: number;
  getSpj: string;
}

interface JobDoc {
  metadata: { name: string; namespace?: string };
  spec: { training?: { updates?: number }; rollout?: { replicas?: number } };
}

/** The harness's poll, every 500 ms unless told otherwise: the e2e steps take seconds to minutes. */
const waitFor = <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 500) => pollUntil(what, timeoutMs, fn, intervalMs);

export async function runE2E(o: E2EOptions): Promise<E2EResult> {
  const log = o.log ?? ((m: string) => process.stderr.write(`[e2e] ${m}\n`));
  const stepTimeout = o.stepTimeoutMs ?? 180_000;
  const doc = yaml.load(readFileSync(o.jobFile, "utf8")) as JobDoc;
  const job = doc.metadata.name;
  const ns = doc.metadata.namespace ?? "default";
  const totalUpdates = doc.spec.training?.updates;
  const steps: E2EResult["steps"] = [];
  const t0 = Date.now();
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const s = Date.now();
    log(`${name} ...`);
    const v = await fn();
    const seconds = (Date.now() - s) / 1000;
    steps.push({ name, seconds });
    log(`${name}: done in ${seconds.toFixed(1)} s (t=${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    return v;
  };

  let cluster: TestCluster | undefined;
  let nats: NatsServer | undefined;
  let agent: NodeAgent | undefined;
  let chart: InstalledChart | undefined;
  let failed = true;
  try {
    cluster = await step("start kube-apiserver + etcd", () => startTestCluster());
    const c = cluster;
    const kubectl = async (args: string[], timeoutMs = 60_000) => {
      const r = await c.kubectl(args, { timeoutMs });
      if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed (exit ${r.code}): ${r.stderr || r.stdout}`);
      return r.stdout;
    };
    const jsonpath = (what: string, path: string, namespace = ns) => kubectl(["get", what, "-n", namespace, "-o", `jsonpath=${path}`]);
    nats = await step("start nats-server", () => NatsServer.start());
    const natsUrl = nats.url;
    agent = await step("start the node agent", () =>
      NodeAgent.start({ kubeconfig: c.kubeconfigPath, gpus: o.gpus ?? 1, log: (m) => log(`[node-agent] ${m}`) }),
    );
    const a = agent;

    chart = await step("helm install charts/steppo", () => installChart(c, { natsUrl, log }));
    const installed = chart;
    await step("operator pod ready (the chart's Deployment, run by the node agent)", () => startDeploymentPods(c, installed, log));
    await step("the operator authenticates as the chart's ServiceAccount and leads", async () => {
      const opPod = installed.pods[0];
      const spec = JSON.parse(await kubectl(["get", "pod", opPod, "-n", installed.namespace, "-o", "json"])) as {
        spec: { serviceAccountName: string; containers: { args?: string[] }[] };
      };
      const proc = a.processes().find((p) => p.namespace === installed.namespace && p.pod === opPod);
      assert.ok(proc, `${opPod} runs as a process`);
      // Its only credentials: the kubeconfig the agent made from the pod's service-account token.
      const env = readFileSync(`/proc/${proc.pid}/environ`, "utf8").split("\0");
      const kubeconfig = env.find((e) => e.startsWith("KUBECONFIG="))?.slice("KUBECONFIG=".length);
      assert.ok(kubeconfig, "the operator process has the pod's service-account kubeconfig");
      const kc = yaml.load(readFileSync(kubeconfig, "utf8")) as { users: { user: { token: string } }[] };
      const review = await c.kubectl(["create", "-o", "json", "-f", "-"], {
        input: JSON.stringify({ apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token: kc.users[0].user.token } }),
      });
      assert.equal(review.code, 0, review.stderr);
      const user = (JSON.parse(review.stdout) as { status: { user?: { username?: string } } }).status.user?.username;
      assert.equal(user, `system:serviceaccount:${installed.namespace}:${spec.spec.serviceAccountName}`);
      const leaseName = spec.spec.containers[0].args?.find((a) => a.startsWith("--lease-name="))?.slice("--lease-name=".length);
      assert.equal(leaseName, installed.release, "the chart names the Lease after the release");
      const holder = await waitFor(
        "the leader Lease",
        async () => (await jsonpath(`lease/${leaseName}`, "{.spec.holderIdentity}", installed.namespace)) || undefined,
        60_000,
      );
      assert.equal(holder, opPod, "the operator pod holds the leader Lease");
      log(`operator ${opPod}: authenticated as ${user}, leader`);
    });

    await step(`kubectl apply -f ${o.jobFile}`, () => kubectl(["apply", "-f", o.jobFile]));
    const jobPods = (role: string) => a.processes().filter((p) => p.namespace === ns && p.pod.startsWith(`${job}-${role}-`));
    const replicas = doc.spec.rollout?.replicas ?? 1;
    await step(`learner and ${replicas} rollout pod(s) running as processes`, () =>
      waitFor(
        "the learner and rollout processes",
        async () => {
          const phases = await jsonpath("pods", `{range .items[*]}{.metadata.name}={.status.phase} {end}`);
          return jobPods("learner").length === 1 && jobPods("rollout").length === replicas && /learner-0=Running/.test(phases) ? true : undefined;
        },
        stepTimeout,
      ),
    );

    // ---- a checkpoint exists and training is not over: SIGKILL the learner's process
    const progress = async () => {
      const s = JSON.parse((await kubectl(["get", `spj/${job}`, "-n", ns, "-o", "json"])) || "{}") as {
        status?: { update?: number; restarts?: number; phase?: string; lastCheckpoint?: { update: number; path: string } };
      };
      return s.status ?? {};
    };
    const atCheckpoint = await step("status.lastCheckpoint set by a running learner", () =>
      waitFor(
        "a checkpoint",
        async () => {
          const s = await progress();
          return s.lastCheckpoint && s.lastCheckpoint.update >= 1 ? s : undefined;
        },
        stepTimeout,
      ),
    );
    const learner0 = `${job}-learner-0`;
    const cid = await jsonpath(`pod/${learner0}`, "{.status.containerStatuses[0].containerID}");
    const killedPid = Number(/^node-agent:\/\/(\d+)$/.exec(cid)?.[1]);
    assert.ok(Number.isInteger(killedPid), `the learner's containerID names its process: ${cid}`);
    const updateAtKill = (await progress()).update ?? 0;
    if (totalUpdates !== undefined)
      assert.ok(updateAtKill < totalUpdates, `the learner is still training when killed (update ${updateAtKill} of ${totalUpdates})`);
    const checkpointAtKill = atCheckpoint.lastCheckpoint?.update ?? 0;
    await step(`kill -9 the learner process (pid ${killedPid}, update ${updateAtKill}, checkpoint ${checkpointAtKill})`, async () => {
      process.kill(killedPid, "SIGKILL");
      await waitFor(`${learner0} Failed`, async () => ((await jsonpath(`pod/${learner0}`, "{.status.phase}")) === "Failed" ? true : undefined), 30_000);
    });
    const term = await jsonpath(`pod/${learner0}`, "{.status.containerStatuses[0].state.terminated.exitCode}");
    assert.equal(term, "137", "the killed learner's pod reports exit code 137");

    const learner1 = `${job}-learner-1`;
    const resumedAt = await step("the operator starts the next learner incarnation; it resumes from the checkpoint", async () => {
      await waitFor(`${learner1} running`, async () => (jobPods("learner").some((p) => p.pod === learner1) ? true : undefined), stepTimeout);
      const line = await waitFor(
        `"resumed from" in kubectl logs ${learner1}`,
        async () => {
          const logs = await kubectl(["logs", "-n", ns, learner1]);
          return /resumed from (\S+) at update (\d+)/.exec(logs) ?? undefined;
        },
        stepTimeout,
        1000,
      );
      log(`${learner1}: ${line[0]}`);
      return Number(line[2]);
    });
    assert.ok(
      resumedAt >= checkpointAtKill && resumedAt >= 1,
      `resumed at update ${resumedAt}, not from scratch (checkpoint ${checkpointAtKill} existed at the kill)`,
    );
    const restarts = await waitFor("status.restarts 1", async () => ((await progress()).restarts === 1 ? 1 : undefined), 30_000);

    // ---- scaling changes the running workers: the added ones work, the removed ones stop cleanly
    const rollout = (i: number) => `${job}-rollout-${i}`;
    await step(`kubectl scale spj/${job} --replicas=${o.scaleUp}: ${o.scaleUp} worker processes`, async () => {
      await kubectl(["scale", `spj/${job}`, "-n", ns, `--replicas=${o.scaleUp}`]);
      await waitFor(`${o.scaleUp} rollout processes`, async () => (jobPods("rollout").length === o.scaleUp ? true : undefined), stepTimeout, 250);
      for (let i = replicas; i < o.scaleUp; i++) {
        // The agent gave the pod's metrics port (9464) a free host port and recorded it on the pod.
        const pod = JSON.parse(await kubectl(["get", "pod", rollout(i), "-n", ns, "-o", "json"])) as { metadata: { annotations?: Record<string, string> } };
        const ports = JSON.parse(pod.metadata.annotations?.[HOST_PORTS_ANNOTATION] ?? "{}") as Record<string, number>;
        const port = ports[`rollout/${DEFAULT_METRICS_PORT}`];
        assert.ok(port > 0, `${rollout(i)} has a host port for ${DEFAULT_METRICS_PORT}: ${JSON.stringify(ports)}`);
        const published = await waitFor(
          `${rollout(i)} publishing episodes (steppo_worker_episodes_total on 127.0.0.1:${port}/metrics)`,
          async () => {
            const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
            const n = Number(/^steppo_worker_episodes_total(?:\{[^}]*\})? (\d+)/m.exec(text)?.[1] ?? 0);
            return n > 0 ? n : undefined;
          },
          stepTimeout,
        );
        log(`${rollout(i)}: ${published} episode(s) published (its /metrics on 127.0.0.1:${port})`);
      }
    });
    await step(`kubectl scale spj/${job} --replicas=${o.scaleDown}: ${o.scaleDown} worker process(es)`, async () => {
      await kubectl(["scale", `spj/${job}`, "-n", ns, `--replicas=${o.scaleDown}`]);
      await waitFor(`${o.scaleDown} rollout processes`, async () => (jobPods("rollout").length === o.scaleDown ? true : undefined), stepTimeout, 250);
      for (let i = o.scaleDown; i < o.scaleUp; i++) {
        const st = a.containerState(ns, rollout(i));
        assert.equal(st?.kind, "terminated", `${rollout(i)} stopped`);
        assert.equal(st?.kind === "terminated" ? st.exitCode : undefined, 0, `${rollout(i)} stopped cleanly on SIGTERM`);
        const last = /worker \S+ [^\n]*published \d+ episodes[^\n]*/.exec(a.readLog(ns, rollout(i)))?.[0];
        assert.ok(last, `${rollout(i)} reports what it published when it leaves`);
        log(`${rollout(i)}: ${last}`);
      }
    });

    await step(`kubectl wait --for=condition=Succeeded spj/${job} --timeout=${o.waitTimeout}`, () =>
      kubectl(["wait", "--for=condition=Succeeded", `spj/${job}`, "-n", ns, `--timeout=${o.waitTimeout}`], 24 * 3600_000),
    );
    const getSpj = await kubectl(["get", "spj", "-n", ns]);
    log(`kubectl get spj:\n${getSpj}`);
    assert.match(getSpj, new RegExp(`${job}\\s+Succeeded`));
    const final = await progress();
    if (totalUpdates !== undefined) assert.equal(final.update, totalUpdates, "the learner reached the job's update budget");
    assert.equal(final.restarts, 1);
    // Workers leave with exit 0 once the learner marks the job done: finished, not replaced.
    const replacedEvents = await kubectl(["get", "events", "-n", ns, "--field-selector", "reason=RolloutPodReplaced", "-o", "name"]);
    assert.equal(replacedEvents.trim(), "", "no rollout pod was replaced (none failed)");
    const finalLog = await kubectl(["logs", "-n", ns, learner1]);
    assert.match(finalLog, /final success/);
    assert.doesNotMatch(finalLog, /^update 1\//m, "the resumed learner did not start over at update 1");
    await step("finished pods cleaned up (cleanPodPolicy Running): no worker process left", () =>
      waitFor("no rollout processes", async () => (jobPods("rollout").length === 0 && jobPods("learner").length === 0 ? true : undefined), 60_000),
    );
    failed = false;
    return { job, namespace: ns, steps, checkpointAtKill, updateAtKill, killedPid, resumedAt, restarts, finalUpdate: final.update ?? -1, getSpj };
  } catch (err) {
    if (agent) {
      for (const p of [`${job}-learner-0`, `${job}-learner-1`]) {
        const l = agent.readLog(ns, p);
        if (l) log(`--- ${p} log (tail)\n${l.trimEnd().split("\n").slice(-25).join("\n")}`);
      }
      if (chart) for (const p of chart.pods) log(`--- ${p} log (tail)\n${agent.readLog(chart.namespace, p).trimEnd().split("\n").slice(-25).join("\n")}`);
    }
    throw err;
  } finally {
    const keep = failed && (o.keepOnFailure ?? true);
    await agent?.stop({ keepDir: keep });
    await nats?.dispose();
    await cluster?.stop({ keepDir: keep });
    if (keep) log(`kept for inspection: node agent ${agent?.dir} (pods/*/logs, claims), cluster ${cluster?.dir}`);
  }
}
