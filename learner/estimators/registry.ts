// The estimator registry: `spec.algorithm.estimator` picks one; everything else in the learner is shared,
// so two runs of the benchmark grid differ by this one flag.
import type { Estimator } from "../../crds/steppojob.ts";
import type { AdvantageEstimator } from "./estimator.ts";
import { gigpoEstimator } from "./gigpo.ts";
import { grpoEstimator } from "./grpo.ts";
import { reinforcePlusPlusEstimator } from "./reinforce-pp.ts";
import { rlooEstimator } from "./rloo.ts";
import { stepGaeEstimator } from "./step-gae.ts";
import { tokenGaeEstimator } from "./token-gae.ts";

// A full Record: adding a name to crds' ESTIMATORS without an implementation fails the type check.
const REGISTRY: Record<Estimator, AdvantageEstimator> = {
  "step-gae": stepGaeEstimator,
  "token-gae": tokenGaeEstimator,
  grpo: grpoEstimator,
  gigpo: gigpoEstimator,
  rloo: rlooEstimator,
  "reinforce++": reinforcePlusPlusEstimator,
};

export const estimatorNames = Object.keys(REGISTRY) as Estimator[];

export function getEstimator(name: Estimator): AdvantageEstimator {
  // Object.hasOwn: a name like "toString" must not resolve to Object.prototype's member.
  if (!Object.hasOwn(REGISTRY, name)) {
    throw new Error(`spec.algorithm.estimator: unknown estimator "${String(name)}" (known: ${estimatorNames.join(", ")})`);
  }
  return REGISTRY[name];
}
