// The seam between rollout workers and the learner. `steppo run` uses the in-memory implementation;
// the distributed runtime implements the same interfaces over NATS JetStream (stream, KV, object store).
// Publishing and consuming are separate interfaces because no process does both over NATS: a rollout worker
// only publishes, the learner only consumes (only the embedded in-memory bus is both ends at once).
import type { Trajectory } from "./trajectory.ts";

export interface Delivery {
  traj: Trajectory;
  /** How many times this message was delivered before (0 on first delivery). */
  redeliveries: number;
  /** Confirms the trajectory's effect is durable (trained on and checkpointed, or explicitly dropped). */
  ack(): Promise<void>;
}

/** The rollout workers' end: hands over one finished trajectory (resolves once the bus holds it). */
export interface TrajectoryPublisher {
  publish(traj: Trajectory): Promise<void>;
}

/** The learner's end: deliveries to ack once their effect is durable. */
export interface TrajectoryConsumer<D extends Delivery = Delivery> {
  /** Up to `max` trajectories, waiting at most `waitMs` for the first one. */
  fetch(max: number, waitMs: number): Promise<D[]>;
  close(): Promise<void>;
}

/** Serialised policy weights by version; workers pick up new versions between episodes. */
export interface WeightStore {
  publish(version: number, weights: Uint8Array): Promise<void>;
  /** Latest published version, or -1 when none is. */
  latestVersion(): Promise<number>;
  get(version: number): Promise<Uint8Array | undefined>;
}
