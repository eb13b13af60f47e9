// The deliveries the learner holds: handed out, not yet acked, NAKed or dead-lettered. Each is kept with
// its latest ack subject and original bytes, so that its fate can be sent later, whenever the caller decides:
// - ack: confirmed by the server (a request, retried through an outage for up to ackRetryMs). An ack lost
//   with a server restart would otherwise leave a trained-on message to be redelivered; one that stays
//   unconfirmed is counted (ackFailures), and its redelivery is suppressed by trajId;
// - NAK: given back for redelivery at once (or after a delay), and forgotten by the de-dup memory so that it
//   is handed out again then;
// - dead-letter: stored in the dead-letter queue with its original bytes, then acked;
// - lease: "+WPI" (in progress) for every held delivery on a timer, so the server does not redeliver what a
//   live learner still holds past ack_wait.
import type { NatsConnection } from "@nats-io/transport-node";
import { type ReconnectWatch, retrying } from "./connection.ts";
import type { DeadLetterKind, DeadLetterQueue } from "./dead-letters.ts";
import type { DedupeMemory } from "./dedupe-memory.ts";
import { NS_PER_MS } from "./trajectory-stream.ts";

export interface Held {
  /** The ack subject of its latest delivery (a redelivery while held replaces it). */
  reply: string;
  trajId: string;
  /** The message as received: what a dead-letter keeps. */
  data: Uint8Array;
  subject: string;
}

export interface HeldDeliveriesOptions {
  nc: NatsConnection;
  reconnects: ReconnectWatch;
  dedupe: DedupeMemory;
  dlq: DeadLetterQueue;
  /** The consumer's counters, updated in place. */
  counters: { acked: number; ackFailures: number };
  /** How long an ack keeps being retried through an outage (default 20 s). */
  ackRetryMs?: number;
  warnOnce: (key: string, line: string) => void;
}

export class HeldDeliveries {
  /** stream seq → held delivery. */
  private readonly held = new Map<number, Held>();

  constructor(private readonly o: HeldDeliveriesOptions) {}

  get size(): number {
    return this.held.size;
  }

  hold(seq: number, h: Held): void {
    this.held.set(seq, h);
  }

  /** The server redelivered message `seq`, which the caller still holds: keep it under its new ack subject, renew its lease. */
  redelivered(seq: number, reply: string): void {
    const h = this.held.get(seq);
    if (h) h.reply = reply;
    this.progress(reply);
  }

  /** Acks and waits for the server's confirmation, retrying through an outage for up to ackRetryMs. */
  async confirmAck(reply: string, what: string): Promise<boolean> {
    const { nc } = this.o;
    try {
      await retrying(() => this.o.reconnects.race("ack", () => nc.request(reply, "+ACK", { timeout: 2000 })), {
        maxWaitMs: this.o.ackRetryMs ?? 20_000,
        aborted: () => nc.isClosed(),
      });
      return true;
    } catch (err) {
      this.o.counters.ackFailures++;
      this.o.warnOnce(`ack-failed:${(err as Error).name}`, `ack of ${what} not confirmed (${(err as Error).message}); it will be redelivered and suppressed`);
      return false;
    }
  }

  async ack(seq: number): Promise<void> {
    const h = this.held.get(seq);
    if (!h) return; // already acked
    await this.confirmAck(h.reply, h.trajId);
    if (!this.held.delete(seq)) return;
    this.o.counters.acked++;
    this.o.dedupe.done(h.trajId, seq);
  }

  async nak(seq: number, delayMs?: number): Promise<void> {
    const h = this.held.get(seq);
    if (!h) return;
    this.held.delete(seq);
    this.o.dedupe.forget(h.trajId); // it will come back: hand it out again then
    const body = delayMs ? `-NAK ${JSON.stringify({ delay: delayMs * NS_PER_MS })}` : "-NAK";
    try {
      this.o.nc.publish(h.reply, body);
    } catch {
      // connection gone: ack_wait redelivers it anyway
    }
  }

  /** A delivered trajectory the caller refused: dead-lettered and acked, remembered as done (not handed out again). */
  async deadLetter(seq: number, kind: DeadLetterKind, detail: string): Promise<void> {
    const h = this.held.get(seq);
    if (!h) return; // already acked or dead-lettered
    await this.o.dlq.put(h, seq, kind, detail);
    await this.confirmAck(h.reply, `dead-lettered seq ${seq}`);
    this.held.delete(seq);
    this.o.dedupe.done(h.trajId, seq);
  }

  renewLeases(): void {
    for (const h of this.held.values()) this.progress(h.reply);
  }

  /** Gives every held delivery back (a graceful close): redelivered at once instead of after ack_wait. */
  async nakAll(): Promise<void> {
    for (const seq of [...this.held.keys()]) await this.nak(seq);
  }

  /** Forgets every held delivery without a word to the server (a simulated crash). */
  drop(): void {
    this.held.clear();
  }

  private progress(reply: string): void {
    try {
      if (!this.o.nc.isClosed()) this.o.nc.publish(reply, "+WPI");
    } catch {
      // best effort
    }
  }
}
