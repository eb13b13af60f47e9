// The learner's dead-letter queue: messages that did not decode, and trajectories refused at intake
// (learner/trajectory-check.ts), are kept on `steppo.<job>.dlq` (stream `steppo-<job>-dlq`) with their
// original bytes and headers naming the cause, for someone to inspect; the consumer acks them afterwards, so
// poison never blocks the stream. A DLQ stream that was deleted is recreated by the next dead-letter (or
// accounting read); its sequence restarts then, so an offset (a checkpointed counter) makes lastSeq()
// continue where the deleted stream stopped, and the learner's accounting identity keeps holding.
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { headers, type Msg } from "@nats-io/transport-node";
import type { JobNames } from "../../core/nats-names.ts";
import type { CodecErrorKind } from "../../core/trajectory-codec.ts";
import type { TrajectoryCheckCause } from "../../learner/trajectory-check.ts";
import { type Log, retrying } from "./connection.ts";
import { dlqStreamConfig, ensureStream, type TrajStreamOptions } from "./trajectory-stream.ts";

/** Why a message was dead-lettered: it did not decode (codec), or it decoded but failed the learner's intake checks. */
export type DeadLetterKind = CodecErrorKind | Exclude<TrajectoryCheckCause, "policy-version-ahead">;

/** Headers on a dead-lettered message. */
export const DLQ_HEADERS = {
  reason: "Steppo-Dlq-Reason",
  error: "Steppo-Dlq-Error",
  subject: "Steppo-Dlq-Subject",
  seq: "Steppo-Dlq-Stream-Seq",
} as const;

/** How many dead-lettered stream sequences are remembered, so a redelivered one is not stored twice. */
const DEAD_SEQS_KEPT = 10_000;

/** The part of the consumer's counters the dead-letter queue keeps (checkpointed with the others). */
export interface DeadLetterCounters {
  /** Messages moved to the dead-letter subject and acked: undecodable, or refused at intake. */
  deadLettered: number;
  deadLetteredByKind: Record<DeadLetterKind, number>;
  /** Sequence numbers of DLQ streams that were deleted and recreated: added to the live stream's last sequence. */
  dlqSeqOffset: number;
}

export function emptyDeadLetterCounts(): Record<DeadLetterKind, number> {
  return {
    "unknown-version": 0,
    truncated: 0,
    malformed: 0,
    "non-finite": 0,
    "token-out-of-range": 0,
    "too-long": 0,
    inconsistent: 0,
    "bad-policy-version": 0,
  };
}

export interface DeadLetterQueueOptions {
  js: JetStreamClient;
  jsm: JetStreamManager;
  names: JobNames;
  stream: TrajStreamOptions;
  /** Updated in place: they belong to the consumer's counters. */
  counters: DeadLetterCounters;
  publishTimeoutMs?: number;
  /** Stops retrying a dead-letter publish (the consumer was closed). */
  aborted: () => boolean;
  log: Log;
  warnOnce: (key: string, line: string) => void;
}

export class DeadLetterQueue {
  private readonly deadSeqs = new Set<number>();
  /** Highest sequence seen in the live DLQ stream (PubAcks, info): what its deletion would lose. */
  private seqSeen = 0;

  constructor(private readonly o: DeadLetterQueueOptions) {}

  /**
   * Stores message `seq` of the trajectory stream (its bytes, `kind` and `detail` in headers), once: a
   * redelivery of a message already dead-lettered (its ack was lost) is not stored again. The caller acks it.
   */
  async put(m: Pick<Msg, "subject" | "data">, seq: number, kind: DeadLetterKind, detail: string): Promise<void> {
    if (this.deadSeqs.has(seq)) return;
    const { names, counters } = this.o;
    this.o.warnOnce(`dlq:${kind}`, `dead-lettering ${kind} message from ${m.subject} (seq ${seq}) to ${names.dlqSubject}: ${detail}`);
    const h = headers();
    h.set(DLQ_HEADERS.reason, kind);
    h.set(DLQ_HEADERS.error, detail.replace(/[\r\n]+/g, " ").slice(0, 512));
    h.set(DLQ_HEADERS.subject, m.subject);
    h.set(DLQ_HEADERS.seq, String(seq));
    // The message id makes a retried publish (lost PubAck) store it once.
    await this.publish(m.data, { msgID: `${names.trajStream}-${seq}`, headers: h });
    this.deadSeqs.add(seq);
    if (this.deadSeqs.size > DEAD_SEQS_KEPT) this.deadSeqs.delete(this.deadSeqs.values().next().value as number);
    counters.deadLettered++;
    counters.deadLetteredByKind[kind]++;
  }

  /**
   * Dead-letters ever stored, continuing across a deleted and recreated DLQ stream: the stream's last
   * sequence plus dlqSeqOffset. Recreates a missing DLQ stream.
   */
  async lastSeq(): Promise<number> {
    const { lastSeq } = await retrying(() => this.state(), { maxWaitMs: 30_000 });
    return this.o.counters.dlqSeqOffset + lastSeq;
  }

  /**
   * The DLQ stream's state, recreating the stream if someone deleted it. A recreated stream numbers from 1
   * again, so what the deleted one had reached moves into dlqSeqOffset.
   */
  private async state(): Promise<{ lastSeq: number; messages: number }> {
    const { jsm, names } = this.o;
    try {
      const info = await jsm.streams.info(names.dlqStream);
      this.seqSeen = Math.max(this.seqSeen, info.state.last_seq);
      return { lastSeq: info.state.last_seq, messages: info.state.messages };
    } catch (err) {
      if (!/stream not found/i.test((err as Error).message)) throw err;
      this.o.log(
        `dead-letter stream ${names.dlqStream} is missing (deleted?); recreating it (its ${this.seqSeen} earlier sequence number(s) carry over in the accounting)`,
      );
      await ensureStream(jsm, dlqStreamConfig(names, this.o.stream), false, this.o.log);
      this.o.counters.dlqSeqOffset += this.seqSeen;
      this.seqSeen = 0;
      return { lastSeq: 0, messages: 0 };
    }
  }

  /**
   * Publishes to the DLQ subject. With the DLQ stream deleted nothing answers the publish (the client reports
   * "no responders" / JetStreamNotEnabled, which `retrying` treats as transient and would retry forever), so
   * such a failure recreates the stream before the next attempt.
   */
  private async publish(data: Uint8Array, opts: { msgID: string; headers: ReturnType<typeof headers> }): Promise<void> {
    let checkStream = false;
    const ack = await retrying(
      async () => {
        if (checkStream) {
          checkStream = false;
          await this.state();
        }
        return this.o.js.publish(this.o.names.dlqSubject, data, { ...opts, timeout: this.o.publishTimeoutMs ?? 5000 });
      },
      {
        aborted: this.o.aborted,
        onRetry: (err) => {
          if (/no responders|not enabled/i.test(`${(err as Error).name} ${(err as Error).message}`)) checkStream = true;
        },
      },
    );
    this.seqSeen = Math.max(this.seqSeen, ack.seq);
  }
}
