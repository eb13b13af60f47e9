// TrajectoryBus over NATS JetStream: rollout workers publish, the learner consumes through one durable
// pull consumer with explicit acks.
//
// Stream `steppo-<job>-traj` on `steppo.<job>.traj.<workerId>` (file storage):
// - retention WorkQueue: a message stays until the learner acks it, then it is deleted, so the stream only
//   holds the backlog (published, not yet durable in the learner) and a killed learner loses nothing.
// - discard New with max_msgs / max_bytes: when the backlog is full the server refuses new messages and
//   publish() waits and retries with backoff (counted as backpressureWaits): workers slow down when the
//   learner falls behind instead of anything being dropped or growing without bound. Unacked messages the
//   learner holds count towards the limit too. (max_msgs_per_subject is deliberately not used: before
//   nats-server 2.10 a per-subject limit discards the subject's OLDEST message even with discard New.)
// - duplicate_window: publishes carry `Nats-Msg-Id = trajId`, so a publish retried after a lost PubAck
//   (server restart) or a repeated publish of the same trajectory within the window is stored once.
// Consumer `learner`: durable pull, AckPolicy Explicit, ack_wait (default 30 s), max_deliver unlimited,
// max_ack_pending bounding what the learner may hold unacked (its memory). While the learner holds a
// delivery it sends "+WPI" (in progress) for it every ack_wait/3, so a live learner that checkpoints less
// often than ack_wait is never redelivered its own messages; a dead one's are redelivered after ack_wait.
// Consumer-side de-dup by trajId (bounded memory) suppresses redeliveries and duplicates the server's
// window missed; messages that fail to decode go to `steppo.<job>.dlq` (stream `steppo-<job>-dlq`) with
// headers naming the cause, then are acked. So do trajectories the learner refuses at intake
// (learner/trajectory-check.ts), through NatsDelivery.deadLetter(). A DLQ stream that was deleted is
// recreated by the next dead-letter (or accounting read); its sequence restarts then, so the bus keeps an
// offset (a checkpointed counter) that makes dlqLastSeq() continue where the deleted stream stopped.
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { headers, type Msg, type NatsConnection } from "@nats-io/transport-node";
import type { Delivery, TrajectoryBus } from "../../core/bus.ts";
import type { Trajectory } from "../../core/trajectory.ts";
import { CodecError, type CodecErrorKind, checkPayloadSize, decodeTrajectory, encodeTrajectoryCompressed } from "../../core/trajectory-codec.ts";
import { defaultLog, isBackpressure, type Log, logOnce, ReconnectWatch, retrying, sleep } from "./connection.ts";
import type { TrajectoryCheckCause } from "../../learner/trajectory-check.ts";
import { type JobNames, jobNames, type NatsJobRef } from "../../core/nats-names.ts";
import { type PendingPull, parseAckSubject, pull } from "./pull.ts";

const NS_PER_MS = 1_000_000;
/** Why a message was dead-lettered: it did not decode (codec), or it decoded but failed the learner's intake checks. */
export type DeadLetterKind = CodecErrorKind | Exclude<TrajectoryCheckCause, "policy-version-ahead">;

/** Headers on a dead-lettered message. */
export const DLQ_HEADERS = {
  reason: "Steppo-Dlq-Reason",
  error: "Steppo-Dlq-Error",
  subject: "Steppo-Dlq-Subject",
  seq: "Steppo-Dlq-Stream-Seq",
} as const;

export interface TrajStreamOptions {
  /** Backlog limit in messages (default 100 000). */
  maxMsgs: number;
  /** Backlog limit in bytes (default 1 GiB). */
  maxBytes: number;
  /** JetStream de-dup window for `Nats-Msg-Id` (default 2 min). */
  duplicateWindowMs: number;
  storage: "file" | "memory";
  replicas: number;
  /** Dead-letter stream: how long and how many messages to keep (default 7 days, 10 000). */
  dlqMaxAgeMs: number;
  dlqMaxMsgs: number;
}

