// The learner's end of the bus: bounded pulls from its durable consumer (learner-consumer.ts) on the job's
// trajectory stream (trajectory-stream.ts). The learner acks a delivery only once its effect is durable
// (after the checkpoint that covers it), so a learner killed at any moment loses nothing: what it held
// comes back after ack_wait. Each pulled message is admitted once:
// - it does not decode: dead-lettered (dead-letters.ts) and acked, so poison never blocks the stream;
// - its trajId was seen (dedupe-memory.ts): a redelivery or a duplicate the server's window missed,
//   suppressed (acked, or kept if it is the very message the learner still holds);
// - otherwise it is handed out and held (held-deliveries.ts) until the caller acks, NAKs or dead-letters it.
import { type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import type { Delivery, TrajectoryConsumer } from "../../core/bus.ts";
import { type JobNames, jobNames, type NatsJobRef } from "../../core/nats-names.ts";
import type { Trajectory } from "../../core/trajectory.ts";
import { CodecError, decodeTrajectory } from "../../core/trajectory-codec.ts";
import { defaultLog, type Log, logOnce, ReconnectWatch, retrying, sleep } from "./connection.ts";
import { type DeadLetterCounters, type DeadLetterKind, DeadLetterQueue, emptyDeadLetterCounts } from "./dead-letters.ts";
import { DedupeMemory } from "./dedupe-memory.ts";
import { HeldDeliveries } from "./held-deliveries.ts";
import { ensureLearnerConsumer, type LearnerConsumerOptions, learnerConsumerOptions } from "./learner-consumer.ts";
import { type PendingPull, parseAckSubject, pull } from "./pull.ts";
import { ensureTrajectoryStreams, type TrajStreamOptions, trajStreamOptions } from "./trajectory-stream.ts";

export interface ConsumerOptions {
  /** Whose stream: the job's identity (cluster, namespace, name), never its name alone. */
  job: NatsJobRef;
  /** The learner owns the streams' configuration: existing streams are brought to these options. */
  stream?: Partial<TrajStreamOptions>;
  consumer?: Partial<LearnerConsumerOptions>;
  /** How many consumed trajIds to remember for de-dup (default 200 000). */
  dedupeCapacity?: number;
  /** TrajIds whose effect is already durable (from the learner's checkpoint): suppressed and acked if redelivered. */
  alreadyConsumed?: Iterable<string>;
  /** Counters restored from a checkpoint. */
  counters?: Partial<ConsumerCounters>;
  /** Per-attempt PubAck timeout of dead-letter publishes (default 5 s). */
  publishTimeoutMs?: number;
  /** How long an ack keeps being retried through an outage before it is left to redelivery (default 20 s). */
  ackRetryMs?: number;
  /** NAK held deliveries on close() so they are redelivered at once (default true). */
  nakOnClose?: boolean;
  log?: Log;
}

export interface ConsumerCounters extends DeadLetterCounters {
  /** Deliveries handed to the caller (first sight of a trajId). */
  consumed: number;
  /** Handed-out deliveries acked by the caller. */
  acked: number;
  /** Suppressed deliveries: a trajId already consumed (redelivery, or duplicate the server window missed). */
  duplicates: number;
  /** Acks that could not be confirmed through an outage (the message will be redelivered and suppressed). */
  ackFailures: number;
}

export interface ConsumerStats extends ConsumerCounters {
  /** Handed out, not yet acked. */
  inFlight: number;
}

export interface ConsumerBacklog {
  /** In the stream, not yet delivered to the learner. */
  pending: number;
  /** Delivered, not yet acked. */
  ackPending: number;
  redelivered: number;
  /** Messages in the stream (the backlog: work-queue retention deletes acked ones). */
  streamMessages: number;
  streamBytes: number;
  /** Messages the stream ever stored (its last sequence): every trajectory accepted, garbage included. */
  lastSeq: number;
}

export interface NatsDelivery extends Delivery {
  /** Stream sequence of the message. */
  seq: number;
  subject: string;
  /** Gives the message back for redelivery (after delayMs, default at once) instead of acking it. */
  nak(delayMs?: number): Promise<void>;
  /** Moves the message (its original bytes, `kind` and `detail` in headers) to the dead-letter stream and acks it. */
  deadLetter(kind: DeadLetterKind, detail: string): Promise<void>;
}

function initialCounters(restored: Partial<ConsumerCounters> = {}): ConsumerCounters {
  return {
    consumed: 0,
    acked: 0,
    duplicates: 0,
    deadLettered: 0,
    ackFailures: 0,
    dlqSeqOffset: 0,
    ...restored,
    deadLetteredByKind: { ...emptyDeadLetterCounts(), ...restored.deadLetteredByKind },
  };
}

export class NatsTrajectoryConsumer implements TrajectoryConsumer<NatsDelivery> {
  readonly names: JobNames;
  private readonly log: Log;
  private readonly warnOnce: (key: string, line: string) => void;
  private readonly counters: ConsumerCounters;
  private readonly consumerOpts: LearnerConsumerOptions;
  private readonly streamOpts: TrajStreamOptions;
  private readonly dedupe: DedupeMemory;
  private readonly dlq: DeadLetterQueue;
  private readonly held: HeldDeliveries;
  private closed = false;
  private fetchChain: Promise<unknown> = Promise.resolve();
  private currentPull: PendingPull | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  /** A pull reported the stream or consumer gone: recreate them before the next pull. */
  private needsEnsure = false;
  private readonly reconnects: ReconnectWatch;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly opts: ConsumerOptions,
  ) {
    this.names = jobNames(opts.job);
    this.reconnects = new ReconnectWatch(nc);
    // A pull sent to the old server is gone after a reconnect: end it now, fetch() pulls again.
    this.reconnects.on(() => this.currentPull?.cancel());
    this.log = opts.log ?? defaultLog;
    this.warnOnce = logOnce(this.log);
    this.counters = initialCounters(opts.counters);
    this.streamOpts = trajStreamOptions(opts.stream);
    this.consumerOpts = learnerConsumerOptions(opts.consumer);
    this.dedupe = new DedupeMemory(opts.dedupeCapacity ?? 200_000, opts.alreadyConsumed);
    this.dlq = new DeadLetterQueue({
      js: jetstream(nc),
      jsm,
      names: this.names,
      stream: this.streamOpts,
      counters: this.counters,
      publishTimeoutMs: opts.publishTimeoutMs,
      aborted: () => this.closed,
      log: this.log,
      warnOnce: this.warnOnce,
    });
    this.held = new HeldDeliveries({
      nc,
      reconnects: this.reconnects,
      dedupe: this.dedupe,
      dlq: this.dlq,
      counters: this.counters,
      ackRetryMs: opts.ackRetryMs,
      warnOnce: this.warnOnce,
    });
  }

  /** Connects to the job's streams (created if missing, else brought to this configuration) and its durable consumer. */
  static async open(nc: NatsConnection, opts: ConsumerOptions): Promise<NatsTrajectoryConsumer> {
    const jsm = await retrying(() => jetstreamManager(nc));
    const c = new NatsTrajectoryConsumer(nc, jsm, opts);
    await c.ensure();
    if (c.consumerOpts.inProgressIntervalMs > 0) {
      c.leaseTimer = setInterval(() => c.held.renewLeases(), c.consumerOpts.inProgressIntervalMs);
      c.leaseTimer.unref();
    }
    return c;
  }

  private async ensure(): Promise<void> {
    await retrying(
      async () => {
        await ensureTrajectoryStreams(this.jsm, this.names, this.streamOpts, true, this.log);
        await ensureLearnerConsumer(this.jsm, this.names, this.consumerOpts, this.log);
      },
      { aborted: () => this.closed },
    );
    this.needsEnsure = false;
  }

  // ---------------------------------------------------------------- fetch

  /** Up to `max` new trajectories, waiting at most `waitMs` for the first. Serialised: one pull at a time. */
  fetch(max: number, waitMs: number): Promise<NatsDelivery[]> {
    const run = this.fetchChain.then(() => this.fetchNow(max, waitMs));
    this.fetchChain = run.catch(() => {});
    return run;
  }

  private async fetchNow(max: number, waitMs: number): Promise<NatsDelivery[]> {
    const out: NatsDelivery[] = [];
    if (max <= 0) return out;
    const deadline = Date.now() + Math.max(0, waitMs);
    while (!this.closed) {
      if (this.needsEnsure) {
        await this.ensure().catch((err) => this.warnOnce(`ensure:${(err as Error).message}`, `re-creating stream/consumer failed: ${(err as Error).message}`));
      }
      const remaining = Math.max(0, deadline - Date.now());
      const p = pull(this.nc, {
        stream: this.names.trajStream,
        consumer: this.names.consumer,
        batch: max - out.length,
        expiresMs: remaining,
        maxBytes: this.consumerOpts.maxFetchBytes,
      });
      this.currentPull = p;
      const r = await p.result.catch((err: Error) => ({ msgs: [] as Msg[], status: { code: 500, description: err.message }, guardExpired: false }));
      this.currentPull = undefined;
      for (const m of r.msgs) {
        const d = await this.admit(m);
        if (d) out.push(d);
      }
      if (r.status && r.status.code !== 404 && r.status.code !== 408) {
        this.warnOnce(`pull-status:${r.status.code}`, `pull from ${this.names.trajStream}/${this.names.consumer}: ${r.status.code} ${r.status.description}`);
        if (r.status.code === 503 || /consumer deleted|not found/i.test(r.status.description)) this.needsEnsure = true;
      }
      if (out.length > 0 || Date.now() >= deadline) break;
      // Nothing usable and time left: the pull ended early (error status, or only suppressed messages). Don't spin.
      if (r.msgs.length === 0) await sleep(Math.min(100, Math.max(0, deadline - Date.now())));
    }
    return out;
  }

  /** Decodes one message; returns a delivery, or undefined when it was suppressed or dead-lettered. */
  private async admit(m: Msg): Promise<NatsDelivery | undefined> {
    const info = parseAckSubject(m.reply ?? "");
    if (!info) {
      this.warnOnce("no-ack-subject", `message on ${m.subject} without a JetStream ack subject ignored`);
      return undefined;
    }
    const seq = info.streamSeq;
    let traj: Trajectory;
    try {
      traj = decodeTrajectory(m.data);
      if (!traj.trajId) throw new CodecError("malformed", "empty trajId");
    } catch (err) {
      const ce = err instanceof CodecError ? err : new CodecError("malformed", (err as Error).message);
      await this.dlq.put(m, seq, ce.kind, ce.message);
      await this.held.confirmAck(m.reply!, `dead-lettered seq ${seq}`);
      return undefined;
    }
    const prev = this.dedupe.get(traj.trajId);
    if (prev) {
      this.counters.duplicates++;
      if (prev.held && prev.seq === seq) {
        // Redelivery of the very message the caller still holds: keep it, refresh its lease, don't ack.
        this.held.redelivered(seq, m.reply!);
      } else {
        await this.held.confirmAck(m.reply!, `duplicate ${traj.trajId}`);
      }
      return undefined;
    }
    this.dedupe.hold(traj.trajId, seq);
    this.held.hold(seq, { reply: m.reply!, trajId: traj.trajId, data: m.data, subject: m.subject });
    this.counters.consumed++;
    return {
      traj,
      redeliveries: info.deliveryCount - 1,
      seq,
      subject: m.subject,
      ack: () => this.held.ack(seq),
      nak: (delayMs?: number) => this.held.nak(seq, delayMs),
      deadLetter: (kind: DeadLetterKind, detail: string) => this.held.deadLetter(seq, kind, detail),
    };
  }

  // ---------------------------------------------------------------- accounting

  /** Remembers trajIds whose effect is durable (e.g. restored from a checkpoint): their redeliveries are suppressed. */
  markConsumed(trajIds: Iterable<string>): void {
    this.dedupe.markConsumed(trajIds);
  }

  stats(): ConsumerStats {
    return { ...this.counters, deadLetteredByKind: { ...this.counters.deadLetteredByKind }, inFlight: this.held.size };
  }

  /**
   * Dead-letters ever stored, continuing across a deleted and recreated DLQ stream: the stream's last
   * sequence plus dlqSeqOffset. Recreates a missing DLQ stream.
   */
  dlqLastSeq(): Promise<number> {
    return this.dlq.lastSeq();
  }

  /** The consumer's backlog as the server sees it (for metrics, demand signals and the accounting identity). */
  async backlog(): Promise<ConsumerBacklog> {
    return retrying(
      async () => {
        const [ci, si] = await Promise.all([this.jsm.consumers.info(this.names.trajStream, this.names.consumer), this.jsm.streams.info(this.names.trajStream)]);
        return {
          pending: ci.num_pending,
          ackPending: ci.num_ack_pending,
          redelivered: ci.num_redelivered,
          streamMessages: si.state.messages,
          streamBytes: si.state.bytes,
          lastSeq: si.state.last_seq,
        };
      },
      { maxWaitMs: 10_000 },
    );
  }

  // ---------------------------------------------------------------- shutdown

  /** Stops fetching; NAKs held deliveries (unless nakOnClose is false) so they are redelivered at once. The connection stays open. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.leaseTimer);
    this.currentPull?.cancel();
    await this.fetchChain;
    this.reconnects.stop();
    if ((this.opts.nakOnClose ?? true) && !this.nc.isClosed()) {
      await this.held.nakAll();
      await this.nc.flush().catch(() => {});
    }
  }

  /** Simulates a crash: stops everything without acking or NAKing; held messages come back after ack_wait. */
  abandon(): void {
    this.closed = true;
    clearInterval(this.leaseTimer);
    this.currentPull?.cancel();
    this.reconnects.stop();
    this.held.drop();
  }
}
