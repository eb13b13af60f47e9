// The operator phase of the chaos bench: a `steppo operator` child process on a namespace of a REAL
// kube-apiserver (and a real nats-server for its finalizer's cleanup), SIGKILLed at seeded random points and
// restarted, while the bench keeps changing what it must reconcile: jobs created and deleted, replicas
// changed through the scale subresource, suspend toggled, a spec field edited (which replaces the pods).
// There is no kubelet, so pods stay Pending: the desired state is their existence. After each restart the
// bench polls the API server (bounded) until the observed state is exactly the desired one, and records the
// time; whatever still differs at the deadline is a violation.
import type { KubernetesObject, V1ObjectMeta, V1Pod } from "@kubernetes/client-node";
import { Rng } from "../../core/rng.ts";
import { GROUP, VERSION } from "../../crds/steppojob.ts";
import type { StepPOJobStatus } from "../../crds/steppojob-status.ts";
import { DEFAULTS, type Defaults, desiredConfigMap, type JobObject, specHash } from "../../operator/desired.ts";
import { FINALIZER } from "../../operator/finalizer.ts";
import { type Clients, loadKubeConfig, makeClients } from "../../operator/kube.ts";
import { configMapName, LABEL_JOB, learnerPodName, PLURAL, pvcName, rolloutPodName, serviceName } from "../../crds/names.ts";
import { NatsServer } from "../../test/support/nats-server.ts";
import { startHarness } from "../../test/support/operator-harness.ts";
import { type Proc, startSteppo } from "../../test/support/steppo-process.ts";

const NS = "chaos-op";
const IMAGE = "steppo:chaos";
const INITIAL_JOBS = 8;
/** Live jobs are kept in this range, so that deletes and creates both stay possible. */
const MIN_JOBS = 5;
const MAX_JOBS = 10;
const MAX_REPLICAS = 4;
/** A claim the bench pretends exists: jobs naming it get no PVC of their own. */
const EXISTING_CLAIM = "shared-checkpoints";
/** Longest wait for convergence after a restart: the operator's start (tsx, 2 busy cores) plus one resync. */
const CONVERGE_TIMEOUT_MS = 60_000;
const POLL_MS = 200;
/**
 * A mid-reconcile kill lands up to this long after the bench's changes: the operator turns a change into
 * children in about 0.1 s (bench/operator.ts), so a longer delay would mostly kill an idle operator.
 */
const MAX_RECONCILE_KILL_DELAY_MS = 200;
/** A during-startup kill lands this long after the restart: while it loads, lists, and works through the backlog. */
const STARTUP_KILL_DELAY_MS: [number, number] = [300, 2200];

const CHANGE_KINDS = ["create", "delete", "scale", "suspend", "edit-spec"] as const;
type ChangeKind = (typeof CHANGE_KINDS)[number];
/**
 * mid-reconcile: change, then kill while the operator works on it. while-down: kill, change, restart (the
 * new process finds the changes in its first list). during-startup: change, kill, restart, and kill the new
 * process again before it has caught up — two SIGKILLs, then a restart that must finish the job.
 */
const KILL_MODES = ["mid-reconcile", "while-down", "during-startup"] as const;
type KillMode = (typeof KILL_MODES)[number];

/** What the bench asked for, per job: the model the cluster is checked against (never read back from it). */
interface DesiredJob {
  uid: string;
  replicas: number;
  suspend: boolean;
  updates: number;
  ownClaim: boolean;
}

export interface OperatorFaultRecord {
  mode: KillMode;
  changes: string[];
  /** SIGKILLs in this fault (2 for during-startup). */
  kills: number;
  /** How long after the changes (mid-reconcile) or after the restart (during-startup) the last SIGKILL came; 0 for while-down. */
  killDelayMs: number;
  /**
   * Differences between the desired and the observed state just after the last SIGKILL (nothing changes them
   * while no operator runs): above 0, the kill left work undone that the next process had to pick up.
   */
  pendingAtKill: number;
  /** Seconds from the restart (spawn of the new process) until the observed state was the desired one. */
  convergedSeconds: number;
  /** Seconds from the SIGKILL until then. */
  sinceKillSeconds: number;
  /** Differences still there at the deadline (empty when it converged). */
  violations: string[];
}

