// One pod bound to the agent's node: its volumes, one local process per container, restarts per
// restartPolicy, readiness probes, status reports, and graceful deletion (SIGTERM, SIGKILL after the grace
// period, then the final delete with gracePeriodSeconds=0, as the kubelet does).
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { constants } from "node:os";
import { join } from "node:path";
import type { CoreV1Api, V1Container, V1Pod, V1PodCondition, V1Probe } from "@kubernetes/client-node";
import { statusCode } from "../../operator/kube.ts";
import { ContainerConfigError, containerEnv, type HostPort, hostPortOf, type Lookup, type Mount, processSpec } from "./container.ts";
import {
  type ContainerState,
  type ContainerView,
  containerStatus,
  kubeTime,
  type PodPhase,
  podConditions,
  podPhase,
  type RestartPolicy,
} from "./pod-status.ts";
import { materializeVolumes, SERVICE_ACCOUNT_MOUNT, VolumeError, type Volumes } from "./volumes.ts";

/** Annotation the agent sets on a pod: "<container>/<containerPort>" → host port on 127.0.0.1. */
export const HOST_PORTS_ANNOTATION = "node-agent.steppo.dev/host-ports";

export interface RunnerDeps {
  core: CoreV1Api;
  nodeName: string;
  checkout: string;
  claimsDir: string;
  podsDir: string;
  server: string;
  caPem: string;
  /** Environment that overrides every container's (test settings). */
  extraEnv: Record<string, string>;
  allocatePort(): Promise<number>;
  releasePort(...ports: number[]): void;
  /** Registers a process group so the agent (and its exit hook) can kill it. */
  track(pid: number): void;
  untrack(pid: number): void;
  log(m: string): void;
}

interface Run extends ContainerView {
  spec: V1Container;
  proc?: ChildProcess;
  exited?: Promise<void>;
  logPath?: string;
  restartTimer?: NodeJS.Timeout;
  probeTimer?: NodeJS.Timeout;
  probeFailures: number;
  ports: HostPort[];
}

const SIGNUM = constants.signals as Record<string, number>;
const MAX_TERMINATION_MESSAGE = 4096;

function killGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    // already gone
  }
}

function tail(path: string, maxLines: number, maxBytes: number): string {
  try {
    const text = readFileSync(path, "utf8");
    return text
      .split("\n")
      .slice(-maxLines - 1)
      .join("\n")
      .slice(-maxBytes)
      .trim();
  } catch {
    return "";
  }
}

export class PodRunner {
  pod: V1Pod;
  readonly uid: string;
  readonly dir: string;
  private readonly runs: Run[];
  private volumes?: Volumes;
  private stopping = false;
  private gone = false;
  private finished = false;
  private statusWriting?: Promise<void>;
  private statusDirty = false;
  private readonly startTime = kubeTime();
  private lastPhase: PodPhase = "Pending";
  private annotated = false;
  private readonly done: Promise<void>;
  private resolveDone: () => void = () => {};
  private prepareTimer?: NodeJS.Timeout;

  constructor(
    pod: V1Pod,
    private readonly d: RunnerDeps,
  ) {
    this.pod = pod;
    this.uid = pod.metadata?.uid ?? "";
    this.dir = join(d.podsDir, `${pod.metadata?.namespace}_${pod.metadata?.name}_${this.uid}`);
    mkdirSync(join(this.dir, "logs"), { recursive: true });
    mkdirSync(join(this.dir, "tmp"), { recursive: true });
    this.runs = (pod.spec?.containers ?? []).map((c) => ({
      name: c.name,
      image: c.image ?? "",
      spec: c,
      state: { kind: "waiting", reason: "ContainerCreating" },
      restartCount: 0,
      ready: false,
      everStarted: false,
      probeFailures: 0,
      ports: [],
    }));
    this.done = new Promise((r) => {
      this.resolveDone = r;
    });
  }

  get key(): string {
    return `${this.pod.metadata?.namespace}/${this.pod.metadata?.name}`;
  }

  get policy(): RestartPolicy {
    return (this.pod.spec?.restartPolicy as RestartPolicy | undefined) ?? "Always";
  }

  /** Resolves once the pod is finished here: processes gone and (when deleted) the API object removed. */
  whenDone(): Promise<void> {
    return this.done;
  }

  /** The log file of a container's current (or, with previous, last) run. */
  logPath(container: string, previous = false): string | undefined {
    const r = this.runs.find((x) => x.name === container) ?? (container === "" ? this.runs[0] : undefined);
    if (!r) return undefined;
    if (!previous) return r.logPath;
    const p = join(this.dir, "logs", r.name, `${r.restartCount - 1}.log`);
    return r.restartCount > 0 && existsSync(p) ? p : undefined;
  }

