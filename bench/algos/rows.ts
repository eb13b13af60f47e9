// The rows of the algorithm benchmark: StepPO, the paper's 2 × 2 ablation, and the critic-free baselines.
// Each row is one (estimator, ratio) pair of the registry; everything else — model, warm start, budget,
// evaluation, learning rate, epochs, clip per ratio mode — is shared, so a row differs by these flags only.
import type { AlgorithmSpec, Estimator, RatioMode } from "../../crds/steppojob.ts";
import { getEstimator } from "../../learner/estimators/registry.ts";

export interface AlgoRow {
  /** Short id for flags, file names and job names. */
  id: string;
  label: string;
  estimator: Estimator;
  ratio: RatioMode;
  /** Why this ratio mode (for the baselines, what their papers use). */
  ratioSource: string;
  /** Settings this row runs with instead of the shared ones (γ, λ, clip of a paper's scripts). */
  algorithm?: Partial<Pick<AlgorithmSpec, "gamma" | "lambda" | "clip">>;
}

export const ROWS: readonly AlgoRow[] = [
  { id: "steppo", label: "StepPO (step-gae + step ratio)", estimator: "step-gae", ratio: "step", ratioSource: "StepPO paper: step-level ratio" },
  {
    id: "step-gae-token-ratio",
    label: "ablation: step-gae + token ratio",
    estimator: "step-gae",
    ratio: "token",
    ratioSource: "StepPO paper's ablation (without the step ratio)",
  },
  {
    id: "token-gae-step-ratio",
    label: "ablation: token-gae + step ratio",
    estimator: "token-gae",
    ratio: "step",
    ratioSource: "StepPO paper's ablation (without step GAE)",
  },
  { id: "ppo", label: "PPO (token-gae + token ratio)", estimator: "token-gae", ratio: "token", ratioSource: "PPO as in RLHF: per-token ratio" },
  {
    id: "ppo-paper",
    label: "PPO, the StepPO authors' settings (token-gae γ 0.99, λ 1)",
    estimator: "token-gae",
    ratio: "token",
    ratioSource: "the StepPO authors' PPO baseline (verl): per-token ratio, γ 0.99 per token, λ 1",
    algorithm: { gamma: 0.99, lambda: 1 },
  },
  {
    id: "steppo-clip02",
    label: "StepPO with the authors' clip 0.2",
    estimator: "step-gae",
    ratio: "step",
    ratioSource: "the StepPO authors' scripts: the step ratio with verl's clip 0.2",
    algorithm: { clip: 0.2 },
  },
  {
    id: "grpo",
    label: "GRPO",
    estimator: "grpo",
    ratio: "token",
    ratioSource: "GRPO (DeepSeekMath): per-token clipped ratio with the sequence advantage broadcast",
  },
  {
    id: "gigpo",
    label: "GiGPO",
    estimator: "gigpo",
    ratio: "token",
    ratioSource: "GiGPO (verl-agent): GRPO's per-token clipped PPO actor loss",
  },
  {
    id: "rloo",
    label: "RLOO",
    estimator: "rloo",
    ratio: "token",
    ratioSource: "RLOO as run in verl/OpenRLHF: per-token clipped PPO loss (the RLOO paper's single on-policy step has no ratio at all)",
  },
];

/** Episodes per task for a row: G for the group-based estimators, 1 (every episode its own task) otherwise. */
export function groupSizeFor(row: AlgoRow, groupSize: number): number {
  return getEstimator(row.estimator).grouped ? groupSize : 1;
}

/** The rows named by `ids`, in benchmark order; unknown ids are an error that lists the known ones. */
export function selectRows(ids: readonly string[] | undefined): AlgoRow[] {
  if (!ids) return [...ROWS];
  const unknown = ids.filter((id) => !ROWS.some((r) => r.id === id));
  if (unknown.length > 0) throw new Error(`--rows: unknown row(s) ${unknown.join(", ")}; known: ${ROWS.map((r) => r.id).join(", ")}`);
  return ROWS.filter((r) => ids.includes(r.id));
}