export interface LearnerConsumerOptions {
  /** Redelivery delay of a message whose holder died (default 30 s). */
  ackWaitMs: number;
  /** Most unacked deliveries the learner may hold (default 10 000): it must exceed what it holds between checkpoints. */
  maxAckPending: number;
  /** How often held deliveries are marked in progress (default ackWaitMs / 3); 0 disables. */
  inProgressIntervalMs: number;
  /** Byte bound per fetch (optional; default only the message count bounds it). */
  maxFetchBytes?: number;
}

export interface NatsBusOptions {
  /** Whose stream: the job's identity (cluster, namespace, name), never its name alone. */
  job: NatsJobRef;
  /** True in the learner: creates/updates the durable consumer and enables fetch(). */
  consume?: boolean;
  /** Subject token for publishes whose trajectory has no workerId. */
  workerId?: string;
  stream?: Partial<TrajStreamOptions>;
  consumer?: Partial<LearnerConsumerOptions>;
  /** How many consumed trajIds to remember for de-dup (default 200 000). */
  dedupeCapacity?: number;
  /** TrajIds whose effect is already durable (from the learner's checkpoint): suppressed and acked if redelivered. */
  alreadyConsumed?: Iterable<string>;
  /** Counters restored from a checkpoint. */
  counters?: Partial<NatsBusCounters>;
  /** Per-attempt PubAck timeout (default 5 s). */
  publishTimeoutMs?: number;
  /** Give up a publish (throw) after waiting this long on back-pressure or an outage (default: never). */
  maxPublishWaitMs?: number;
  /** How long an ack keeps being retried through an outage before it is left to redelivery (default 20 s). */
  ackRetryMs?: number;
  /** NAK held deliveries on close() so they are redelivered at once (default true). */
  nakOnClose?: boolean;
  log?: Log;
}

export interface NatsBusCounters {
  /** Trajectories this client stored in the stream (publish() calls that succeeded). */
  published: number;
  /** publish() calls the stream rejected as duplicates of an already stored trajId (within the window). */
  publishDuplicates: number;
  /** Publish attempts retried after a transient error (server restart, timeout). */
  publishRetries: number;
  /** Publish attempts that found the stream full and waited (back-pressure). */
  backpressureWaits: number;
  /** Deliveries handed to the caller (first sight of a trajId). */
  consumed: number;
  /** Handed-out deliveries acked by the caller. */
  acked: number;
  /** Suppressed deliveries: a trajId already consumed (redelivery, or duplicate the server window missed). */
  duplicates: number;
  /** Messages moved to the dead-letter subject and acked: undecodable, or refused at intake. */
  deadLettered: number;
  deadLetteredByKind: Record<DeadLetterKind, number>;
  /** Acks that could not be confirmed through an outage (the message will be redelivered and suppressed). */
  ackFailures: number;
  /** Sequence numbers of DLQ streams that were deleted and recreated: added to the live stream's last sequence. */
  dlqSeqOffset: number;
}

