// reconcile(namespace/name): read the job and its children from the informer caches, ask the pure planner
// what should change, and execute it — creates, updates, deletes, then the status and the Events. It keeps
// no memory between calls (level-triggered), so any number of runs, on any replica, converge on one state.
import { SpanStatusCode, trace } from "@opentelemetry/api";
import type { KubernetesObject, V1ObjectMeta, V1Pod } from "@kubernetes/client-node";
import { natsJobRef } from "../core/nats-names.ts";
import { redactUrl } from "../crds/secrets.ts";
import type { Defaults, JobObject } from "./desired.ts";
import { DEFAULTS } from "./desired.ts";
import { recordEvents } from "./events.ts";
import type { InformerSet } from "./informers.ts";
import { cleanupStatus, FINALIZER, hasFinalizer, planFinalize } from "./finalizer.ts";
import { addFinalizer, type Clients, createChild, deleteJob, deletePod, removeFinalizer, replaceConfigMapData, writeScale, writeStatus } from "./kube.ts";
import type { OperatorMetrics } from "./metrics.ts";
import type { Log } from "./log.ts";
import type { NatsCleaner } from "./nats-cleanup.ts";
import { configMapName, jobKey, pvcName, serviceName, splitKey } from "../crds/names.ts";
import { type JobEvent, type Observed, plan } from "./plan.ts";
import { byRole } from "./plan/pods.ts";
import type { ProgressWatcher, RejectedProgress } from "./progress-watch.ts";
import { type SlowStartResult, slowStart } from "./slow-start.ts";

export interface ReconcileResult {
  requeueAfterMs?: number;
}

export interface ReconcilerOptions {
  defaults?: Defaults;
  /** Identity of this replica in Events. */
  host: string;
  log: Log;
  metrics?: OperatorMetrics;
  now?: () => Date;
  /** The learners' progress from NATS KV; without it status comes from pod termination messages only. */
  progress?: ProgressWatcher;
  /** Deletes a deleted job's NATS resources before its finalizer goes; without it no finalizer is added (one already there is removed). */
  cleaner?: NatsCleaner;
}

const tracer = trace.getTracer("steppo-operator");

/** A learner pod of the job has started (Running, or already finished): it writes progress from then on. */
function learnerStarted(pods: readonly V1Pod[]): boolean {
  return byRole(pods, "learner").some((p) => p.status?.phase !== undefined && p.status.phase !== "Pending");
}

function ownedBy(uid: string | undefined) {
  return (o: { metadata?: V1ObjectMeta }) => uid !== undefined && (o.metadata?.ownerReferences ?? []).some((r) => r.uid === uid && r.controller);
}