  containerNames(): string[] {
    return this.runs.map((r) => r.name);
  }

  isRunning(container: string): boolean {
    return this.runs.find((r) => r.name === container)?.state.kind === "running";
  }

  /** A container's state as last reported (its exit code once it terminated). */
  state(container: string): ContainerState | undefined {
    return (this.runs.find((r) => r.name === container) ?? (container === "" ? this.runs[0] : undefined))?.state;
  }

  /** The pid of a container's running process. */
  pidOf(container: string): number | undefined {
    const s = this.runs.find((r) => r.name === container)?.state;
    return s?.kind === "running" ? s.pid : undefined;
  }

  hostPorts(): HostPort[] {
    return this.runs.flatMap((r) => r.ports);
  }

  start(): void {
    if (this.pod.spec?.initContainers?.length) {
      for (const r of this.runs) r.state = { kind: "waiting", reason: "CreateContainerConfigError", message: "the node agent does not run init containers" };
      this.finished = true;
      this.stopping = true;
      this.markDirty();
      return;
    }
    this.markDirty();
    void this.prepare(0);
  }

  /** A newer version of the pod object (from the watch). */
  update(pod: V1Pod): void {
    this.pod = pod;
    if (pod.metadata?.deletionTimestamp && !this.stopping) {
      const grace = pod.metadata.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
      void this.terminate(grace, true);
    }
  }

  /** The pod object is gone from the API server: stop its processes (nothing left to report). */
  podGone(): void {
    this.gone = true;
    if (!this.stopping) void this.terminate(this.pod.spec?.terminationGracePeriodSeconds ?? 30, false);
  }

  /** Agent shutdown: kill everything now. */
  async kill(): Promise<void> {
    this.gone = true;
    this.stopping = true;
    if (this.prepareTimer) clearTimeout(this.prepareTimer);
    for (const r of this.runs) {
      this.clearTimers(r);
      if (r.state.kind === "running") killGroup(r.state.pid, "SIGKILL");
    }
    await Promise.all(this.runs.map((r) => r.exited));
    this.release();
    this.resolveDone();
  }

  private async prepare(attempt: number): Promise<void> {
    if (this.stopping) return;
    const lookup: Lookup = {
      configMap: async (namespace, name) => {
        try {
          return await this.d.core.readNamespacedConfigMap({ namespace, name });
        } catch (err) {
          if (statusCode(err) === 404) return undefined;
          throw err;
        }
      },
      secret: async (namespace, name) => {
        try {
          return await this.d.core.readNamespacedSecret({ namespace, name });
        } catch (err) {
          if (statusCode(err) === 404) return undefined;
          throw err;
        }
      },
    };
    try {
      this.volumes ??= await materializeVolumes({
        core: this.d.core,
        pod: this.pod,
        podDir: this.dir,
        claimsDir: this.d.claimsDir,
        server: this.d.server,
        caPem: this.d.caPem,
      });
      const envs: Record<string, string>[] = [];
      for (const r of this.runs) envs.push(await containerEnv(this.pod, r.spec, lookup));
      for (const r of this.runs) {
        for (const p of r.spec.ports ?? []) r.ports.push({ name: p.name, containerPort: p.containerPort, hostPort: await this.d.allocatePort() });
      }
      await this.annotatePorts();
      if (this.stopping) return;
      this.runs.forEach((r, i) => {
        this.launch(r, envs[i]);
      });
    } catch (err) {
      const reason =
        err instanceof VolumeError ? "ContainerCreating" : err instanceof ContainerConfigError ? "CreateContainerConfigError" : "ContainerCreating";
      const message = (err as Error).message;
      for (const r of this.runs) if (r.state.kind === "waiting") r.state = { kind: "waiting", reason, message };
      if (attempt === 0 || attempt % 10 === 0) this.d.log(`${this.key}: not started yet (${reason}): ${message}`);
      this.markDirty();
      for (const r of this.runs) this.d.releasePort(...r.ports.map((p) => p.hostPort));
      for (const r of this.runs) r.ports = [];
      this.prepareTimer = setTimeout(() => void this.prepare(attempt + 1), Math.min(500 * 2 ** Math.min(attempt, 4), 5000));
    }
  }

