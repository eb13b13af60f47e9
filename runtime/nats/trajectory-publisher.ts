// The rollout workers' end of the bus: publishes each finished trajectory to the job's stream
// (trajectory-stream.ts) and returns once the server has stored it (its PubAck), so a worker counts as
// published only what the learner will see. Two things make a publish wait instead of failing:
// - a full stream (discard New): back-pressure from a learner that falls behind. The publish retries with
//   backoff until the learner acks and frees room (counted as backpressureWaits);
// - an outage or a lost PubAck (server restart): retried with the same `Nats-Msg-Id = trajId`, so an attempt
//   the server had stored already is stored once, whatever the retry reports.
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { TrajectoryPublisher } from "../../core/bus.ts";
import { type JobNames, jobNames, type NatsJobRef } from "../../core/nats-names.ts";
import type { Trajectory } from "../../core/trajectory.ts";
import { checkPayloadSize, encodeTrajectoryCompressed } from "../../core/trajectory-codec.ts";
import { defaultLog, isBackpressure, type Log, logOnce, ReconnectWatch, retrying } from "./connection.ts";
import { ensureTrajectoryStreams, type TrajStreamOptions, trajStreamOptions } from "./trajectory-stream.ts";

export interface PublisherOptions {
  /** Whose stream: the job's identity (cluster, namespace, name), never its name alone. */
  job: NatsJobRef;
  /** Subject token for publishes whose trajectory has no workerId. */
  workerId?: string;
  /** Used only to create missing streams: the learner owns the configuration of existing ones. */
  stream?: Partial<TrajStreamOptions>;
  /** Per-attempt PubAck timeout (default 5 s). */
  publishTimeoutMs?: number;
  /** Give up a publish (throw) after waiting this long on back-pressure or an outage (default: never). */
  maxPublishWaitMs?: number;
  log?: Log;
}

export interface PublisherCounters {
  /** Trajectories this client stored in the stream (publish() calls that succeeded). */
  published: number;
  /** publish() calls the stream rejected as duplicates of an already stored trajId (within the window). */
  publishDuplicates: number;
  /** Publish attempts retried after a transient error (server restart, timeout). */
  publishRetries: number;
  /** Publish attempts that found the stream full and waited (back-pressure). */
  backpressureWaits: number;
}

export class NatsTrajectoryPublisher implements TrajectoryPublisher {
  readonly names: JobNames;
  private readonly js: JetStreamClient;
  private readonly log: Log;
  private readonly warnOnce: (key: string, line: string) => void;
  private readonly counters: PublisherCounters = { published: 0, publishDuplicates: 0, publishRetries: 0, backpressureWaits: 0 };
  private readonly reconnects: ReconnectWatch;
  private closed = false;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly opts: PublisherOptions,
  ) {
    this.names = jobNames(opts.job);
    this.js = jetstream(nc);
    this.reconnects = new ReconnectWatch(nc);
    this.log = opts.log ?? defaultLog;
    this.warnOnce = logOnce(this.log);
  }

  /** Connects to the job's streams, creating them if missing (a worker may start before the learner). */
  static async open(nc: NatsConnection, opts: PublisherOptions): Promise<NatsTrajectoryPublisher> {
    const jsm: JetStreamManager = await retrying(() => jetstreamManager(nc));
    const p = new NatsTrajectoryPublisher(nc, opts);
    const streams = trajStreamOptions(opts.stream);
    await retrying(() => ensureTrajectoryStreams(jsm, p.names, streams, false, p.log), { aborted: () => p.closed });
    return p;
  }

  async publish(traj: Trajectory): Promise<void> {
    if (this.closed) throw new Error("NatsTrajectoryPublisher: closed");
    if (!traj.trajId) throw new Error("NatsTrajectoryPublisher.publish: trajectory has no trajId (needed for de-duplication)");
    // Compressed (codec version 2); what still does not fit is refused before it is sent, with the sizes:
    // the server would close the connection over it. Callers drop such an episode (TrajectoryTooLargeError).
    const data = encodeTrajectoryCompressed(traj);
    checkPayloadSize(traj.trajId, data, this.nc.info?.max_payload ?? Number.POSITIVE_INFINITY);
    const subject = this.names.trajSubject(traj.workerId || this.opts.workerId || "unknown");
    let uncertain = false; // an earlier attempt may have been stored (its PubAck was lost)
    const ack = await retrying(
      async () => {
        try {
          // A reconnect while waiting for the PubAck retries at once (same msgID: stored once either way).
          return await this.reconnects.race("publish", () =>
            this.js.publish(subject, data, { msgID: traj.trajId, timeout: this.opts.publishTimeoutMs ?? 5000 }),
          );
        } catch (err) {
          if (!isBackpressure(err)) uncertain = true;
          throw err;
        }
      },
      {
        alsoRetry: isBackpressure,
        aborted: () => this.closed,
        maxWaitMs: this.opts.maxPublishWaitMs,
        maxDelayMs: 2000,
        onRetry: (err) => {
          if (isBackpressure(err)) {
            this.counters.backpressureWaits++;
            this.warnOnce("backpressure", `stream ${this.names.trajStream} is full (${(err as Error).message}): publishers wait for the learner`);
          } else {
            this.counters.publishRetries++;
            this.warnOnce(`publish-retry:${(err as Error).name}`, `publish retrying after ${(err as Error).name}: ${(err as Error).message}`);
          }
        },
      },
    );
    // A duplicate after an uncertain attempt is our own earlier attempt, stored: it counts as published.
    if (ack.duplicate && !uncertain) this.counters.publishDuplicates++;
    else this.counters.published++;
  }

  stats(): PublisherCounters {
    return { ...this.counters };
  }

  /** Stops publishing: a publish still waiting (back-pressure, outage) gives up at its next retry. The connection stays open. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.reconnects.stop();
  }
}
