// Wires the pieces: informer events become queue keys (a child's event queues its controlling job), and
// a few workers take keys off the queue and reconcile them. Errors re-queue the key with backoff; a plan
// that needs a later look (deadline, TTL) re-queues after exactly that delay. Nothing polls.
import type { KubernetesObject } from "@kubernetes/client-node";
import type { Defaults } from "./desired.ts";
import { type InformerSet, makeInformers, startInformers, stopInformers } from "./informers.ts";
import type { Clients } from "./kube.ts";
import { OperatorMetrics } from "./metrics.ts";
import { JOB_KIND, jobKey } from "../crds/names.ts";
import { type Log, withFields } from "./log.ts";
import { JetStreamCleaner, type NatsCleaner } from "./nats-cleanup.ts";
import { WorkQueue } from "./queue.ts";
import { ProgressWatcher } from "./progress-watch.ts";
import { Reconciler } from "./reconciler.ts";

/**
 * Concurrent reconciles by default. A reconcile is a few sequential API round trips and almost no CPU, so
 * workers are cheap awaits, not threads: with 2, a burst of new jobs queued behind each other's round trips
 * (bench operator: ~10 jobs/s arriving, ~3 jobs/s served, create→children p50 ~1 s). The queue still gives
 * each job to one worker at a time.
 */
export const DEFAULT_RECONCILE_WORKERS = 16;

export interface ControllerOptions {
  namespace?: string;
  workers?: number;
  defaults?: Defaults;
  host: string;
  log: Log;
  metrics?: OperatorMetrics;
  /** Watch each job's learner progress in its NATS KV bucket (default true). */
  watchProgress?: boolean;
  natsCredsFile?: string;
  /**
   * Put the steppo.dev/cleanup finalizer on jobs and delete a deleted job's NATS resources before it goes
   * (default true).
   */
  natsCleanup?: boolean;
}

export class Controller {
  readonly queue = new WorkQueue();
  readonly caches: InformerSet;
  readonly reconciler: Reconciler;
  readonly metrics: OperatorMetrics;
  readonly progress?: ProgressWatcher;
  readonly cleaner?: NatsCleaner;
  private running: Promise<void>[] = [];
  private synced = false;

  constructor(
    c: Clients,
    private readonly o: ControllerOptions,
  ) {
    this.metrics = o.metrics ?? new OperatorMetrics();
    this.caches = makeInformers(c, {
      namespace: o.namespace,
      onError: (what, err) => {
        this.metrics.watchErrors++;
        o.log(`watch ${what}: ${(err as Error)?.message ?? String(err)} (restarting)`, { level: "warn", component: "informer" });
      },
    });
    if (o.watchProgress ?? true) {
      const log = withFields(o.log, { component: "progress-watch" });
      this.progress = new ProgressWatcher({ onChange: (key) => this.queue.add(key), log, credsFile: o.natsCredsFile });
    }
    if (o.natsCleanup ?? true) this.cleaner = new JetStreamCleaner({ log: withFields(o.log, { component: "cleanup" }), credsFile: o.natsCredsFile });
    this.reconciler = new Reconciler(c, this.caches, {
      defaults: o.defaults,
      host: o.host,
      log: withFields(o.log, { component: "reconciler" }),
      metrics: this.metrics,
      progress: this.progress,
      cleaner: this.cleaner,
    });
    this.metrics.queueDepth = () => this.queue.length;
    this.metrics.jobsByPhase = () => {
      const m = new Map<string, number>();
      for (const j of this.caches.jobs.list()) {
        const phase = (j as { status?: { phase?: string } }).status?.phase ?? "Pending";
        m.set(phase, (m.get(phase) ?? 0) + 1);
      }
      return m;
    };
    const enqueueJob = (j: KubernetesObject) => this.queue.add(jobKey(j.metadata?.namespace ?? "default", j.metadata?.name ?? ""));
    const enqueueOwner = (o: KubernetesObject) => {
      const ref = o.metadata?.ownerReferences?.find((r) => r.controller && r.kind === JOB_KIND);
      if (ref) this.queue.add(jobKey(o.metadata?.namespace ?? "default", ref.name));
    };
    this.caches.jobs.on("add", enqueueJob);
    this.caches.jobs.on("update", enqueueJob);
    for (const inf of [this.caches.pods, this.caches.services, this.caches.configMaps, this.caches.pvcs] as const) {
      (inf as InformerSet["pods"]).on("add", enqueueOwner);
      (inf as InformerSet["pods"]).on("update", enqueueOwner);
      (inf as InformerSet["pods"]).on("delete", enqueueOwner);
    }
  }

  get ready(): boolean {
    return this.synced;
  }

  /** Starts the informers, waits for their caches, then the workers. */
  async start(): Promise<void> {
    await startInformers(this.caches);
    this.synced = true;
    // The initial list queued every job through "add"; workers start only on synced caches so the first
    // reconcile of a job already sees the children a previous operator created (no duplicates).
    const n = this.o.workers ?? DEFAULT_RECONCILE_WORKERS;
    for (let i = 0; i < n; i++) this.running.push(this.worker());
    this.o.log(`controller started: ${this.caches.jobs.list().length} job(s) in cache, ${n} worker(s)`, { component: "controller" });
  }

  async stop(): Promise<void> {
    this.queue.shutdown();
    await stopInformers(this.caches);
    await Promise.all(this.running);
    await this.progress?.stop();
    await this.cleaner?.close();
    this.running = [];
    this.synced = false;
  }

  private async worker(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const t0 = performance.now();
      try {
        const r = await this.reconciler.reconcile(key);
        this.queue.forget(key);
        if (r.requeueAfterMs !== undefined) this.queue.addAfter(key, r.requeueAfterMs);
        this.metrics.observeReconcile(r.requeueAfterMs !== undefined ? "requeue" : "success", (performance.now() - t0) / 1000);
      } catch (err) {
        const delay = this.queue.addRateLimited(key);
        this.metrics.observeReconcile("error", (performance.now() - t0) / 1000);
        this.o.log(`reconcile ${key} failed (retry ${this.queue.retries(key)} in ${delay} ms): ${(err as Error).message}`, {
          level: "error",
          job: key,
          component: "controller",
        });
      } finally {
        this.queue.done(key);
      }
    }
  }
}