  private async annotatePorts(): Promise<void> {
    const map: Record<string, number> = {};
    for (const r of this.runs) for (const p of r.ports) map[`${r.name}/${p.containerPort}`] = p.hostPort;
    if (Object.keys(map).length === 0 || this.annotated) return;
    try {
      const ops: unknown[] = [{ op: "test", path: "/metadata/uid", value: this.uid }];
      if (!this.pod.metadata?.annotations) ops.push({ op: "add", path: "/metadata/annotations", value: {} });
      ops.push({ op: "add", path: `/metadata/annotations/${HOST_PORTS_ANNOTATION.replace(/\//g, "~1")}`, value: JSON.stringify(map) });
      await this.d.core.patchNamespacedPod({ namespace: this.pod.metadata?.namespace ?? "default", name: this.pod.metadata?.name ?? "", body: ops });
      this.annotated = true;
    } catch (err) {
      this.d.log(`${this.key}: annotating host ports failed: ${(err as Error).message}`);
    }
  }

  private mountsFor(r: Run): Mount[] {
    const mounts: Mount[] = [];
    for (const m of r.spec.volumeMounts ?? []) {
      const base = this.volumes?.dirs.get(m.name);
      if (base === undefined) throw new ContainerConfigError(`volumeMount ${m.name}: no such volume`);
      const local = m.subPath ? join(base, m.subPath) : base;
      if (m.subPath && !existsSync(local)) mkdirSync(local, { recursive: true });
      mounts.push({ mountPath: m.mountPath, local });
    }
    if (this.volumes?.serviceAccount) mounts.push({ mountPath: SERVICE_ACCOUNT_MOUNT, local: this.volumes.serviceAccount.dir });
    mounts.push({ mountPath: r.spec.terminationMessagePath ?? "/dev/termination-log", local: join(this.dir, `termination-${r.name}.log`) });
    return mounts;
  }

  private launch(r: Run, env: Record<string, string>): void {
    if (this.stopping) return;
    let spec: ReturnType<typeof processSpec>;
    try {
      const mounts = this.mountsFor(r);
      const base: Record<string, string> = {
        PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
        HOME: this.dir,
        TMPDIR: join(this.dir, "tmp"),
        HOSTNAME: this.pod.metadata?.name ?? "",
      };
      if (this.volumes?.serviceAccount) base.KUBECONFIG = this.volumes.serviceAccount.kubeconfig;
      spec = processSpec(r.spec, env, { checkout: this.d.checkout, podDir: this.dir, mounts, ports: r.ports, base, overrides: this.d.extraEnv });
    } catch (err) {
      r.state = { kind: "waiting", reason: "CreateContainerConfigError", message: (err as Error).message };
      this.markDirty();
      return;
    }
    const logDir = join(this.dir, "logs", r.name);
    mkdirSync(logDir, { recursive: true });
    r.logPath = join(logDir, `${r.restartCount}.log`);
    const fd = openSync(r.logPath, "a");
    const startedAt = kubeTime();
    const child = spawn(spec.file, spec.args, { cwd: spec.cwd, env: spec.env, detached: true, stdio: ["ignore", fd, fd] });
    closeSync(fd);
    r.proc = child;
    const pid = child.pid;
    if (pid !== undefined) {
      this.d.track(pid);
      r.state = { kind: "running", startedAt, pid };
      r.everStarted = true;
      this.d.log(`${this.key}: started container ${r.name} as pid ${pid}: ${[spec.file, ...spec.args].join(" ")}`);
      if (!r.spec.readinessProbe) r.ready = true;
      else this.scheduleProbe(r, r.spec.readinessProbe, pid, true);
    }
    r.exited = new Promise<void>((resolve) => {
      let settled = false;
      const finish = (exitCode: number, signal: number | undefined, reason: string, message?: string) => {
        if (settled) return;
        settled = true;
        if (pid !== undefined) {
          this.d.untrack(pid);
          killGroup(pid, "SIGKILL"); // whatever the container left behind in its process group
        }
        this.clearTimers(r);
        r.proc = undefined;
        r.ready = false;
        r.state = {
          kind: "terminated",
          exitCode,
          signal,
          reason,
          message: message ?? this.terminationMessage(r, exitCode),
          startedAt,
          finishedAt: kubeTime(),
          pid,
        };
        this.d.log(`${this.key}: container ${r.name} (pid ${pid}) exited: ${reason}, exit code ${exitCode}${signal ? `, signal ${signal}` : ""}`);
        this.afterExit(r, env);
        this.markDirty();
        resolve();
      };
      child.once("error", (err) => finish(128, undefined, "StartError", err.message));
      child.once("exit", (code, sig) => {
        const signal = sig ? SIGNUM[sig] : undefined;
        const exitCode = code ?? 128 + (signal ?? 0);
        finish(exitCode, signal, exitCode === 0 ? "Completed" : "Error");
      });
    });
    this.markDirty();
  }

