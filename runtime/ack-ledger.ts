// The durable-ack rule of the distributed learner: a trajectory is acknowledged only once its effect is on
// disk, i.e. after the checkpoint that includes the update that trained on it (or that records it as a stale
// drop). Until then it is held; a learner that dies redelivers what it held, and suppresses by trajId what
// its last checkpoint already covers (`doneIds`).

export interface Ackable {
  traj: { trajId: string };
  ack(): Promise<void>;
}

export interface LedgerTotals {
  consumed: number;
  stale: number;
}

/** Acks are sent in chunks so one checkpoint's thousands of acks do not open thousands of requests at once. */
const ACK_CHUNK = 256;

export class AckLedger<D extends Ackable> {
  private held: D[] = [];
  private heldConsumed = 0;
  private heldStale = 0;

  constructor(
    /** Totals already covered by a checkpoint. */
    private totals: LedgerTotals,
    /** TrajIds trained on or dropped, newest last: redeliveries of these are suppressed. */
    private doneIds: string[],
    /** How many of `doneIds` a checkpoint keeps. */
    private readonly doneCap: number,
  ) {}

  /** A trajectory taken in at intake (trained on or dropped from now on): its id joins the done list. */
  taken(d: D): void {
    this.doneIds.push(d.traj.trajId);
  }

  /** Taken, then not used after all (a stop before the update): forgotten, so the next learner gets it. */
  untake(ds: D[]): void {
    const unused = new Set(ds.map((d) => d.traj.trajId));
    this.doneIds = this.doneIds.filter((id) => !unused.has(id));
  }

  /** Trained on by the update the next checkpoint includes. */
  consumed(ds: D[]): void {
    this.held.push(...ds);
    this.heldConsumed += ds.length;
  }

  /** Dropped as stale; recorded by the next checkpoint. */
  stale(d: D): void {
    this.held.push(d);
    this.heldStale++;
  }

  /** Stale drops including those not yet checkpointed. */
  get staleTotal(): number {
    return this.totals.stale + this.heldStale;
  }

  get heldCount(): number {
    return this.held.length;
  }

  /** Something a checkpoint must cover before these can be acked. */
  pending(): boolean {
    return this.held.length > 0;
  }

  /** What the next checkpoint records: the totals including what is held, and the (bounded) done list. */
  snapshot(): { accounting: LedgerTotals; doneIds: string[] } {
    this.doneIds = this.doneIds.slice(-this.doneCap);
    return { accounting: { consumed: this.totals.consumed + this.heldConsumed, stale: this.staleTotal }, doneIds: this.doneIds };
  }

  /** The checkpoint holding snapshot() is on disk: everything held is acked. */
  async commit(): Promise<void> {
    this.totals = this.snapshot().accounting;
    const toAck = this.held;
    this.held = [];
    this.heldConsumed = 0;
    this.heldStale = 0;
    for (let i = 0; i < toAck.length; i += ACK_CHUNK) await Promise.all(toAck.slice(i, i + ACK_CHUNK).map((d) => d.ack()));
  }

  get committed(): LedgerTotals {
    return this.totals;
  }
}