export interface OperatorPhaseResult {
  operatorFaults: number;
  namespace: string;
  jobs: { initial: number; created: number; deleted: number; liveAtEnd: number };
  changesByKind: Record<ChangeKind, number>;
  modes: Record<KillMode, number>;
  initialConvergenceSeconds: number;
  /** Faults whose last SIGKILL left differences for the next process (see pendingAtKill). */
  faultsWithWorkPending: number;
  /** From the restart until converged and the new process settled (its start, ~2.5 s here, included). */
  convergenceSeconds: { p50: number; max: number };
  /** Children of deleted jobs left for the garbage collector (ConfigMap, Service, PVC; no controller-manager here). */
  leftForGarbageCollector: number;
  violations: string[];
  list: OperatorFaultRecord[];
  /** The whole phase, the API server's start included. */
  wallSeconds: number;
}

type Log = (line: string) => void;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const round = (x: number) => Math.round(x * 100) / 100;

/** The operator under test as a child process, as its Deployment would run it (leader election off). */
class OperatorProcess {
  proc: Proc | undefined;
  private starts = 0;

  constructor(private readonly args: string[]) {}

  start(): void {
    this.proc = startSteppo(`operator-${this.starts++}`, this.args);
  }

  /** The probe port it printed at start (it was given --port 0). */
  private port(): number | undefined {
    for (const l of this.proc?.lines ?? []) {
      const m = /serving probes and metrics on :(\d+)/.exec(l);
      if (m) return Number(m[1]);
    }
    return undefined;
  }

  /**
   * Caches synced and its work queue empty: the new process has seen every job and acted on it. Convergence
   * waits for this too, so that a state that was already right when the process started is checked again
   * after the process had its say (a restart that creates duplicates or deletes pods would show then).
   */
  async settled(): Promise<boolean> {
    const port = this.port();
    if (port === undefined) return false;
    try {
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
      if (ready.status !== 200) return false;
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      return /^steppo_operator_queue_depth 0$/m.test(metrics);
    } catch {
      return false; // not listening yet
    }
  }

  async kill(): Promise<void> {
    if (!this.proc) return;
    this.proc.kill("SIGKILL");
    await this.proc.exited;
  }
}

/** The bench's side of the API: the namespace's jobs and their children, and the changes it makes. */
class Cluster {
  constructor(readonly c: Clients) {}

  private readonly ref = { group: GROUP, version: VERSION, namespace: NS, plural: PLURAL };

  async createJob(name: string, d: Omit<DesiredJob, "uid">): Promise<string> {
    const spec = {
      rollout: { replicas: d.replicas },
      training: { updates: d.updates },
      runPolicy: { suspend: d.suspend },
      ...(d.ownClaim ? {} : { checkpoint: { existingClaim: EXISTING_CLAIM } }),
    };
    const body = { apiVersion: `${GROUP}/${VERSION}`, kind: "StepPOJob", metadata: { name, namespace: NS }, spec };
    const created = (await this.c.custom.createNamespacedCustomObject({ ...this.ref, body })) as KubernetesObject;
    return created.metadata!.uid!;
  }

  async deleteJob(name: string): Promise<void> {
    await this.c.custom.deleteNamespacedCustomObject({ ...this.ref, name });
  }

  /** Through the scale subresource, as `kubectl scale` or an HPA would. */
  async scale(name: string, replicas: number): Promise<void> {
    await this.c.custom.patchNamespacedCustomObjectScale({ ...this.ref, name, body: [{ op: "replace", path: "/spec/replicas", value: replicas }] });
  }