  /** terminationMessagePath's content, or with FallbackToLogsOnError the log tail of a failed container. */
  private terminationMessage(r: Run, exitCode: number): string | undefined {
    const file = join(this.dir, `termination-${r.name}.log`);
    try {
      const m = readFileSync(file, "utf8");
      if (m.trim() !== "") return m.slice(0, MAX_TERMINATION_MESSAGE);
    } catch {
      // not written
    }
    if (exitCode !== 0 && r.spec.terminationMessagePolicy === "FallbackToLogsOnError" && r.logPath) return tail(r.logPath, 80, 2048) || undefined;
    return undefined;
  }

  private afterExit(r: Run, env: Record<string, string>): void {
    // While stopping, terminate() awaits the exits itself.
    if (this.stopping || r.state.kind !== "terminated") return;
    const restart = this.policy === "Always" || (this.policy === "OnFailure" && r.state.exitCode !== 0);
    if (!restart) {
      const phase = podPhase(this.policy, this.runs, false);
      if (phase === "Succeeded" || phase === "Failed") {
        this.release();
        this.finished = true;
      }
      return;
    }
    const delay = Math.min(1000 * 2 ** r.restartCount, 30_000);
    r.restartTimer = setTimeout(() => {
      if (this.stopping) return;
      r.lastState = r.state;
      r.restartCount++;
      this.launch(r, env);
    }, delay);
  }

  private clearTimers(r: Run): void {
    if (r.restartTimer) clearTimeout(r.restartTimer);
    if (r.probeTimer) clearTimeout(r.probeTimer);
    r.restartTimer = undefined;
    r.probeTimer = undefined;
  }

  private scheduleProbe(r: Run, probe: V1Probe, pid: number, first: boolean): void {
    const delay = (first ? (probe.initialDelaySeconds ?? 0) : (probe.periodSeconds ?? 10)) * 1000;
    r.probeTimer = setTimeout(async () => {
      if (r.state.kind !== "running" || r.state.pid !== pid) return;
      const ok = await this.probe(r, probe);
      if (r.state.kind !== "running" || r.state.pid !== pid) return;
      if (ok) {
        r.probeFailures = 0;
        if (!r.ready) {
          r.ready = true;
          this.markDirty();
        }
      } else if (++r.probeFailures >= (probe.failureThreshold ?? 3) && r.ready) {
        r.ready = false;
        this.markDirty();
      }
      this.scheduleProbe(r, probe, pid, false);
    }, delay);
  }

