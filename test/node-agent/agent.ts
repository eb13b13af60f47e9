// A process-based kubelet for the test cluster (test infrastructure only): registers a Node, schedules
// unscheduled pods onto it (the test cluster has no kube-scheduler; see scheduler.ts), and runs each pod
// bound to it as local processes (pod-runner.ts), reporting their status back to the API server.
//   const agent = await NodeAgent.start({ kubeconfig: cluster.kubeconfigPath, gpus: 1 });
//   ... pods run; agent.logPath("default", "job-learner-0") ...
//   await agent.stop();
// Every process runs in its own process group; the agent kills all of them on stop(), on process exit
// and on SIGINT/SIGTERM, so a failing test leaks none (a SIGKILLed test process cannot clean up).
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type Informer, KubeConfig, makeInformer, type ObjectCache, type V1Pod } from "@kubernetes/client-node";
import { type Clients, makeClients, statusCode } from "../../operator/kube.ts";
import { type LogSource, startLogsServer } from "./logs-server.ts";
import { NodeRegistration, nodeCapacity, nodeLabels } from "./node.ts";
import { PodRunner } from "./pod-runner.ts";
import { type ContainerState, kubeTime } from "./pod-status.ts";
import { fits, type NodeView, unscheduled } from "./scheduler.ts";

export const CHECKOUT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

export interface NodeAgentOptions {
  /** A kubeconfig with rights to nodes, leases, pods, pods/status, pods/binding, configmaps, secrets,
   * persistentvolumeclaims, serviceaccounts/token (the test cluster's admin kubeconfig). */
  kubeconfig: string;
  nodeName?: string;
  /** Pod directories, claims and logs (default: a fresh temp dir, removed by stop() unless keepDir). */
  dir?: string;
  /** The checkout whose bin/steppo.mjs runs `steppo` containers (default: this one). */
  checkout?: string;
  /** nvidia.com/gpu to advertise (default 0). */
  gpus?: number;
  /** Extra or overriding capacity entries. */
  capacity?: Record<string, string>;
  /** Environment set in every container, overriding the pod's (test settings only). */
  extraEnv?: Record<string, string>;
  /** Serve /containerLogs so `kubectl logs` works (default true). */
  logsEndpoint?: boolean;
  log?: (m: string) => void;
}

export interface PodProcess {
  namespace: string;
  pod: string;
  container: string;
  pid: number;
}

// Process groups of every agent in this process, killed if it exits without stop(), and the temporary
// directories of agents not stopped yet, removed then.
const liveGroups = new Set<number>();
const liveDirs = new Set<string>();
let hooks = false;
function killAllGroups(): void {
  for (const pid of liveGroups) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // gone
    }
  }
  liveGroups.clear();
  for (const d of liveDirs) rmSync(d, { recursive: true, force: true });
  liveDirs.clear();
}
function installHooks(): void {
  if (hooks) return;
  hooks = true;
  process.on("exit", killAllGroups);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => {
      killAllGroups();
      // The other exit hooks (test cluster, nats-server) run on exit too.
      process.exit(sig === "SIGINT" ? 130 : 143);
    });
  }
}

async function freePort(): Promise<number> {
  return new Promise<number>((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", rej);
    srv.listen(0, "127.0.0.1", () => {
      const a = srv.address();
      const p = typeof a === "object" && a ? a.port : 0;
      srv.close(() => res(p));
    });
  });
}

export class NodeAgent {
  readonly nodeName: string;
  readonly dir: string;
  private readonly clients: Clients;
  private readonly runners = new Map<string, PodRunner>();
  private readonly assumed = new Map<string, V1Pod>();
  private readonly ports = new Set<number>();
  private informer?: Informer<V1Pod> & ObjectCache<V1Pod>;
  private registration?: NodeRegistration;
  private logs?: { port: number; close(): Promise<void> };
  private scheduling?: Promise<void>;
  private scheduleAgain = false;
  private scheduleTimer?: NodeJS.Timeout;
  private stopped = false;
  private readonly log: (m: string) => void;
  private readonly ownDir: boolean;
  private node!: NodeView;
  private server = "";
  private caPem = "";

  private constructor(private readonly o: NodeAgentOptions) {
    this.nodeName = o.nodeName ?? "steppo-node";
    this.ownDir = o.dir === undefined;
    this.dir = o.dir ?? mkdtempSync(join(tmpdir(), "steppo-node-agent-"));
    if (this.ownDir) liveDirs.add(this.dir);
    mkdirSync(join(this.dir, "pods"), { recursive: true });
    mkdirSync(join(this.dir, "claims"), { recursive: true });
    this.log = o.log ?? ((m) => process.stderr.write(`[node-agent] ${m}\n`));
    const kc = new KubeConfig();
    kc.loadFromFile(o.kubeconfig);
    this.clients = makeClients(kc);
    const cluster = kc.getCurrentCluster();
    this.server = cluster?.server ?? "";
    this.caPem = cluster?.caData ? Buffer.from(cluster.caData, "base64").toString("utf8") : cluster?.caFile ? readFileSync(cluster.caFile, "utf8") : "";
  }