  async patchSpec(name: string, path: string, value: unknown): Promise<void> {
    await this.c.custom.patchNamespacedCustomObject({ ...this.ref, name, body: [{ op: "add", path, value }] });
  }

  async snapshot(): Promise<Snapshot> {
    const [jobs, pods, configMaps, services, pvcs] = await Promise.all([
      this.c.custom.listNamespacedCustomObject({ ...this.ref }) as Promise<{ items: ApiJob[] }>,
      this.c.core.listNamespacedPod({ namespace: NS }),
      this.c.core.listNamespacedConfigMap({ namespace: NS, labelSelector: LABEL_JOB }),
      this.c.core.listNamespacedService({ namespace: NS, labelSelector: LABEL_JOB }),
      this.c.core.listNamespacedPersistentVolumeClaim({ namespace: NS, labelSelector: LABEL_JOB }),
    ]);
    return {
      jobs: new Map(jobs.items.map((j) => [j.metadata.name, j])),
      pods: pods.items,
      // List items come without kind; the checks need it.
      shared: [
        ...configMaps.items.map((x) => ({ ...x, kind: "ConfigMap" })),
        ...services.items.map((x) => ({ ...x, kind: "Service" })),
        ...pvcs.items.map((x) => ({ ...x, kind: "PersistentVolumeClaim" })),
      ],
    };
  }
}

type ApiJob = JobObject & { metadata: JobObject["metadata"] & { generation?: number; finalizers?: string[] }; status?: StepPOJobStatus };

interface Snapshot {
  jobs: Map<string, ApiJob>;
  pods: V1Pod[];
  /** ConfigMaps, Services and PVCs carrying the job label. */
  shared: (KubernetesObject & { kind: string })[];
}

function controllerUid(o: { metadata?: V1ObjectMeta }): string | undefined {
  return o.metadata?.ownerReferences?.find((r) => r.controller)?.uid;
}

/**
 * Every difference between what the bench asked for and what the API server holds; [] is converged.
 * A live job: its object (our uid, finalizer on, observedGeneration caught up, no learner restart, the
 * Suspended condition and rollout.desired matching), exactly its pods (learner-0 plus rollout-0…replicas-1,
 * none when suspended, each labelled with the current spec hash, none terminating), its ConfigMap holding the
 * current job file, its Service, and its PVC exactly when it has no existing claim. A deleted job: gone, no
 * pods left; its shared children may remain only as the garbage collector's (owned by the deleted uid).
 * Anything else in the namespace is an orphan.
 */
export function differences(s: Snapshot, live: Map<string, DesiredJob>, deleted: Map<string, string>, defaults: Defaults): string[] {
  const out: string[] = [];
  const known = new Set<string>([...[...live.values()].map((d) => d.uid), ...deleted.values()]);
  for (const [name, d] of live) out.push(...liveJobDifferences(name, d, s, defaults));
  for (const [name, uid] of deleted) {
    if (s.jobs.get(name)?.metadata.uid === uid) out.push(`${name}: deleted but still there (finalizer ${s.jobs.get(name)?.metadata.finalizers?.join(",")})`);
    const pods = s.pods.filter((p) => controllerUid(p) === uid).map((p) => p.metadata!.name!);
    if (pods.length > 0) out.push(`${name}: deleted, pods left: ${pods.join(", ")}`);
  }
  for (const o of [...s.pods, ...s.shared]) {
    const uid = controllerUid(o);
    if (!uid || !known.has(uid)) out.push(`orphan ${o.kind ?? "Pod"} ${o.metadata?.name} (controller ${uid ?? "none"})`);
  }
  return out;
}