export interface NatsBusStats extends NatsBusCounters {
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

function emptyCounters(): NatsBusCounters {
  return {
    published: 0,
    publishDuplicates: 0,
    publishRetries: 0,
    backpressureWaits: 0,
    consumed: 0,
    acked: 0,
    duplicates: 0,
    deadLettered: 0,
    deadLetteredByKind: {
      "unknown-version": 0,
      truncated: 0,
      malformed: 0,
      "non-finite": 0,
      "token-out-of-range": 0,
      "too-long": 0,
      inconsistent: 0,
      "bad-policy-version": 0,
    },
    ackFailures: 0,
    dlqSeqOffset: 0,
  };
}

interface Held {
  reply: string;
  trajId: string;
  /** The message as received: what a dead-letter keeps. */
  data: Uint8Array;
  subject: string;
}

/** Creates the stream if missing; `update` (the learner) also brings an existing one to `cfg`. */
async function ensureStream(jsm: JetStreamManager, cfg: Parameters<JetStreamManager["streams"]["add"]>[0], update: boolean, log: Log): Promise<void> {
  try {
    const info = await jsm.streams.info(cfg.name);
    if (!update) return;
    const c = info.config;
    const differs = (Object.keys(cfg) as (keyof typeof cfg)[]).some((k) => JSON.stringify(c[k]) !== JSON.stringify(cfg[k]));
    if (differs) {
      const { name, retention: _r, storage: _s, ...rest } = cfg;
      await jsm.streams
        .update(name, rest)
        .catch((err) => log(`stream ${name}: could not update its configuration (${(err as Error).message}); using it as is`));
    }
  } catch (err) {
    if (!/stream not found/i.test((err as Error).message)) throw err;
    try {
      await jsm.streams.add(cfg);
    } catch (e) {
      if (!/already in use/i.test((e as Error).message)) throw e; // created concurrently by another process
    }
  }
}

export class NatsTrajectoryBus implements TrajectoryBus {
  readonly names: JobNames;
  private readonly js: JetStreamClient;
  private readonly log: Log;
  private readonly warnOnce: (key: string, line: string) => void;
  private readonly counters: NatsBusCounters;
  private readonly consumerOpts: LearnerConsumerOptions;
  private readonly streamOpts: TrajStreamOptions;
  /** trajId → held (delivered, unacked) or done; insertion order = age, for bounded eviction of done ids. */
  private readonly seen = new Map<string, { held: boolean; seq: number }>();
  /** stream seq → held delivery. */
  private readonly held = new Map<number, Held>();
  private readonly deadSeqs = new Set<number>();
  /** Highest sequence seen in the live DLQ stream (PubAcks, info): what its deletion would lose. */
  private dlqSeqSeen = 0;
  private closed = false;
  private fetchChain: Promise<unknown> = Promise.resolve();
  private currentPull: PendingPull | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private needsEnsure = false;
  private readonly reconnects: ReconnectWatch;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly opts: NatsBusOptions,
  ) {
    this.names = jobNames(opts.job);
    this.js = jetstream(nc);
    this.reconnects = new ReconnectWatch(nc);
    // A pull sent to the old server is gone after a reconnect: end it now, fetch() pulls again.
    this.reconnects.on(() => this.currentPull?.cancel());
    this.log = opts.log ?? defaultLog;
    this.warnOnce = logOnce(this.log);
    this.counters = {
      ...emptyCounters(),
      ...opts.counters,
      deadLetteredByKind: { ...emptyCounters().deadLetteredByKind, ...opts.counters?.deadLetteredByKind },
    };
    this.streamOpts = {
      maxMsgs: 100_000,
      maxBytes: 1 << 30,
      duplicateWindowMs: 120_000,
      storage: "file",
      replicas: 1,
      dlqMaxAgeMs: 7 * 24 * 3600_000,
      dlqMaxMsgs: 10_000,
      ...opts.stream,
    };
    const ackWaitMs = opts.consumer?.ackWaitMs ?? 30_000;
    this.consumerOpts = { ackWaitMs, maxAckPending: 10_000, inProgressIntervalMs: Math.max(100, Math.floor(ackWaitMs / 3)), ...opts.consumer };
    for (const id of opts.alreadyConsumed ?? []) this.seen.set(id, { held: false, seq: 0 });
  }

  /** Connects the bus to the job's stream (created if missing) and, for the learner, its durable consumer. */
  static async open(nc: NatsConnection, opts: NatsBusOptions): Promise<NatsTrajectoryBus> {
    const jsm = await retrying(() => jetstreamManager(nc));
    const bus = new NatsTrajectoryBus(nc, jsm, opts);
    await bus.ensure();
    if (opts.consume && bus.consumerOpts.inProgressIntervalMs > 0) {
      bus.leaseTimer = setInterval(() => bus.renewLeases(), bus.consumerOpts.inProgressIntervalMs);
      bus.leaseTimer.unref();
    }
    return bus;
  }

