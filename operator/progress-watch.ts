// The learner's progress as the operator sees it: one KV watch per job on `learner.progress` in the job's
// NATS bucket (the learner writes it after every update, runtime/nats/runtime-state.ts). A change stores the
// value and queues the job, so status (update, success rate, checkpoint) and the autoscaler follow the
// learner without polling. Connections are shared per NATS URL. A job whose NATS is unreachable still
// reconciles (status then comes from the learner pod's termination message only); the watch is retried
// on a backoff timer that queues the job again.
//
// The bucket is the job's own (names.ts: per cluster id, namespace and name), so a job with the same name
// in another namespace or cluster never feeds this job's status. A record that fails checkProgress is
// dropped (the last valid one stays) and kept for the reconciler to report as a Warning Event.
import type { NatsConnection } from "@nats-io/transport-node";
import { connectNats } from "../runtime/nats/connection.ts";
import { jobToken, KV_KEYS, type NatsJobRef } from "../core/nats-names.ts";
import type { LearnerProgress } from "../runtime/nats/runtime-state.ts";
import { JobStateKV } from "../runtime/nats/weights.ts";
import { redactUrl } from "../crds/secrets.ts";
import { checkProgress } from "./progress-check.ts";

/** A progress record the watch refused: the KV revision and what was wrong with it. */
export interface RejectedProgress {
  revision: number;
  problem: string;
}

/** Refused records kept per job until the reconciler takes them (a flood of bad writes cannot grow memory). */
const MAX_PENDING_REJECTIONS = 5;

export interface ProgressWatcherOptions {
  /** Called when a job's progress changed (or a failed watch should be retried): queue the job. */
  onChange: (key: string) => void;
  log: (m: string) => void;
  /** How to reach a NATS URL (default: connectNats, reconnecting forever). */
  connect?: (url: string) => Promise<NatsConnection>;
  /** NATS credentials file for the default connect. */
  credsFile?: string;
  /** First retry delay after a failed watch (doubles up to 60 s). */
  retryDelayMs?: number;
}

interface Watch {
  url: string;
  /** jobToken of the watched job: a change (new cluster id) means another bucket. */
  token: string;
  latest?: LearnerProgress;
  rejected: RejectedProgress[];
  stop?: () => void;
  retryDelayMs: number;
  timer?: NodeJS.Timeout;
  closed: boolean;
}

export class ProgressWatcher {
  private readonly conns = new Map<string, Promise<NatsConnection>>();
  private readonly watches = new Map<string, Watch>();

  constructor(private readonly o: ProgressWatcherOptions) {}

  /**
   * The latest valid progress of job `key` (namespace/name), identified on NATS by `job`, whose runtime is at
   * `url`; starts watching on first use.
   */
  latest(key: string, job: NatsJobRef, url: string): LearnerProgress | undefined {
    const token = jobToken(job);
    let w = this.watches.get(key);
    if (w && (w.url !== url || w.token !== token)) {
      this.forget(key);
      w = undefined;
    }
    if (!w) {
      w = { url, token, rejected: [], retryDelayMs: this.o.retryDelayMs ?? 1000, closed: false };
      this.watches.set(key, w);
      void this.start(key, job, w);
    }
    return w.latest;
  }

  /** The records refused since the last call (oldest first), for the reconciler to report once each. */
  takeRejected(key: string): RejectedProgress[] {
    const w = this.watches.get(key);
    if (!w || w.rejected.length === 0) return [];
    const taken = w.rejected;
    w.rejected = [];
    return taken;
  }

  /** The job is gone: stop its watch. */
  forget(key: string): void {
    const w = this.watches.get(key);
    if (!w) return;
    w.closed = true;
    w.stop?.();
    if (w.timer) clearTimeout(w.timer);
    this.watches.delete(key);
  }

  /** Whether job `key` (namespace/name) is watched (or its watch is being retried). */
  isWatching(key: string): boolean {
    return this.watches.has(key);
  }

  get watching(): number {
    return this.watches.size;
  }

  async stop(): Promise<void> {
    for (const key of [...this.watches.keys()]) this.forget(key);
    const conns = [...this.conns.values()];
    this.conns.clear();
    await Promise.all(conns.map(async (p) => (await p.catch(() => undefined))?.close()));
  }

  private connection(url: string): Promise<NatsConnection> {
    let c = this.conns.get(url);
    if (!c) {
      const connect =
        this.o.connect ??
        ((u: string) => connectNats({ servers: u, name: "steppo-operator", credsFile: this.o.credsFile, waitOnFirstConnect: false, log: this.o.log }));
      c = connect(url);
      // A failed first connect is not cached: the next retry dials again.
      c.catch(() => this.conns.delete(url));
      this.conns.set(url, c);
    }
    return c;
  }

  private async start(key: string, job: NatsJobRef, w: Watch): Promise<void> {
    try {
      const nc = await this.connection(w.url);
      // Same bucket configuration as the learner's JobStateKV.open, so whichever comes first creates it.
      const kv = await JobStateKV.open(nc, { job });
      if (w.closed) return;
      w.stop = await kv.watch<unknown>(KV_KEYS.learnerProgress, (value, revision) => {
        if (w.closed) return;
        this.observe(key, w, value, revision);
        this.o.onChange(key);
      });
      if (w.closed) w.stop();
    } catch (err) {
      if (w.closed) return;
      this.o.log(`${key}: cannot watch learner progress on ${redactUrl(w.url)}: ${(err as Error).message} (retrying in ${w.retryDelayMs} ms)`);
      w.timer = setTimeout(() => {
        if (w.closed) return;
        w.retryDelayMs = Math.min(w.retryDelayMs * 2, 60_000);
        void this.start(key, job, w);
      }, w.retryDelayMs);
      w.timer.unref();
    }
  }

  /** A new value of `learner.progress`: kept when valid (deleted: forgotten), else refused and remembered. */
  private observe(key: string, w: Watch, value: unknown, revision: number): void {
    if (value === undefined) {
      w.latest = undefined;
      return;
    }
    const c = checkProgress(value);
    if (c.ok) {
      w.latest = c.progress;
      return;
    }
    this.o.log(`${key}: learner progress at KV revision ${revision} refused: ${c.problem}`);
    w.rejected.push({ revision, problem: c.problem });
    if (w.rejected.length > MAX_PENDING_REJECTIONS) w.rejected.shift();
  }
}