function liveJobDifferences(name: string, d: DesiredJob, s: Snapshot, defaults: Defaults): string[] {
  const job = s.jobs.get(name);
  if (!job || job.metadata.uid !== d.uid) return [`${name}: missing`];
  const out: string[] = [];
  const st = job.status ?? {};
  if (job.spec.rollout.replicas !== d.replicas || Boolean(job.spec.runPolicy.suspend) !== d.suspend) out.push(`${name}: spec is not what the bench wrote`);
  if (!job.metadata.finalizers?.includes(FINALIZER)) out.push(`${name}: no finalizer`);
  if (st.observedGeneration !== job.metadata.generation) out.push(`${name}: observedGeneration ${st.observedGeneration} of ${job.metadata.generation}`);
  if ((st.restarts ?? 0) !== 0) out.push(`${name}: restarts ${st.restarts} (no learner ever failed)`);
  const suspended = st.conditions?.find((c) => c.type === "Suspended")?.status === "True";
  if (suspended !== d.suspend) out.push(`${name}: Suspended condition ${suspended}, want ${d.suspend}`);
  const wantDesired = d.suspend ? 0 : d.replicas;
  if (st.rollout?.desired !== wantDesired) out.push(`${name}: status.rollout.desired ${st.rollout?.desired}, want ${wantDesired}`);

  const pods = s.pods.filter((p) => controllerUid(p) === d.uid);
  const want = d.suspend ? [] : [learnerPodName(name, 0), ...Array.from({ length: d.replicas }, (_, i) => rolloutPodName(name, i))];
  const have = pods.map((p) => p.metadata!.name!).sort();
  if (have.join() !== [...want].sort().join()) out.push(`${name}: pods [${have.join(", ")}], want [${want.join(", ")}]`);
  const hash = specHash(job, defaults);
  for (const p of pods) {
    if (p.metadata?.deletionTimestamp) out.push(`${name}: pod ${p.metadata.name} terminating`);
    if (p.metadata?.labels?.["steppo.dev/spec-hash"] !== hash) out.push(`${name}: pod ${p.metadata?.name} has an outdated spec hash`);
  }

  const mine = (kind: string, n: string) => s.shared.filter((o) => o.kind === kind && o.metadata?.name === n && controllerUid(o) === d.uid);
  const cm = mine("ConfigMap", configMapName(name));
  if (cm.length !== 1) out.push(`${name}: ${cm.length} ConfigMaps`);
  else if ((cm[0] as { data?: Record<string, string> }).data?.["job.yaml"] !== desiredConfigMap(job).data?.["job.yaml"])
    out.push(`${name}: ConfigMap job file outdated`);
  if (mine("Service", serviceName(name)).length !== 1) out.push(`${name}: Service missing`);
  const pvcs = mine("PersistentVolumeClaim", pvcName(name)).length;
  if (pvcs !== (d.ownClaim ? 1 : 0)) out.push(`${name}: ${pvcs} PVCs, want ${d.ownClaim ? 1 : 0}`);
  return out;
}

/** Polls until there is no difference or the deadline passes; returns the seconds taken and what was left. */
async function converge(
  operator: OperatorProcess,
  cluster: Cluster,
  check: (s: Snapshot) => string[],
  from: number,
): Promise<{ seconds: number; left: string[] }> {
  const deadline = Date.now() + CONVERGE_TIMEOUT_MS;
  let left: string[] = ["not polled yet"];
  while (Date.now() < deadline) {
    try {
      const settled = await operator.settled();
      const diff = check(await cluster.snapshot());
      left = settled ? diff : ["the operator is not ready or its queue is not empty", ...diff];
    } catch (err) {
      left = [`snapshot failed: ${(err as Error).message}`];
    }
    if (left.length === 0) break;
    await sleep(POLL_MS);
  }
  return { seconds: (Date.now() - from) / 1000, left };
}

/** The bench's changes between faults, applied to the cluster and to its model together. */
class Changer {
  private next = 0;
  readonly byKind = Object.fromEntries(CHANGE_KINDS.map((k) => [k, 0])) as Record<ChangeKind, number>;
  created = 0;

  constructor(
    private readonly cluster: Cluster,
    private readonly rng: Rng,
    readonly live: Map<string, DesiredJob>,
    readonly deleted: Map<string, string>,
  ) {}

