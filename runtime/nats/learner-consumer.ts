// The learner's durable pull consumer (`learner`) on the trajectory stream: explicit acks, because the
// learner acks a delivery only once its effect is durable (after the checkpoint that covers it); unlimited
// redeliveries, because a trajectory must never be lost to a learner that crashed too often; max_ack_pending
// bounding what the learner may hold unacked (its memory). A learner restarted with other settings brings
// the existing consumer to them.
import { AckPolicy, DeliverPolicy, type JetStreamManager } from "@nats-io/jetstream";
import type { JobNames } from "../../core/nats-names.ts";
import type { Log } from "./connection.ts";
import { NS_PER_MS } from "./trajectory-stream.ts";

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

/** The consumer options with the defaults filled in. */
export function learnerConsumerOptions(given: Partial<LearnerConsumerOptions> = {}): LearnerConsumerOptions {
  const ackWaitMs = given.ackWaitMs ?? 30_000;
  // Three lease renewals per ack_wait: one lost or late renewal still leaves the lease alive.
  return { ackWaitMs, maxAckPending: 10_000, inProgressIntervalMs: Math.max(100, Math.floor(ackWaitMs / 3)), ...given };
}

/** Creates the durable consumer if missing, else brings its ack_wait and max_ack_pending to `c`. */
export async function ensureLearnerConsumer(jsm: JetStreamManager, n: JobNames, c: LearnerConsumerOptions, log: Log): Promise<void> {
  const wanted = { ack_wait: c.ackWaitMs * NS_PER_MS, max_ack_pending: c.maxAckPending };
  try {
    const info = await jsm.consumers.info(n.trajStream, n.consumer);
    if (info.config.ack_wait !== wanted.ack_wait || info.config.max_ack_pending !== wanted.max_ack_pending) {
      await jsm.consumers
        .update(n.trajStream, n.consumer, wanted)
        .catch((err) => log(`consumer ${n.consumer}: could not update ack_wait/max_ack_pending (${(err as Error).message}); using it as is`));
    }
  } catch (err) {
    if (!/consumer not found/i.test((err as Error).message)) throw err;
    await jsm.consumers.add(n.trajStream, {
      durable_name: n.consumer,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: n.trajFilter,
      max_deliver: -1,
      ...wanted,
    });
  }
}