  private probe(r: Run, p: V1Probe): Promise<boolean> {
    const timeout = (p.timeoutSeconds ?? 1) * 1000;
    if (p.httpGet) {
      const port = hostPortOf(p.httpGet.port as number | string, r.spec.ports, r.ports);
      return new Promise((resolve) => {
        const req = httpRequest({ host: "127.0.0.1", port, path: p.httpGet?.path ?? "/", method: "GET", timeout }, (res) => {
          res.resume();
          resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 400);
        });
        req.on("timeout", () => req.destroy());
        req.on("error", () => resolve(false));
        req.end();
      });
    }
    if (p.tcpSocket) {
      const port = hostPortOf(p.tcpSocket.port as number | string, r.spec.ports, r.ports);
      return new Promise((resolve) => {
        const s = connect({ host: "127.0.0.1", port: port ?? 0, timeout });
        s.once("connect", () => {
          s.destroy();
          resolve(true);
        });
        s.once("timeout", () => {
          s.destroy();
          resolve(false);
        });
        s.once("error", () => resolve(false));
      });
    }
    // exec and grpc probes are not run by the agent: the container counts as ready.
    return Promise.resolve(true);
  }

  /** SIGTERM every process group, SIGKILL after `graceSeconds`, then (deleteAfter) remove the pod object. */
  private async terminate(graceSeconds: number, deleteAfter: boolean): Promise<void> {
    this.stopping = true;
    if (this.prepareTimer) clearTimeout(this.prepareTimer);
    const running = this.runs.filter((r) => r.state.kind === "running");
    for (const r of this.runs) {
      this.clearTimers(r);
      if (r.state.kind === "waiting" && !r.everStarted) r.state = { kind: "waiting", reason: "PodTerminating" };
    }
    if (running.length > 0) this.d.log(`${this.key}: terminating (SIGTERM, grace ${graceSeconds} s)`);
    for (const r of running) if (r.state.kind === "running") killGroup(r.state.pid, "SIGTERM");
    const timer = setTimeout(
      () => {
        for (const r of this.runs) {
          if (r.state.kind === "running") {
            this.d.log(`${this.key}: ${r.name} still running after ${graceSeconds} s: SIGKILL`);
            killGroup(r.state.pid, "SIGKILL");
          }
        }
      },
      Math.max(0, graceSeconds * 1000),
    );
    await Promise.all(this.runs.map((r) => r.exited));
    clearTimeout(timer);
    this.release();
    this.markDirty();
    await this.flushed();
    if (deleteAfter && !this.gone) {
      try {
        await this.d.core.deleteNamespacedPod({
          namespace: this.pod.metadata?.namespace ?? "default",
          name: this.pod.metadata?.name ?? "",
          gracePeriodSeconds: 0,
          body: { gracePeriodSeconds: 0, preconditions: { uid: this.uid } },
        });
      } catch (err) {
        const code = statusCode(err);
        if (code !== 404 && code !== 409) this.d.log(`${this.key}: final delete failed: ${(err as Error).message}`);
      }
    }
    this.resolveDone();
  }

  private release(): void {
    for (const r of this.runs) {
      this.d.releasePort(...r.ports.map((p) => p.hostPort));
    }
  }

  private markDirty(): void {
    this.statusDirty = true;
    if (!this.statusWriting) this.statusWriting = this.writeStatusLoop();
  }

  private async flushed(): Promise<void> {
    while (this.statusWriting) await this.statusWriting;
  }

  private async writeStatusLoop(): Promise<void> {
    try {
      let failures = 0;
      while (this.statusDirty && !this.gone) {
        this.statusDirty = false;
        try {
          await this.writeStatus();
          failures = 0;
        } catch (err) {
          if (await this.objectGone(err)) {
            this.gone = true;
            break;
          }
          if (++failures % 10 === 1) this.d.log(`${this.key}: status update failed: ${(err as Error).message}`);
          this.statusDirty = true;
          await new Promise((r) => setTimeout(r, Math.min(200 * failures, 2000)));
        }
      }
    } finally {
      this.statusWriting = undefined;
    }
  }

  /** After a failed write: is our pod object gone (deleted, or replaced by a new pod of the same name)? */
  private async objectGone(err: unknown): Promise<boolean> {
    const code = statusCode(err);
    if (code === 404) return true;
    if (code !== 422 && code !== 409) return false;
    try {
      const p = await this.d.core.readNamespacedPod({ namespace: this.pod.metadata?.namespace ?? "default", name: this.pod.metadata?.name ?? "" });
      return p.metadata?.uid !== this.uid;
    } catch (e) {
      return statusCode(e) === 404;
    }
  }

  private async writeStatus(): Promise<void> {
    const stoppingDone = this.stopping && this.runs.every((r) => r.state.kind !== "running");
    const phase = this.finished && !this.stopping ? podPhase(this.policy, this.runs, false) : podPhase(this.policy, this.runs, stoppingDone);
    // A terminal phase never goes back (the API server refuses it).
    const finalPhase: PodPhase = this.lastPhase === "Succeeded" || this.lastPhase === "Failed" ? this.lastPhase : phase;
    const now = kubeTime();
    const conditions: V1PodCondition[] = podConditions(
      { phase: finalPhase, volumesReady: this.volumes !== undefined, containers: this.runs, startTime: this.startTime },
      this.pod.status?.conditions,
      now,
    );
    const status: Record<string, unknown> = {
      phase: finalPhase,
      conditions,
      hostIP: "127.0.0.1",
      hostIPs: [{ ip: "127.0.0.1" }],
      startTime: this.startTime,
      containerStatuses: this.runs.map(containerStatus),
    };
    if (this.runs.some((r) => r.everStarted)) {
      status.podIP = "127.0.0.1";
      status.podIPs = [{ ip: "127.0.0.1" }];
    }
    // The uid test keeps a stale runner from writing onto a new pod of the same name (rollout pods are
    // recreated under their old names).
    const ops = [
      { op: "test", path: "/metadata/uid", value: this.uid },
      ...Object.entries(status).map(([k, v]) => ({ op: "add", path: `/status/${k}`, value: v })),
    ];
    const updated = await this.d.core.patchNamespacedPodStatus({
      namespace: this.pod.metadata?.namespace ?? "default",
      name: this.pod.metadata?.name ?? "",
      body: ops,
    });
    this.lastPhase = finalPhase;
    if (updated?.metadata?.uid === this.uid) this.pod = { ...this.pod, status: updated.status };
  }
}