  async create(): Promise<string> {
    const name = `job-${this.next++}`;
    const d = { replicas: 1 + this.rng.int(3), suspend: false, updates: 10 + this.rng.int(90), ownClaim: this.rng.next() < 0.6 };
    this.live.set(name, { ...d, uid: await this.cluster.createJob(name, d) });
    this.created++;
    return `create ${name} (replicas ${d.replicas}${d.ownClaim ? ", own PVC" : ", existing claim"})`;
  }

  /** One change of a random kind the current population allows. */
  async random(): Promise<string> {
    const kinds = CHANGE_KINDS.filter((k) => (k !== "create" || this.live.size < MAX_JOBS) && (k !== "delete" || this.live.size > MIN_JOBS));
    const kind = kinds[this.rng.int(kinds.length)];
    this.byKind[kind]++;
    if (kind === "create") return this.create();
    const names = [...this.live.keys()];
    const name = names[this.rng.int(names.length)];
    const d = this.live.get(name)!;
    switch (kind) {
      case "delete":
        await this.cluster.deleteJob(name);
        this.live.delete(name);
        this.deleted.set(name, d.uid);
        return `delete ${name}`;
      case "scale": {
        // Never the same value: a no-op would not test anything.
        const to = (d.replicas + 1 + this.rng.int(MAX_REPLICAS)) % (MAX_REPLICAS + 1);
        await this.cluster.scale(name, to);
        const from = d.replicas;
        d.replicas = to;
        return `scale ${name} ${from} → ${to}`;
      }
      case "suspend":
        d.suspend = !d.suspend;
        await this.cluster.patchSpec(name, "/spec/runPolicy/suspend", d.suspend);
        return `${d.suspend ? "suspend" : "resume"} ${name}`;
      default:
        // A field in the pods' spec hash: the ConfigMap is rewritten and every pod replaced.
        d.updates += 1 + this.rng.int(20);
        await this.cluster.patchSpec(name, "/spec/training/updates", d.updates);
        return `edit ${name} training.updates → ${d.updates}`;
    }
  }
}

interface FaultContext {
  operator: OperatorProcess;
  cluster: Cluster;
  changer: Changer;
  rng: Rng;
  check: (s: Snapshot) => string[];
}

async function changes(x: FaultContext): Promise<string[]> {
  const n = 1 + x.rng.int(3);
  const out: string[] = [];
  for (let k = 0; k < n; k++) out.push(await x.changer.random());
  return out;
}

/** The operator is dead now: whatever differs stays as it is until the next process starts. */
async function pending(x: FaultContext): Promise<number> {
  return x.check(await x.cluster.snapshot()).length;
}