  private async ensure(): Promise<void> {
    const n = this.names;
    const s = this.streamOpts;
    const storage = s.storage === "memory" ? StorageType.Memory : StorageType.File;
    const update = this.opts.consume === true;
    await retrying(
      async () => {
        await ensureStream(
          this.jsm,
          {
            name: n.trajStream,
            subjects: [n.trajFilter],
            retention: RetentionPolicy.Workqueue,
            discard: DiscardPolicy.New,
            storage,
            num_replicas: s.replicas,
            max_msgs: s.maxMsgs,
            max_bytes: s.maxBytes,
            duplicate_window: s.duplicateWindowMs * NS_PER_MS,
          },
          update,
          this.log,
        );
        await ensureStream(this.jsm, this.dlqStreamConfig(), update, this.log);
        if (this.opts.consume) await this.ensureConsumer();
      },
      { aborted: () => this.closed },
    );
    this.needsEnsure = false;
  }

  private dlqStreamConfig(): Parameters<JetStreamManager["streams"]["add"]>[0] {
    const s = this.streamOpts;
    return {
      name: this.names.dlqStream,
      subjects: [this.names.dlqSubject],
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      storage: s.storage === "memory" ? StorageType.Memory : StorageType.File,
      num_replicas: s.replicas,
      max_msgs: s.dlqMaxMsgs,
      max_age: s.dlqMaxAgeMs * NS_PER_MS,
      duplicate_window: s.duplicateWindowMs * NS_PER_MS,
    };
  }

  /**
   * The DLQ stream's state, recreating the stream if someone deleted it. A recreated stream numbers from 1
   * again, so what the deleted one had reached moves into dlqSeqOffset.
   */
  private async dlqState(): Promise<{ lastSeq: number; messages: number }> {
    try {
      const info = await this.jsm.streams.info(this.names.dlqStream);
      this.dlqSeqSeen = Math.max(this.dlqSeqSeen, info.state.last_seq);
      return { lastSeq: info.state.last_seq, messages: info.state.messages };
    } catch (err) {
      if (!/stream not found/i.test((err as Error).message)) throw err;
      this.log(
        `dead-letter stream ${this.names.dlqStream} is missing (deleted?); recreating it (its ${this.dlqSeqSeen} earlier sequence number(s) carry over in the accounting)`,
      );
      await ensureStream(this.jsm, this.dlqStreamConfig(), false, this.log);
      this.counters.dlqSeqOffset += this.dlqSeqSeen;
      this.dlqSeqSeen = 0;
      return { lastSeq: 0, messages: 0 };
    }
  }

  /**
   * Dead-letters ever stored, continuing across a deleted and recreated DLQ stream: the stream's last
   * sequence plus dlqSeqOffset. Recreates a missing DLQ stream.
   */
  async dlqLastSeq(): Promise<number> {
    const { lastSeq } = await retrying(() => this.dlqState(), { maxWaitMs: 30_000 });
    return this.counters.dlqSeqOffset + lastSeq;
  }

  private async ensureConsumer(): Promise<void> {
    const n = this.names;
    const c = this.consumerOpts;
    const wanted = { ack_wait: c.ackWaitMs * NS_PER_MS, max_ack_pending: c.maxAckPending };
    try {
      const info = await this.jsm.consumers.info(n.trajStream, n.consumer);
      if (info.config.ack_wait !== wanted.ack_wait || info.config.max_ack_pending !== wanted.max_ack_pending) {
        await this.jsm.consumers
          .update(n.trajStream, n.consumer, wanted)
          .catch((err) => this.log(`consumer ${n.consumer}: could not update ack_wait/max_ack_pending (${(err as Error).message}); using it as is`));
      }
    } catch (err) {
      if (!/consumer not found/i.test((err as Error).message)) throw err;
      await this.jsm.consumers.add(n.trajStream, {
        durable_name: n.consumer,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        filter_subject: n.trajFilter,
        max_deliver: -1,
        ...wanted,
      });
    }
  }

  // ---------------------------------------------------------------- publish