/** Serialises with sorted keys, so two equal statuses compare equal whatever order the server returned. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x) =>
    x && typeof x === "object" && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : 1))) : x,
  );
}

function rejectedProgressEvent(r: RejectedProgress): JobEvent {
  return {
    type: "Warning",
    reason: "InvalidLearnerProgress",
    message: `learner progress (KV revision ${r.revision}) dropped, status keeps the last valid one: ${r.problem}`,
  };
}

function createFailureEvent(pass: SlowStartResult, wanted: number): JobEvent {
  const why = pass.error instanceof Error ? pass.error.message : String(pass.error);
  return {
    type: "Warning",
    reason: "FailedCreate",
    message: `created ${pass.succeeded} of ${wanted} pod(s); stopped after a failed batch (${pass.skipped} not tried this pass): ${why}`,
  };
}

export class Reconciler {
  private readonly defaults: Defaults;
  private readonly now: () => Date;

  constructor(
    private readonly c: Clients,
    private readonly caches: InformerSet,
    private readonly o: ReconcilerOptions,
  ) {
    this.defaults = o.defaults ?? DEFAULTS;
    this.now = o.now ?? (() => new Date());
  }

  /** What the cache holds for this job: children matched by owner uid, not only by name or label. */
  observe(job: JobObject, o: { progress?: boolean } = {}): Observed {
    const ns = job.metadata.namespace ?? "default";
    const key = jobKey(ns, job.metadata.name);
    const mine = ownedBy(job.metadata.uid);
    const one = <T extends KubernetesObject>(o: T | undefined) => (o && mine(o) ? o : undefined);
    const pods = this.caches.pods.list(ns).filter(mine);
    // The progress watch starts once a learner pod has left Pending, not with the job: the learner creates
    // the job's KV bucket itself when it starts, and opening it here first put a JetStream stream and
    // consumer on the NATS server for every job the moment it was created — queued ones (Kueue, suspend)
    // included — and ~40 ms on each new job's way to its pods (bench operator). A watch once started is
    // read whatever the pods do next, so a replaced learner does not blank the status.
    const watch = (o.progress ?? true) && (learnerStarted(pods) || this.o.progress?.isWatching(key) === true);
    return {
      pods,
      configMap: one(this.caches.configMaps.get(configMapName(job.metadata.name), ns)),
      service: one(this.caches.services.get(serviceName(job.metadata.name), ns)),
      pvc: one(this.caches.pvcs.get(pvcName(job.metadata.name), ns)),
      progress: watch
        ? this.o.progress?.latest(
            key,
            natsJobRef({ name: job.metadata.name, namespace: ns }, this.defaults.clusterId),
            job.spec.nats.url ?? this.defaults.natsUrl,
          )
        : undefined,
    };
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    return tracer.startActiveSpan("reconcile", { attributes: { "steppo.job": key } }, async (span) => {
      try {
        return await this.run(key);
      } catch (err) {
        span.recordException(err as Error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
        throw err;
      } finally {
        span.end();
      }
    });
  }

  private async run(key: string): Promise<ReconcileResult> {
    const { namespace, name } = splitKey(key);
    const job = this.caches.jobs.get(name, namespace) as JobObject | undefined;
    if (!job) {
      this.o.progress?.forget(key);
      return {};
    }
    if (job.metadata.deletionTimestamp) return this.finalize(key, job);
    const p = plan(job, this.observe(job), this.now(), this.defaults);
    const m = this.o.metrics;

    // Shared children before pods: a pod that mounts a missing ConfigMap or claim would not start. The
    // finalizer goes on alongside them, so before any pod (what makes NATS resources) exists: nothing the
    // job makes can outlive it, and it costs no extra round trip.
    const finalizer = this.o.cleaner && !hasFinalizer(job) ? addFinalizer(this.c, namespace, name, job.metadata, FINALIZER) : undefined;
    const pods = p.create.filter((o) => o.kind === "Pod");
    const others = p.create.filter((o) => o.kind !== "Pod");
    const [created, finalized] = await Promise.all([Promise.all(others.map((o) => createChild(this.c, namespace, o))), finalizer]);
    if (m) m.childrenCreated += created.filter(Boolean).length;
    // The job changed since the cache saw it: no pods without the finalizer; the newer version's event brings it back.
    if (finalizer && finalized === undefined) return {};
    // The status is computed from `job`; our own finalizer patch is the one change since, so the status is
    // written against the version it made (against job's own it would always be refused as stale).
    const seen = { uid: job.metadata.uid, resourceVersion: finalized ?? job.metadata.resourceVersion };
    // Pods in slow-start batches (4, 8, 16 …), stopping at the first failure: a job asking for many pods
    // that all fail the same way costs a few requests, not one per pod, per pass.
    let podsCreated = 0;
    const pass = await slowStart(pods, async (o) => {
      if (await createChild(this.c, namespace, o)) podsCreated++;
    });
    if (m) m.childrenCreated += podsCreated;
    const createFailure = pass.error === undefined ? undefined : createFailureEvent(pass, pods.length);
    for (const cm of p.update) await replaceConfigMapData(this.c, namespace, cm.metadata!.name!, cm.data ?? {});
    const deleted = await Promise.all(p.deletePods.map((n) => deletePod(this.c, namespace, n)));
    if (m) m.podsDeleted += deleted.filter(Boolean).length;

    // A status computed from a job the cache had not refreshed yet is refused (false); so are the plan's Events,
    // which tell the same stale story. The newer version's watch event brings the job back to decide again.
    const written = await this.writeStatusIfChanged(namespace, name, seen, job.status, p.status);
    // Facts of this pass are told whatever the status: a failed create, and progress records the watch refused
    // (a wrong type, out of range, too long: never in status, each told once).
    const facts = [...(createFailure ? [createFailure] : []), ...(this.o.progress?.takeRejected(key) ?? []).map(rejectedProgressEvent)];
    const events = [...(written ? p.events : []), ...facts];
    if (events.length > 0) await recordEvents(this.c, job, events, this.o.host, this.o.log);
    if (written && p.scale && !(await writeScale(this.c, namespace, name, p.scale.from, p.scale.to))) {
      this.o.log(`${key}: autoscaler decision ${p.scale.from} → ${p.scale.to} not applied: replicas changed meanwhile`);
    }
    // Re-queued with backoff by the controller; the next pass starts its batches at 1 again.
    if (pass.error !== undefined) throw pass.error;
    if (!written) return {};
    if (p.deleteJob) {
      this.o.log(`${key}: ttlSecondsAfterFinished elapsed, deleting the job`);
      await deleteJob(this.c, namespace, name);
      return {};
    }
    return p.requeueAfterMs !== undefined ? { requeueAfterMs: p.requeueAfterMs } : {};
  }

  /**
   * Writes `next` unless it equals `current` → false when the write was refused as stale (counted): the
   * newer version's watch event brings the job back to the queue to decide again.
   */
  private async writeStatusIfChanged(
    namespace: string,
    name: string,
    seen: { uid?: string; resourceVersion?: string },
    current: JobObject["status"],
    next: NonNullable<JobObject["status"]>,
  ): Promise<boolean> {
    if (canonical(next) === canonical(current ?? {})) return true;
    if (await writeStatus(this.c, namespace, name, seen, next)) return true;
    if (this.o.metrics) this.o.metrics.staleStatusWrites++;
    return false;
  }

  /**
   * A deleted job: its pods go first (their delete events bring the job back here), then its NATS resources,
   * then the finalizer. A NATS failure is reported (condition + Event) and thrown, so the work queue retries
   * with backoff; the annotation steppo.dev/skip-nats-cleanup=true skips NATS altogether.
   */
  private async finalize(key: string, job: JobObject): Promise<ReconcileResult> {
    const { namespace, name } = splitKey(key);
    // The watch would re-create the KV bucket the cleanup deletes.
    this.o.progress?.forget(key);
    // Without a cleaner (natsCleanup off) a finalizer an earlier operator added still goes, NATS untouched.
    if (!hasFinalizer(job)) return {};
    const f = planFinalize(job, this.observe(job, { progress: false }).pods);
    const deleted = await Promise.all(f.deletePods.map((n) => deletePod(this.c, namespace, n)));
    if (this.o.metrics) this.o.metrics.podsDeleted += deleted.filter(Boolean).length;
    if (f.podsLeft > 0) return {};
    let problem: string | undefined;
    if (f.cleanNats && this.o.cleaner) {
      const url = job.spec.nats.url ?? this.defaults.natsUrl;
      try {
        const gone = await this.o.cleaner.cleanup(natsJobRef({ name, namespace }, this.defaults.clusterId), url);
        if (gone.length > 0) this.o.log(`${key}: deleted NATS streams ${gone.join(", ")}`);
      } catch (err) {
        problem = `${redactUrl(url)}: ${(err as Error).message}`;
      }
    }
    const s = cleanupStatus(job, problem, this.now());
    if (!(await this.writeStatusIfChanged(namespace, name, job.metadata, job.status, s.status))) return {};
    if (s.events.length > 0) await recordEvents(this.c, job, s.events, this.o.host, this.o.log);
    if (problem !== undefined) throw new Error(`NATS cleanup of ${key} failed: ${problem}`);
    await removeFinalizer(this.c, namespace, name, job.metadata.finalizers ?? [], FINALIZER);
    return {};
  }
}
