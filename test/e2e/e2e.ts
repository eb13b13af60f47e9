// The end-to-end run, as a user would do it, on a real single-node test cluster:
//   kube-apiserver + etcd + kube-controller-manager + kube-scheduler (test/cluster/cluster.ts), one node —
//   kubelet + containerd + runc + CNI bridge (test/cluster/node.ts) — running the steppo image built on this
//   machine (test/cluster/images.ts), a real nats-server on the host, the real helm and kubectl binaries.
//   1. helm install charts/steppo (nats.url → the test's nats-server): the real Deployment and ReplicaSet
//      controllers make the operator pod, the scheduler binds it, the kubelet runs it as a container
//      (uid 65532, read-only root filesystem, PodSecurity restricted). It authenticates with its pod's
//      service-account token (exactly the chart's RBAC) and takes the leader Lease.
//   2. kubectl apply -f <job>: the operator creates the learner and rollout pods; they run as containers.
//      The checkpoint claim binds to a hostPath PersistentVolume this test creates (no provisioner).
//   3. once status.lastCheckpoint exists (and training is not over), SIGKILL the learner's container
//      process: the operator creates the next incarnation, which resumes from the checkpoint on the claim.
//   4. kubectl scale spj/<job> --replicas=up, then down: the running worker containers follow.
//   5. kubectl wait --for=condition=Succeeded spj/<job>; kubectl get spj and kubectl logs show it.
//   6. ttlSecondsAfterFinished (when the job sets it): the operator deletes the finished job, the garbage
//      collector its pods, Service, ConfigMap and claim.
//   7. with the operator scaled to 0, kubectl delete of a running job and its finalizer removed by hand: only the
//      garbage collector deletes its pods, Service, ConfigMap and claim (owner references).
// Every process, container, mount and network change is undone at the end, on failure too.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { chownSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import yaml from "js-yaml";
import { startTestCluster, type TestCluster } from "../cluster/cluster.ts";
import { ensurePauseImage, ensureSteppoImage, STEPPO_UID } from "../cluster/images.ts";
import { hostAddress, startNode, type TestNode } from "../cluster/node.ts";
import { DEFAULT_METRICS_PORT } from "../../core/process-config.ts";
import { jobLabel, LABEL_JOB } from "../../crds/names.ts";
import { NatsServer } from "../support/nats-server.ts";
import { pollUntil } from "../support/poll.ts";
import { type InstalledChart, installChart, waitDeploymentPods } from "./chart.ts";

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
  /** nvidia.com/gpu the node advertises as an extended resource (default 1: the jobs' learners may ask for one). */
  gpus?: number;
  /** Also delete a second, running job with the operator stopped: the garbage collector alone cleans up. */
  deletionGc?: boolean;
  /** Keep the node's and cluster's directories (logs, claims) when the run fails (default true). */
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
  /** Seconds from the job's Succeeded to the TTL deleting it and the garbage collector its children (if it has a TTL). */
  ttlGcSeconds?: number;
  /** Seconds from kubectl delete of the running second job to its children being gone (deletionGc). */
  deletionGcSeconds?: number;
  finalUpdate: number;
  getSpj: string;
}

