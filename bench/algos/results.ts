// What one benchmark task returns: a warm start per (family, seed), a training per (family, row, seed)
// (and, with --tune, per grid config on the tuning seeds). Plain JSON, so results cross the worker-process
// boundary and go into bench/results/algos.json as they are.
import type { TuneConfig } from "./tuning.ts";

/** The learning curve kept per run: one point per update (test success only where it was evaluated). */
export interface CurveSample {
  update: number;
  envSteps: number;
  /** Success of the sampled training batch. */
  trainSuccess: number | null;
  /** Greedy success on the in-domain test split. */
  testSuccess: number | null;
}

export interface WarmStartResult {
  kind: "warm-start";
  family: string;
  seed: number;
  /** The scripted demonstrations' own success rate. */
  demonstrations?: number;
  /** Success before RL: train (sampled), test, validation (parts written before it existed lack it) and each OOD family (greedy). */
  initial: Record<string, number>;
  wallSeconds: number;
  cpuSeconds: number;
}

export interface TrainResult {
  kind: "train";
  family: string;
  row: string;
  seed: number;
  estimator: string;
  ratio: string;
  clip: number;
  /** Absent in parts written before the tuning protocol (they all ran the settings' learning rate). */
  learningRate?: number;
  gamma: number;
  lambda: number;
  groupSize: number;
  episodesPerUpdate: number;
  updates: number;
  envSteps: number;
  /** In-domain training questions, sampled at the rollout temperature, after RL. */
  train: number;
  /** Held-out in-domain test split, greedy, after RL. */
  test: number;
  /** The validation split, greedy, after RL: what --tune selects on. Absent in parts written before it existed. */
  validation?: number;
  /** --tune: the grid point this run trained with (a tuning run), or the one chosen for its row (a final run). */
  config?: TuneConfig;
  /** Each held-out (OOD) family, greedy, after RL. */
  ood: Record<string, number>;
  wallSeconds: number;
  cpuSeconds: number;
  curve: CurveSample[];
}

export type TaskResult = WarmStartResult | TrainResult;
