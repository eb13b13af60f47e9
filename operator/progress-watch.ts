// The learner's progress as the operator sees it: one KV watch per job on `learner.progress` in the job's
// NATS bucket (the learner writes it after every update, common/nats/runtime-state.ts). A change stores the
// value and queues the job, so status (update, success rate, checkpoint) and the autoscaler follow the
// learner without polling. Connections are shared per NATS URL. A job whose NATS is unreachable still
// reconciles (status then comes from the learner pod's termination message only); the watch is retried
// on a backoff timer that queues the job again.
//
// The bucket is the job's own (names.ts: per cluster id, namespace and name), so a job with the same name
// in another namespace or cluster never feeds this job's status.
import type { NatsConnection } from "@nats-io/transport-node";
import { connectNats } from "../common/nats/connection.ts";
import { jobToken, KV_KEYS, type NatsJobRef } from "../common/nats/names.ts";
import type { LearnerProgress } from "../common/nats/runtime-state.ts";
import { JobStateKV } from "../common/nats/weights.ts";

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
   * The latest progress of job `key` (namespace/name), identified on NATS by `job`, whose runtime is at
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
      w = { url, token, retryDelayMs: this.o.retryDelayMs ?? 1000, closed: false };
      this.watches.set(key, w);
      void this.start(key, job, w);
    }
    return w.latest;
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
      w.stop = await kv.watch<LearnerProgress>(KV_KEYS.learnerProgress, (value) => {
        if (w.closed) return;
        w.latest = value;
        this.o.onChange(key);
      });
      if (w.closed) w.stop();
    } catch (err) {
      if (w.closed) return;
      this.o.log(`${key}: cannot watch learner progress on ${w.url}: ${(err as Error).message} (retrying in ${w.retryDelayMs} ms)`);
      w.timer = setTimeout(() => {
        if (w.closed) return;
        w.retryDelayMs = Math.min(w.retryDelayMs * 2, 60_000);
        void this.start(key, job, w);
      }, w.retryDelayMs);
      w.timer.unref();
    }
  }
}