/** One fault of the given mode, then a restart and the wait for convergence. */
async function injectFault(x: FaultContext, mode: KillMode): Promise<OperatorFaultRecord> {
  let made: string[];
  let killDelayMs = 0;
  let kills = 1;
  let killedAt: number;
  if (mode === "while-down") {
    killedAt = Date.now();
    await x.operator.kill();
    made = await changes(x);
  } else {
    made = await changes(x);
    if (mode === "during-startup") {
      await x.operator.kill();
      x.operator.start();
      kills++;
      killDelayMs = STARTUP_KILL_DELAY_MS[0] + x.rng.int(STARTUP_KILL_DELAY_MS[1] - STARTUP_KILL_DELAY_MS[0]);
    } else killDelayMs = x.rng.int(MAX_RECONCILE_KILL_DELAY_MS);
    await sleep(killDelayMs);
    killedAt = Date.now();
    await x.operator.kill();
  }
  const pendingAtKill = await pending(x);
  const restartedAt = Date.now();
  x.operator.start();
  const r = await converge(x.operator, x.cluster, x.check, restartedAt);
  return {
    mode,
    kills,
    changes: made,
    killDelayMs,
    pendingAtKill,
    convergedSeconds: round(r.seconds),
    sinceKillSeconds: round((Date.now() - killedAt) / 1000),
    violations: r.left,
  };
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export async function runOperatorPhase(o: { seed: number; faults: number; log: Log }): Promise<OperatorPhaseResult> {
  const phaseStart = Date.now();
  const [h, nats] = await Promise.all([startHarness(), NatsServer.start()]);
  const defaults: Defaults = { ...DEFAULTS, image: IMAGE, natsUrl: nats.url };
  const operator = new OperatorProcess([
    "operator",
    "--kubeconfig",
    h.cluster.kubeconfigPath,
    "--namespace",
    NS,
    "--no-leader-elect",
    "--port",
    "0",
    "--image",
    IMAGE,
    "--nats",
    nats.url,
  ]);
  try {
    const cluster = new Cluster(makeClients(loadKubeConfig(h.cluster.kubeconfigPath)));
    await cluster.c.core.createNamespace({ body: { metadata: { name: NS } } });
    const rng = new Rng(o.seed);
    const changer = new Changer(cluster, rng, new Map(), new Map());
    const check = (s: Snapshot) => differences(s, changer.live, changer.deleted, defaults);

    const t0 = Date.now();
    operator.start();
    for (let i = 0; i < INITIAL_JOBS; i++) await changer.create();
    const initial = await converge(operator, cluster, check, t0);
    if (initial.left.length > 0) throw new Error(`the operator never converged on the ${INITIAL_JOBS} initial jobs: ${initial.left.slice(0, 10).join("; ")}`);
    o.log(`operator phase: ${INITIAL_JOBS} jobs converged in ${initial.seconds.toFixed(1)} s; ${o.faults} operator SIGKILLs planned`);

    const list: OperatorFaultRecord[] = [];
    const faults = { operator, cluster, changer, rng, check };
    while (list.reduce((n, f) => n + f.kills, 0) < o.faults) {
      const rec = await injectFault(faults, KILL_MODES[rng.int(KILL_MODES.length)]);
      list.push(rec);
      o.log(
        `operator fault ${list.length}: ${rec.kills} SIGKILL ${rec.mode}${rec.mode === "while-down" ? "" : ` (+${rec.killDelayMs} ms)`}, ` +
          `${rec.pendingAtKill} differences pending [${rec.changes.join("; ")}] → ` +
          (rec.violations.length === 0
            ? `converged ${rec.convergedSeconds.toFixed(1)} s after the restart`
            : `NOT converged: ${rec.violations.slice(0, 5).join("; ")}`),
      );
    }

    const final = await cluster.snapshot();
    const deletedUids = new Set(changer.deleted.values());
    const secs = list
      .filter((f) => f.violations.length === 0)
      .map((f) => f.convergedSeconds)
      .sort((a, b) => a - b);
    return {
      operatorFaults: list.reduce((n, f) => n + f.kills, 0),
      namespace: NS,
      jobs: { initial: INITIAL_JOBS, created: changer.created - INITIAL_JOBS, deleted: changer.deleted.size, liveAtEnd: changer.live.size },
      changesByKind: changer.byKind,
      modes: Object.fromEntries(KILL_MODES.map((m) => [m, list.filter((f) => f.mode === m).length])) as Record<KillMode, number>,
      initialConvergenceSeconds: round(initial.seconds),
      faultsWithWorkPending: list.filter((f) => f.pendingAtKill > 0).length,
      convergenceSeconds: { p50: quantile(secs, 0.5), max: secs.at(-1) ?? 0 },
      leftForGarbageCollector: final.shared.filter((x) => deletedUids.has(controllerUid(x) ?? "")).length,
      violations: list.flatMap((f, i) => f.violations.map((v) => `fault ${i + 1}: ${v}`)),
      list,
      wallSeconds: round((Date.now() - phaseStart) / 1000),
    };
  } finally {
    await operator.kill();
    await Promise.all([h.stop(), nats.dispose()]);
  }
}
