// The embedded transport for `steppo run` without --nats: same interfaces as the NATS implementation,
// with the same at-least-once contract (a fetched but unacked trajectory can be fetched again).
import type { Delivery, TrajectoryConsumer, TrajectoryPublisher, WeightStore } from "../core/bus.ts";
import type { Trajectory } from "../core/trajectory.ts";

const DEAD_LETTERS_KEPT = 1000;

/** Both ends at once: the embedded runtime's workers publish into it and its learner fetches from it. */
export class InMemoryBus implements TrajectoryPublisher, TrajectoryConsumer {
  private queue: Trajectory[] = [];
  private waiters: (() => void)[] = [];
  private closed = false;
  published = 0;
  acked = 0;
  /** Trajectories the consumer refused (the in-memory dead-letter queue; the newest DEAD_LETTERS_KEPT are kept). */
  readonly deadLetters: { traj: Trajectory; cause: string; detail: string }[] = [];
  deadLettered = 0;

  async publish(traj: Trajectory): Promise<void> {
    if (this.closed) throw new Error("bus closed");
    this.published++;
    this.queue.push(traj);
    for (const wake of this.waiters.splice(0)) wake();
  }

  async fetch(max: number, waitMs: number): Promise<Delivery[]> {
    if (this.queue.length === 0 && waitMs > 0 && !this.closed) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.queue.splice(0, max).map((traj) => ({
      traj,
      redeliveries: 0,
      ack: async () => {
        this.acked++;
      },
    }));
  }

  /** Sets a refused trajectory aside with its cause, as the NATS bus moves it to the job's DLQ stream. */
  deadLetter(traj: Trajectory, cause: string, detail: string): void {
    this.deadLettered++;
    this.deadLetters.push({ traj, cause, detail });
    if (this.deadLetters.length > DEAD_LETTERS_KEPT) this.deadLetters.shift();
  }

  get pending(): number {
    return this.queue.length;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const wake of this.waiters.splice(0)) wake();
  }
}

export class InMemoryWeightStore implements WeightStore {
  private readonly versions = new Map<number, Uint8Array>();
  private latest = -1;

  async publish(version: number, weights: Uint8Array): Promise<void> {
    this.versions.set(version, weights);
    this.latest = Math.max(this.latest, version);
    // Keep a few versions, as the object store does.
    for (const v of this.versions.keys()) if (v < this.latest - 2) this.versions.delete(v);
  }

  async latestVersion(): Promise<number> {
    return this.latest;
  }

  async get(version: number): Promise<Uint8Array | undefined> {
    return this.versions.get(version);
  }
}