  async publish(traj: Trajectory): Promise<void> {
    if (this.closed) throw new Error("NatsTrajectoryBus: closed");
    if (!traj.trajId) throw new Error("NatsTrajectoryBus.publish: trajectory has no trajId (needed for de-duplication)");
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
    if (ack.duplicate && !uncertain) this.counters.publishDuplicates++;
    else this.counters.published++;
  }

  // ---------------------------------------------------------------- consume

  /** Up to `max` new trajectories, waiting at most `waitMs` for the first. Serialised: one pull at a time. */
  fetch(max: number, waitMs: number): Promise<NatsDelivery[]> {
    if (!this.opts.consume) return Promise.reject(new Error("NatsTrajectoryBus: fetch() needs { consume: true } (the learner)"));
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
      await this.deadLetter(m, seq, ce.kind, ce.message);
      return undefined;
    }
    const prev = this.seen.get(traj.trajId);
    if (prev) {
      this.counters.duplicates++;
      if (prev.held && prev.seq === seq) {
        // Redelivery of the very message the caller still holds: keep it, refresh its lease, don't ack.
        const h = this.held.get(seq);
        if (h) h.reply = m.reply!;
        this.progress(m.reply!);
      } else {
        await this.ackReply(m.reply!, `duplicate ${traj.trajId}`);
      }
      return undefined;
    }
    this.seen.set(traj.trajId, { held: true, seq });
    this.held.set(seq, { reply: m.reply!, trajId: traj.trajId, data: m.data, subject: m.subject });
    this.counters.consumed++;
    return {
      traj,
      redeliveries: info.deliveryCount - 1,
      seq,
      subject: m.subject,
      ack: () => this.ackHeld(seq),
      nak: (delayMs?: number) => this.nakHeld(seq, delayMs),
      deadLetter: (kind: DeadLetterKind, detail: string) => this.deadLetterHeld(seq, kind, detail),
    };
  }

  /** A delivered trajectory the caller refused: dead-lettered and acked, remembered as done (not handed out again). */
  private async deadLetterHeld(seq: number, kind: DeadLetterKind, detail: string): Promise<void> {
    const h = this.held.get(seq);
    if (!h) return; // already acked or dead-lettered
    await this.deadLetter({ subject: h.subject, data: h.data, reply: h.reply }, seq, kind, detail);
    this.held.delete(seq);
    this.seen.delete(h.trajId);
    this.seen.set(h.trajId, { held: false, seq });
    this.evict();
  }

  private async deadLetter(m: Pick<Msg, "subject" | "data" | "reply">, seq: number, kind: DeadLetterKind, detail: string): Promise<void> {
    if (!this.deadSeqs.has(seq)) {
      this.warnOnce(`dlq:${kind}`, `dead-lettering ${kind} message from ${m.subject} (seq ${seq}) to ${this.names.dlqSubject}: ${detail}`);
      const h = headers();
      h.set(DLQ_HEADERS.reason, kind);
      h.set(DLQ_HEADERS.error, detail.replace(/[\r\n]+/g, " ").slice(0, 512));
      h.set(DLQ_HEADERS.subject, m.subject);
      h.set(DLQ_HEADERS.seq, String(seq));
      await this.publishDeadLetter(m.data, { msgID: `${this.names.trajStream}-${seq}`, headers: h });
      this.deadSeqs.add(seq);
      if (this.deadSeqs.size > 10_000) this.deadSeqs.delete(this.deadSeqs.values().next().value as number);
      this.counters.deadLettered++;
      this.counters.deadLetteredByKind[kind]++;
    }
    await this.ackReply(m.reply!, `dead-lettered seq ${seq}`);
  }

  /**
   * Publishes to the DLQ subject. With the DLQ stream deleted nothing answers the publish (the client reports
   * "no responders" / JetStreamNotEnabled, which `retrying` treats as transient and would retry forever), so
   * such a failure recreates the stream before the next attempt.
   */
  private async publishDeadLetter(data: Uint8Array, opts: { msgID: string; headers: ReturnType<typeof headers> }): Promise<void> {
    let checkStream = false;
    const ack = await retrying(
      async () => {
        if (checkStream) {
          checkStream = false;
          await this.dlqState();
        }
        return this.js.publish(this.names.dlqSubject, data, { ...opts, timeout: this.opts.publishTimeoutMs ?? 5000 });
      },
      {
        aborted: () => this.closed,
        onRetry: (err) => {
          if (/no responders|not enabled/i.test(`${(err as Error).name} ${(err as Error).message}`)) checkStream = true;
        },
      },
    );
    this.dlqSeqSeen = Math.max(this.dlqSeqSeen, ack.seq);
  }

  /** Acks and waits for the server's confirmation, retrying through an outage for up to ackRetryMs. */
  private async ackReply(reply: string, what: string): Promise<boolean> {
    try {
      await retrying(() => this.reconnects.race("ack", () => this.nc.request(reply, "+ACK", { timeout: 2000 })), {
        maxWaitMs: this.opts.ackRetryMs ?? 20_000,
        aborted: () => this.nc.isClosed(),
      });
      return true;
    } catch (err) {
      this.counters.ackFailures++;
      this.warnOnce(`ack-failed:${(err as Error).name}`, `ack of ${what} not confirmed (${(err as Error).message}); it will be redelivered and suppressed`);
      return false;
    }
  }

  private async ackHeld(seq: number): Promise<void> {
    const h = this.held.get(seq);
    if (!h) return; // already acked
    await this.ackReply(h.reply, h.trajId);
    if (!this.held.delete(seq)) return;
    this.counters.acked++;
    // Done: move to the back of the de-dup memory, evicting the oldest done ids beyond capacity.
    this.seen.delete(h.trajId);
    this.seen.set(h.trajId, { held: false, seq });
    this.evict();
  }

  private async nakHeld(seq: number, delayMs?: number): Promise<void> {
    const h = this.held.get(seq);
    if (!h) return;
    this.held.delete(seq);
    this.seen.delete(h.trajId); // it will come back: hand it out again then
    const body = delayMs ? `-NAK ${JSON.stringify({ delay: delayMs * NS_PER_MS })}` : "-NAK";
    try {
      this.nc.publish(h.reply, body);
    } catch {
      // connection gone: ack_wait redelivers it anyway
    }
  }

  private evict(): void {
    const cap = this.opts.dedupeCapacity ?? 200_000;
    if (this.seen.size <= cap) return;
    for (const [id, s] of this.seen) {
      if (this.seen.size <= cap) break;
      if (!s.held) this.seen.delete(id);
    }
  }

  private progress(reply: string): void {
    try {
      if (!this.nc.isClosed()) this.nc.publish(reply, "+WPI");
    } catch {
      // best effort
    }
  }

  private renewLeases(): void {
    for (const h of this.held.values()) this.progress(h.reply);
  }

  /** Remembers trajIds whose effect is durable (e.g. restored from a checkpoint): their redeliveries are suppressed. */
  markConsumed(trajIds: Iterable<string>): void {
    for (const id of trajIds) if (!this.seen.has(id)) this.seen.set(id, { held: false, seq: 0 });
    this.evict();
  }

  stats(): NatsBusStats {
    return { ...this.counters, deadLetteredByKind: { ...this.counters.deadLetteredByKind }, inFlight: this.held.size };
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

  /** Stops fetching; NAKs held deliveries (unless nakOnClose is false) so they are redelivered at once. The connection stays open. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.leaseTimer);
    this.currentPull?.cancel();
    await this.fetchChain;
    this.reconnects.stop();
    if ((this.opts.nakOnClose ?? true) && !this.nc.isClosed()) {
      for (const seq of [...this.held.keys()]) await this.nakHeld(seq);
      await this.nc.flush().catch(() => {});
    }
  }

  /** Simulates a crash: stops everything without acking or NAKing; held messages come back after ack_wait. */
  abandon(): void {
    this.closed = true;
    clearInterval(this.leaseTimer);
    this.currentPull?.cancel();
    this.reconnects.stop();
    this.held.clear();
  }
}
