// A benchmark training record (bench/algos/results.ts) for the report tests: a row's held-out test success
// on one seed of multihop-qa, everything else fixed unless `extra` says otherwise.
import type { TrainResult } from "../../bench/algos/results.ts";

export function trainRun(row: string, seed: number, test: number, ood: Record<string, number> = {}, extra: Partial<TrainResult> = {}): TrainResult {
  return {
    kind: "train",
    family: "multihop-qa",
    row,
    seed,
    estimator: "step-gae",
    ratio: "step",
    clip: 0.05,
    gamma: 0.99,
    lambda: 1,
    groupSize: 1,
    episodesPerUpdate: 32,
    updates: 10,
    envSteps: 1000 + seed,
    train: test,
    test,
    ood,
    wallSeconds: 60,
    cpuSeconds: 55,
    curve: [],
    ...extra,
  };
}