interface JobDoc {
  metadata: { name: string; namespace?: string };
  spec: { training?: { updates?: number }; rollout?: { replicas?: number }; runPolicy?: { ttlSecondsAfterFinished?: number } };
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
  let node: TestNode | undefined;
  let chart: InstalledChart | undefined;
  const watchers: ChildProcess[] = [];
  let failed = true;
  try {
    const images = await step("images: sandbox (busybox) and steppo (buildah; cached)", async () => ({
      pause: ensurePauseImage(log),
      steppo: ensureSteppoImage(log),
    }));
    const address = hostAddress();
    cluster = await step("start etcd, kube-apiserver, kube-controller-manager, kube-scheduler", () => startTestCluster({ address }));
    const c = cluster;
    const kubectl = async (args: string[], timeoutMs = 60_000) => {
      const r = await c.kubectl(args, { timeoutMs });
      if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed (exit ${r.code}): ${r.stderr || r.stdout}`);
      return r.stdout;
    };
    const jsonpath = (what: string, path: string, namespace = ns) => kubectl(["get", what, "-n", namespace, "-o", `jsonpath=${path}`]);
    node = await step("start the node: containerd + kubelet, images imported", () =>
      startNode(c, { pauseImage: images.pause, images: [images.steppo], gpus: o.gpus ?? 1, log: (m) => log(`[node] ${m}`) }),
    );
    const n = node;
    nats = await step("start nats-server (on the host, reachable from the pods)", () => NatsServer.start({ host: address }));
    const natsUrl = nats.url;
    // No storage provisioner: a hostPath PersistentVolume per checkpoint claim, owned by the pods' uid.
    const createVolume = async (name: string) => {
      const path = join(n.dir, "volumes", name);
      mkdirSync(path, { recursive: true });
      chownSync(path, STEPPO_UID, STEPPO_UID);
      const pv = {
        apiVersion: "v1",
        kind: "PersistentVolume",
        metadata: { name },
        spec: { capacity: { storage: "1Gi" }, accessModes: ["ReadWriteOnce"], persistentVolumeReclaimPolicy: "Retain", hostPath: { path, type: "Directory" } },
      };
      await c.kubectl(["apply", "-f", "-"], { input: JSON.stringify(pv) });
    };
    await createVolume(`${job}-checkpoints`);

    // The pods reach the API server at the host's address: there is no kube-proxy for the kubernetes Service.
    const port = new URL(c.server).port;
    chart = await step("helm install charts/steppo", () =>
      installChart(c, {
        natsUrl,
        log,
        setString: [
          "operator.extraEnv[0].name=KUBERNETES_SERVICE_HOST",
          `operator.extraEnv[0].value=${address}`,
          "operator.extraEnv[1].name=KUBERNETES_SERVICE_PORT",
          `operator.extraEnv[1].value=${port}`,
        ],
      }),
    );
    const installed = chart;
    await step("operator pod ready (Deployment → ReplicaSet → Pod by the controllers, run by the kubelet)", () => waitDeploymentPods(c, installed, log));
    const opPod = installed.pods[0];
    await step("the operator runs as the chart's ServiceAccount, restricted, and leads", async () => {
      const pod = JSON.parse(await kubectl(["get", "pod", opPod, "-n", installed.namespace, "-o", "json"])) as {
        metadata: { ownerReferences?: { kind: string }[] };
        spec: { serviceAccountName: string; nodeName?: string; containers: { args?: string[]; securityContext?: Record<string, unknown> }[] };
      };
      assert.equal(pod.metadata.ownerReferences?.[0]?.kind, "ReplicaSet", "the ReplicaSet controller made the operator pod");
      assert.equal(pod.spec.nodeName, n.name, "the scheduler bound it to the node");
      assert.equal(pod.spec.containers[0].securityContext?.readOnlyRootFilesystem, true);
      const leaseName = pod.spec.containers[0].args?.find((a) => a.startsWith("--lease-name="))?.slice("--lease-name=".length);
      assert.equal(leaseName, installed.release, "the chart names the Lease after the release");
      const holder = await waitFor(
        "the leader Lease",
        async () => (await jsonpath(`lease/${leaseName}`, "{.spec.holderIdentity}", installed.namespace)) || undefined,
        60_000,
      );
      assert.equal(holder, opPod, "the operator pod holds the leader Lease (with its service-account token)");
      const uid = await jsonpath(`pod/${opPod}`, "{.spec.securityContext.runAsUser}", installed.namespace);
      log(`operator ${opPod}: ServiceAccount ${pod.spec.serviceAccountName}, uid ${uid || "(image) 65532"}, leader`);
    });

    await step(`kubectl apply -f ${o.jobFile}`, () => kubectl(["apply", "-f", o.jobFile]));
    const replicas = doc.spec.rollout?.replicas ?? 1;
    /** The job's pods by name → phase. */
    const podPhases = async (role: string) => {
      const out = await jsonpath("pods", `{range .items[*]}{.metadata.name}={.status.phase}{"\\n"}{end}`);
      return new Map(
        out
          .split("\n")
          .filter((l) => l.startsWith(`${job}-${role}-`))
          .map((l) => l.split("=") as [string, string]),
      );
    };
    const running = async (role: string) => [...(await podPhases(role)).entries()].filter(([, p]) => p === "Running").map(([name]) => name);
    await step(`learner and ${replicas} rollout pod(s) running as containers`, () =>
      waitFor(
        "the learner and rollout containers",
        async () => ((await running("learner")).includes(`${job}-learner-0`) && (await running("rollout")).length === replicas ? true : undefined),
        stepTimeout,
      ),
    );

    // ---- a checkpoint exists and training is not over: SIGKILL the learner's container process
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
    assert.match(cid, /^containerd:\/\//, `the learner runs in containerd: ${cid}`);
    const killedPid = n.containerPid(cid);
    const updateAtKill = (await progress()).update ?? 0;
    if (totalUpdates !== undefined)
      assert.ok(updateAtKill < totalUpdates, `the learner is still training when killed (update ${updateAtKill} of ${totalUpdates})`);
    const checkpointAtKill = atCheckpoint.lastCheckpoint?.update ?? 0;
    await step(`kill -9 the learner's container process (host pid ${killedPid}, update ${updateAtKill}, checkpoint ${checkpointAtKill})`, async () => {
      process.kill(killedPid, "SIGKILL");
      await waitFor(`${learner0} Failed`, async () => ((await jsonpath(`pod/${learner0}`, "{.status.phase}")) === "Failed" ? true : undefined), 60_000);
    });
    const term = await jsonpath(`pod/${learner0}`, "{.status.containerStatuses[0].state.terminated.exitCode}");
    assert.equal(term, "137", "the killed learner's pod reports exit code 137");