  static async start(o: NodeAgentOptions): Promise<NodeAgent> {
    installHooks();
    const a = new NodeAgent(o);
    try {
      await a.run();
    } catch (err) {
      await a.stop();
      throw err;
    }
    return a;
  }

  private async run(): Promise<void> {
    if (this.o.logsEndpoint !== false) {
      this.logs = await startLogsServer(this.dir, (ns, pod, container, previous) => this.logSource(ns, pod, container, previous), this.log);
    }
    const spec = { name: this.nodeName, gpus: this.o.gpus, capacity: this.o.capacity, kubeletPort: this.logs?.port };
    this.node = { name: this.nodeName, labels: nodeLabels(spec), allocatable: nodeCapacity(spec) };
    this.registration = new NodeRegistration(this.clients, spec, this.log);
    await this.registration.register();
    const core = this.clients.core;
    this.informer = makeInformer<V1Pod>(this.clients.kc, "/api/v1/pods", () => core.listPodForAllNamespaces());
    this.informer.on("add", (p) => this.onPod(p));
    this.informer.on("update", (p) => this.onPod(p));
    this.informer.on("delete", (p) => this.onPodDeleted(p));
    this.informer.on("error", (err) => {
      if (this.stopped) return;
      this.log(`pod watch: ${(err as Error)?.message ?? err} (restarting)`);
      setTimeout(() => {
        if (!this.stopped) this.informer?.start().catch(() => {});
      }, 500).unref();
    });
    await this.informer.start();
    const tick = () => {
      if (this.stopped) return;
      this.requestSchedule();
      this.scheduleTimer = setTimeout(tick, 2000);
      this.scheduleTimer.unref();
    };
    tick();
    this.log(
      `node ${this.nodeName} ready (${JSON.stringify(this.node.allocatable)}); dir ${this.dir}${this.logs ? `; logs endpoint 127.0.0.1:${this.logs.port}` : ""}`,
    );
  }

  private runnerDeps() {
    return {
      core: this.clients.core,
      nodeName: this.nodeName,
      checkout: this.o.checkout ?? CHECKOUT,
      claimsDir: join(this.dir, "claims"),
      podsDir: join(this.dir, "pods"),
      server: this.server,
      caPem: this.caPem,
      extraEnv: this.o.extraEnv ?? {},
      allocatePort: async () => {
        for (;;) {
          const p = await freePort();
          if (!this.ports.has(p)) {
            this.ports.add(p);
            return p;
          }
        }
      },
      releasePort: (...ps: number[]) => {
        for (const p of ps) this.ports.delete(p);
      },
      track: (pid: number) => liveGroups.add(pid),
      untrack: (pid: number) => liveGroups.delete(pid),
      log: this.log,
    };
  }

