// reconcile(namespace/name): read the job and its children from the informer caches, ask the pure planner
// what should change, and execute it — creates, updates, deletes, then the status and the Events. It keeps
// no memory between calls (level-triggered), so any number of runs, on any replica, converge on one state.
import { SpanStatusCode, trace } from "@opentelemetry/api";
import type { KubernetesObject, V1ObjectMeta } from "@kubernetes/client-node";
import { natsJobRef } from "../common/nats/names.ts";
import type { Defaults, JobObject } from "./desired.ts";
import { DEFAULTS } from "./desired.ts";
import { recordEvents } from "./events.ts";
import type { InformerSet } from "./informers.ts";
import { type Clients, createChild, deleteJob, deletePod, replaceConfigMapData, writeScale, writeStatus } from "./kube.ts";
import type { OperatorMetrics } from "./metrics.ts";
import { configMapName, jobKey, pvcName, serviceName, splitKey } from "./names.ts";
import { type JobEvent, type Observed, plan } from "./plan.ts";
import type { ProgressWatcher, RejectedProgress } from "./progress-watch.ts";
import { type SlowStartResult, slowStart } from "./slow-start.ts";

export interface ReconcileResult {
  requeueAfterMs?: number;
}

export interface ReconcilerOptions {
  defaults?: Defaults;
  /** Identity of this replica in Events. */
  host: string;
  log: (m: string) => void;
  metrics?: OperatorMetrics;
  now?: () => Date;
  /** The learners' progress from NATS KV; without it status comes from pod termination messages only. */
  progress?: ProgressWatcher;
}

const tracer = trace.getTracer("steppo-operator");

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
  observe(job: JobObject): Observed {
    const ns = job.metadata.namespace ?? "default";
    const mine = ownedBy(job.metadata.uid);
    const one = <T extends KubernetesObject>(o: T | undefined) => (o && mine(o) ? o : undefined);
    return {
      pods: this.caches.pods.list(ns).filter(mine),
      configMap: one(this.caches.configMaps.get(configMapName(job.metadata.name), ns)),
      service: one(this.caches.services.get(serviceName(job.metadata.name), ns)),
      pvc: one(this.caches.pvcs.get(pvcName(job.metadata.name), ns)),
      progress: this.o.progress?.latest(
        jobKey(ns, job.metadata.name),
        natsJobRef({ name: job.metadata.name, namespace: ns }, this.defaults.clusterId),
        job.spec.nats.url ?? this.defaults.natsUrl,
      ),
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
    // Gone: owner references let the garbage collector remove the children; only the progress watch is ours.
    if (!job || job.metadata.deletionTimestamp) {
      this.o.progress?.forget(key);
      return {};
    }
    const p = plan(job, this.observe(job), this.now(), this.defaults);
    const m = this.o.metrics;

    // Shared children before pods: a pod that mounts a missing ConfigMap or claim would not start.
    const pods = p.create.filter((o) => o.kind === "Pod");
    const others = p.create.filter((o) => o.kind !== "Pod");
    const created = await Promise.all(others.map((o) => createChild(this.c, namespace, o)));
    if (m) m.childrenCreated += created.filter(Boolean).length;
    // Pods in slow-start batches (1, 2, 4 …), stopping at the first failure: a job asking for many pods
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

    if (canonical(p.status) !== canonical(job.status ?? {})) await writeStatus(this.c, namespace, name, job.metadata.uid ?? "", p.status);
    if (p.scale && !(await writeScale(this.c, namespace, name, p.scale.from, p.scale.to))) {
      this.o.log(`${key}: autoscaler decision ${p.scale.from} → ${p.scale.to} not applied: replicas changed meanwhile`);
    }
    // Progress records the watch refused (a wrong type, out of range, too long): never in status, each told once.
    const events = [...p.events, ...(createFailure ? [createFailure] : []), ...(this.o.progress?.takeRejected(key) ?? []).map(rejectedProgressEvent)];
    if (events.length > 0) await recordEvents(this.c, job, events, this.o.host, this.o.log);
    // Re-queued with backoff by the controller; the next pass starts its batches at 1 again.
    if (pass.error !== undefined) throw pass.error;
    if (p.deleteJob) {
      this.o.log(`${key}: ttlSecondsAfterFinished elapsed, deleting the job`);
      await deleteJob(this.c, namespace, name);
      return {};
    }
    return p.requeueAfterMs !== undefined ? { requeueAfterMs: p.requeueAfterMs } : {};
  }
}