    const learner1 = `${job}-learner-1`;
    const resumedAt = await step("the operator starts the next learner incarnation; it resumes from the checkpoint", async () => {
      await waitFor(`${learner1} running`, async () => ((await running("learner")).includes(learner1) ? true : undefined), stepTimeout);
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
    await step(`kubectl scale spj/${job} --replicas=${o.scaleUp}: ${o.scaleUp} worker containers`, async () => {
      await kubectl(["scale", `spj/${job}`, "-n", ns, `--replicas=${o.scaleUp}`]);
      await waitFor(`${o.scaleUp} rollout containers`, async () => ((await running("rollout")).length === o.scaleUp ? true : undefined), stepTimeout, 250);
      for (let i = replicas; i < o.scaleUp; i++) {
        // The pod network is the node's bridge: the host reaches a pod at its IP.
        const ip = await jsonpath(`pod/${rollout(i)}`, "{.status.podIP}");
        const published = await waitFor(
          `${rollout(i)} publishing episodes (steppo_worker_episodes_total on ${ip}:${DEFAULT_METRICS_PORT}/metrics)`,
          async () => {
            const text = await (await fetch(`http://${ip}:${DEFAULT_METRICS_PORT}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
            const count = Number(/^steppo_worker_episodes_total(?:\{[^}]*\})? (\d+)/m.exec(text)?.[1] ?? 0);
            return count > 0 ? count : undefined;
          },
          stepTimeout,
        );
        log(`${rollout(i)}: ${published} episode(s) published (its /metrics at ${ip}:${DEFAULT_METRICS_PORT})`);
      }
    });
    await step(`kubectl scale spj/${job} --replicas=${o.scaleDown}: ${o.scaleDown} worker container(s)`, async () => {
      // The removed pods are deleted once their containers exit: follow their logs and their status until then.
      const leaving: { pod: string; logs: string; exits: string }[] = [];
      for (let i = o.scaleDown; i < o.scaleUp; i++) {
        const entry = { pod: rollout(i), logs: "", exits: "" };
        const follow = spawn(c.binaries.kubectl, ["--kubeconfig", c.kubeconfigPath, "logs", "-f", "-n", ns, entry.pod], {
          stdio: ["ignore", "pipe", "ignore"],
        });
        follow.stdout.on("data", (d: Buffer) => {
          entry.logs += d.toString("utf8");
        });
        const watch = spawn(
          c.binaries.kubectl,
          [
            "--kubeconfig",
            c.kubeconfigPath,
            "get",
            "pod",
            entry.pod,
            "-n",
            ns,
            "-w",
            "-o",
            'jsonpath={.status.containerStatuses[0].state.terminated.exitCode}{"\\n"}',
          ],
          { stdio: ["ignore", "pipe", "ignore"] },
        );
        watch.stdout.on("data", (d: Buffer) => {
          entry.exits += d.toString("utf8");
        });
        watchers.push(follow, watch);
        leaving.push(entry);
      }
      await new Promise((r) => setTimeout(r, 1000)); // the watches and log streams are open
      await kubectl(["scale", `spj/${job}`, "-n", ns, `--replicas=${o.scaleDown}`]);
      await waitFor(`${o.scaleDown} rollout pods`, async () => ((await podPhases("rollout")).size === o.scaleDown ? true : undefined), stepTimeout, 250);
      for (const e of leaving) {
        const codes = e.exits.split("\n").filter((x) => x.trim() !== "");
        assert.equal(codes.at(-1), "0", `${e.pod} stopped cleanly on SIGTERM (exit codes seen: ${JSON.stringify(codes)})`);
        const last = /worker \S+ [^\n]*published \d+ episodes[^\n]*/.exec(e.logs)?.[0];
        assert.ok(last, `${e.pod} reports what it published when it leaves`);
        log(`${e.pod}: ${last}`);
      }
    });

    await step(`kubectl wait --for=condition=Succeeded spj/${job} --timeout=${o.waitTimeout}`, () =>
      kubectl(["wait", "--for=condition=Succeeded", `spj/${job}`, "-n", ns, `--timeout=${o.waitTimeout}`], 24 * 3600_000),
    );
    const succeededAt = Date.now();
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
    await step("finished pods cleaned up (cleanPodPolicy Running): no worker container left", () =>
      waitFor(
        "no running job pods",
        async () => ((await running("rollout")).length === 0 && (await running("learner")).length === 0 ? true : undefined),
        60_000,
      ),
    );

    const children = (name: string) =>
      kubectl(["get", "pods,services,configmaps,persistentvolumeclaims", "-n", ns, "-l", `${LABEL_JOB}=${jobLabel(name)}`, "-o", "name"]);
    let ttlGcSeconds: number | undefined;
    if (doc.spec.runPolicy?.ttlSecondsAfterFinished !== undefined) {
      ttlGcSeconds = await step(
        `ttlSecondsAfterFinished ${doc.spec.runPolicy?.ttlSecondsAfterFinished}: the job and (garbage collector) its children deleted`,
        async () => {
          assert.notEqual((await children(job)).trim(), "", "the finished job still has children before its TTL");
          await waitFor(
            "the job and its pods, Service, ConfigMap and claim gone",
            async () => {
              const left = (await c.kubectl(["get", `spj/${job}`, "-n", ns, "-o", "name"])).code === 0;
              return !left && (await children(job)).trim() === "" ? true : undefined;
            },
            stepTimeout,
          );
          return (Date.now() - succeededAt) / 1000;
        },
      );
    }

    let deletionGcSeconds: number | undefined;
    if (o.deletionGc) {
      const second = `${job}-gc`;
      deletionGcSeconds = await step(
        `operator scaled to 0, kubectl delete spj/${second} while running: the garbage collector deletes its children`,
        async () => {
          await createVolume(`${second}-checkpoints`);
          const d = yaml.load(readFileSync(o.jobFile, "utf8")) as Record<string, unknown> & JobDoc;
          d.metadata = { name: second, namespace: ns };
          d.spec.training = { ...(d.spec.training ?? {}), updates: 100_000 };
          delete d.spec.runPolicy;
          await c.kubectl(["apply", "-f", "-"], { input: JSON.stringify(d) });
          await waitFor(
            `${second}'s learner running`,
            async () => ((await jsonpath(`pod/${second}-learner-0`, "{.status.phase}").catch(() => "")) === "Running" ? true : undefined),
            stepTimeout,
          );
          await kubectl(["scale", "deployment", "-n", installed.namespace, "--all", "--replicas=0"]);
          await waitFor(
            "the operator pod gone (the Deployment controller scaled its ReplicaSet to 0)",
            async () => ((await jsonpath("pods", "{.items[*].metadata.name}", installed.namespace)).trim() === "" ? true : undefined),
            stepTimeout,
          );
          const kinds = (await children(second)).trim().split("\n");
          for (const kind of ["pod/", "service/", "configmap/", "persistentvolumeclaim/"])
            assert.ok(
              kinds.some((k) => k.startsWith(kind)),
              `${second} has a ${kind.slice(0, -1)} before the delete: ${kinds.join(" ")}`,
            );
          const t = Date.now();
          // The operator's finalizer (steppo.dev/cleanup: NATS resources, the running pods) holds a deleted job until
          // the operator handles it; with no operator, remove it as an admin would: then only owner references and
          // the garbage collector delete the children.
          await kubectl(["delete", `spj/${second}`, "-n", ns, "--wait=false"]);
          await kubectl(["patch", `spj/${second}`, "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}']);
          await waitFor(
            "its pods, Service, ConfigMap and claim deleted by the garbage collector",
            async () => ((await children(second)).trim() === "" ? true : undefined),
            stepTimeout,
          );
          return (Date.now() - t) / 1000;
        },
      );
    }
    failed = false;
    return {
      job,
      namespace: ns,
      steps,
      checkpointAtKill,
      updateAtKill,
      killedPid,
      resumedAt,
      restarts,
      ttlGcSeconds,
      deletionGcSeconds,
      finalUpdate: final.update ?? -1,
      getSpj,
    };
  } catch (err) {
    if (cluster) {
      const logsOf = async (namespace: string, pod: string) => {
        const r = await cluster?.kubectl(["logs", "-n", namespace, pod, "--tail=25"]);
        if (r?.stdout) log(`--- ${pod} log (tail)\n${r.stdout.trimEnd()}`);
      };
      for (const p of [`${job}-learner-0`, `${job}-learner-1`]) await logsOf(ns, p);
      if (chart) for (const p of chart.pods) await logsOf(chart.namespace, p);
      const events = await cluster.kubectl(["get", "events", "-A", "--sort-by=.lastTimestamp"]);
      log(`--- events\n${events.stdout.trimEnd().split("\n").slice(-30).join("\n")}`);
    }
    throw err;
  } finally {
    for (const w of watchers) if (w.exitCode === null) w.kill("SIGKILL");
    const keep = failed && (o.keepOnFailure ?? true);
    await node?.stop({ keepDir: keep }).catch((err) => log(`node stop: ${(err as Error).message}`));
    await nats?.dispose();
    await cluster?.stop({ keepDir: keep });
    if (keep) log(`kept for inspection: node ${node?.dir} (containerd.log, kubelet.log, pod-logs/), cluster ${cluster?.dir}`);
  }
}