  private onPod(pod: V1Pod): void {
    if (this.stopped) return;
    const uid = pod.metadata?.uid ?? "";
    if (pod.spec?.nodeName !== this.nodeName) {
      if (!pod.spec?.nodeName) this.requestSchedule();
      return;
    }
    this.assumed.delete(uid);
    const existing = this.runners.get(uid);
    if (existing) {
      existing.update(pod);
      if (pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed") this.requestSchedule();
      return;
    }
    const phase = pod.status?.phase;
    if (phase === "Succeeded" || phase === "Failed") {
      // Finished before this agent started: nothing to run; a pending deletion still needs its final delete.
      if (pod.metadata?.deletionTimestamp) void this.forceDelete(pod);
      return;
    }
    const r = new PodRunner(pod, this.runnerDeps());
    this.runners.set(uid, r);
    r.start();
    if (pod.metadata?.deletionTimestamp) r.update(pod);
  }

  private onPodDeleted(pod: V1Pod): void {
    const uid = pod.metadata?.uid ?? "";
    this.assumed.delete(uid);
    this.runners.get(uid)?.podGone();
    this.requestSchedule();
  }

  private async forceDelete(pod: V1Pod): Promise<void> {
    try {
      await this.clients.core.deleteNamespacedPod({
        namespace: pod.metadata?.namespace ?? "default",
        name: pod.metadata?.name ?? "",
        gracePeriodSeconds: 0,
        body: { gracePeriodSeconds: 0, preconditions: { uid: pod.metadata?.uid } },
      });
    } catch (err) {
      if (statusCode(err) !== 404 && statusCode(err) !== 409) this.log(`deleting ${pod.metadata?.name}: ${(err as Error).message}`);
    }
  }

  // ---- the minimal scheduler (one node: bind whatever fits)

  private requestSchedule(): void {
    if (this.stopped) return;
    if (this.scheduling) {
      this.scheduleAgain = true;
      return;
    }
    this.scheduling = this.schedulePass()
      .catch((err) => this.log(`scheduling: ${(err as Error).message}`))
      .finally(() => {
        this.scheduling = undefined;
        if (this.scheduleAgain) {
          this.scheduleAgain = false;
          this.requestSchedule();
        }
      });
  }

  private async schedulePass(): Promise<void> {
    const pods = this.informer?.list() ?? [];
    const pending = unscheduled(pods).filter((p) => !this.assumed.has(p.metadata?.uid ?? ""));
    if (pending.length === 0) return;
    const bound = [...pods.filter((p) => p.spec?.nodeName === this.nodeName), ...this.assumed.values()];
    for (const pod of pending) {
      if (this.stopped) return;
      const f = fits(pod, this.node, bound);
      const ns = pod.metadata?.namespace ?? "default";
      const name = pod.metadata?.name ?? "";
      if (!f.fits) {
        const cond = pod.status?.conditions?.find((c) => c.type === "PodScheduled");
        if (cond?.status === "False" && cond.message === f.reason) continue;
        try {
          await this.clients.core.patchNamespacedPodStatus({
            namespace: ns,
            name,
            body: [
              { op: "test", path: "/metadata/uid", value: pod.metadata?.uid },
              {
                op: "add",
                path: "/status/conditions",
                value: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message: f.reason, lastTransitionTime: kubeTime() }],
              },
            ],
          });
          this.log(`${ns}/${name}: unschedulable: ${f.reason}`);
        } catch (err) {
          if (statusCode(err) !== 404 && statusCode(err) !== 422) this.log(`${ns}/${name}: ${(err as Error).message}`);
        }
        continue;
      }
      try {
        await this.clients.core.createNamespacedPodBinding({
          name,
          namespace: ns,
          body: {
            apiVersion: "v1",
            kind: "Binding",
            metadata: { name, namespace: ns, uid: pod.metadata?.uid },
            target: { apiVersion: "v1", kind: "Node", name: this.nodeName },
          },
        });
        const assumed = { ...pod, spec: { ...pod.spec!, nodeName: this.nodeName } };
        this.assumed.set(pod.metadata?.uid ?? "", assumed);
        bound.push(assumed);
      } catch (err) {
        const code = statusCode(err);
        if (code !== 404 && code !== 409) this.log(`binding ${ns}/${name}: ${(err as Error).message}`);
      }
    }
  }

  // ---- what tests and the logs endpoint ask

  /** The newest runner of a pod by name (a rollout pod recreated under its old name has a new one). */
  private runnerByName(namespace: string, pod: string): PodRunner | undefined {
    let found: PodRunner | undefined;
    for (const r of this.runners.values()) if (r.pod.metadata?.namespace === namespace && r.pod.metadata?.name === pod) found = r;
    return found;
  }

  private logSource(namespace: string, pod: string, container: string, previous: boolean): LogSource | undefined {
    const r = this.runnerByName(namespace, pod);
    const path = r?.logPath(container, previous);
    if (!r || !path) return undefined;
    return { path, running: () => !previous && r.isRunning(container) };
  }

  /** The current log file of a pod's container (default: its first container). */
  logPath(namespace: string, pod: string, container = ""): string | undefined {
    return this.runnerByName(namespace, pod)?.logPath(container);
  }

  /** The log of a pod's container ("" when there is none yet). */
  readLog(namespace: string, pod: string, container = ""): string {
    const p = this.logPath(namespace, pod, container);
    try {
      return p ? readFileSync(p, "utf8") : "";
    } catch {
      return "";
    }
  }

  /** A container's state as the agent last saw it (default: the pod's first container). */
  containerState(namespace: string, pod: string, container = ""): ContainerState | undefined {
    return this.runnerByName(namespace, pod)?.state(container);
  }

  /** Every container process running now. */
  processes(): PodProcess[] {
    const out: PodProcess[] = [];
    for (const r of this.runners.values()) {
      for (const c of r.containerNames()) {
        const pid = r.pidOf(c);
        if (pid !== undefined) out.push({ namespace: r.pod.metadata?.namespace ?? "", pod: r.pod.metadata?.name ?? "", container: c, pid });
      }
    }
    return out;
  }

  /** The host port the agent gave a pod's containerPort. */
  hostPort(namespace: string, pod: string, containerPort: number): number | undefined {
    return this.runnerByName(namespace, pod)
      ?.hostPorts()
      .find((p) => p.containerPort === containerPort)?.hostPort;
  }

  /** Kills every process, marks the node NotReady, and removes the directory (unless keepDir). */
  async stop(opts: { keepDir?: boolean } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.scheduleTimer) clearTimeout(this.scheduleTimer);
    await this.informer?.stop().catch(() => {});
    await Promise.all([...this.runners.values()].map((r) => r.kill()));
    await this.scheduling;
    await this.registration?.stop();
    await this.logs?.close();
    liveDirs.delete(this.dir);
    if (this.ownDir && !opts.keepDir) rmSync(this.dir, { recursive: true, force: true });
  }
}
