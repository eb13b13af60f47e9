// The learner's memory of trajIds, for consumer-side de-duplication. JetStream's duplicate window only
// catches re-publishes within minutes, and a redelivery (ack lost, learner restarted before its checkpoint
// acked) is the same message again: both must not be trained on twice. Every trajId handed out is
// remembered, as held (delivered, not yet acked) or done (acked or dead-lettered; also those restored from a
// checkpoint). Done ids are kept up to a capacity, oldest evicted first; held ones are never evicted, since
// the caller still decides their fate.

export interface Seen {
  /** Handed out and not yet acked: a redelivery of `seq` is the very message the caller holds. */
  held: boolean;
  /** Stream sequence it was delivered as (0 when restored from a checkpoint). */
  seq: number;
}

export class DedupeMemory {
  /** trajId → state; insertion order is age, for eviction. */
  private readonly seen = new Map<string, Seen>();

  /** `alreadyConsumed`: trajIds whose effect is durable (the learner's checkpoint), remembered as done. */
  constructor(
    private readonly capacity: number,
    alreadyConsumed: Iterable<string> = [],
  ) {
    for (const id of alreadyConsumed) this.seen.set(id, { held: false, seq: 0 });
  }

  get(trajId: string): Seen | undefined {
    return this.seen.get(trajId);
  }

  /** First sight of `trajId`: handed out as message `seq`. */
  hold(trajId: string, seq: number): void {
    this.seen.set(trajId, { held: true, seq });
  }

  /** Acked or dead-lettered: moves to the back (the newest done id), evicting the oldest done ids beyond capacity. */
  done(trajId: string, seq: number): void {
    this.seen.delete(trajId);
    this.seen.set(trajId, { held: false, seq });
    this.evict();
  }

  /** Given back (NAK): it will be redelivered and must be handed out again then. */
  forget(trajId: string): void {
    this.seen.delete(trajId);
  }

  /** Remembers trajIds as done (e.g. restored from a checkpoint) unless already known. */
  markConsumed(trajIds: Iterable<string>): void {
    for (const id of trajIds) if (!this.seen.has(id)) this.seen.set(id, { held: false, seq: 0 });
    this.evict();
  }

  get size(): number {
    return this.seen.size;
  }

  private evict(): void {
    if (this.seen.size <= this.capacity) return;
    for (const [id, s] of this.seen) {
      if (this.seen.size <= this.capacity) break;
      if (!s.held) this.seen.delete(id);
    }
  }
}
