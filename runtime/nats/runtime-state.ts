// What the distributed runtime keeps in the job's KV bucket besides `policy.version` (names.ts): the
// learner's runtime description that workers check before they start, the admission counter (admission.ts)
// and the learner's progress, which the operator reads for the job status.
import type { ModelConfig } from "../../policy/model.ts";

export const RUNTIME_KEYS = {
  /** RuntimeInfo, written by the learner at start. */
  runtime: "runtime.info",
  /** AdmissionState (admission.ts), CAS-updated by workers and the learner. */
  admission: "admission.tickets",
} as const;

export interface RuntimeInfo {
  /** vocabularyHash() of the learner's tokenizer; workers refuse to run with a different one. */
  tokenizerHash: string;
  vocabSize: number;
  model: ModelConfig;
  /** Random id of this learner process: changes on every (re)start. */
  learnerIncarnation: string;
  startedAt: string;
}

/** Totals that satisfy published = consumed + stale + deadLettered + inFlight (see docs/distributed.md). */
export interface TrajectoryAccounting {
  /** Messages the trajectory stream accepted (its last sequence; server-side duplicates are not stored). */
  published: number;
  /** Trained on, and the update that used them is checkpointed. */
  consumed: number;
  /** Dropped as more than maxPolicyLag versions old (or produced by a policy lost in a learner crash), checkpointed. */
  stale: number;
  /** Messages moved to the dead-letter stream: undecodable, or refused at intake (`rejected`). */
  deadLettered: number;
  /** Of deadLettered: trajectories that decoded but failed the learner's intake checks (learner/trajectory-check.ts). */
  rejected?: number;
  /**
   * Episodes rollout workers left out, never published: an environment fault hit them or their group, or
   * they exceeded max_payload compressed. Not part of the identity (they never reached the stream).
   */
  excluded?: number;
  /** Suppressed re-deliveries of trajectories already consumed (not part of the identity). */
  duplicates: number;
  /** In the stream and not yet durable: waiting to be fetched, or held by the learner until its next checkpoint. */
  inFlight: number;
}

export const LEARNER_PHASES = ["starting", "warmup", "training", "done", "failed"] as const;

/**
 * What the learner writes to `learner.progress`. A record may be partial (the warm-up and failure records
 * carry only some fields); the operator checks every field it reads (operator/progress-check.ts).
 */
export interface LearnerProgress {
  phase: (typeof LEARNER_PHASES)[number];
  update: number;
  updates: number;
  envSteps: number;
  /** Success rate of the last training batch. */
  trainSuccess: number | null;
  /** Last greedy in-domain test success rate. */
  testSuccess: number | null;
  lastCheckpoint: { update: number; path: string; at: string } | null;
  /** Signals for the autoscaler: is the learner starved (scale workers up) or flooded (scale down)? */
  demand: {
    /** Seconds the learner waited for samples in the last update. */
    waitSecondsLastUpdate: number;
    /** Mean over the run. */
    waitSecondsPerUpdate: number;
    /** Trajectories in the stream not yet delivered to the learner. */
    backlog: number;
    staleDrops: number;
    /** Live rollout workers holding admission tickets. */
    workers: number;
  };
  trajectories: TrajectoryAccounting;
  /** Policy versions between the sampling policy and the learner's, over the trajectories trained on so far. */
  policyLag?: { mean: number; max: number };
  /** Throughput of the last update, all rollout workers together. */
  rates?: { envStepsPerSecond: number; episodesPerSecond: number };
  error?: string;
  updatedAt: string;
}
