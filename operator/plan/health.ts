// Pods that cannot start (unschedulable, image pull, crash loop, OOM) as the PodsHealthy condition and a
// Warning Event, so a job does not sit silently in Created (the findings themselves: ../pod-health.ts).
import type { V1Pod } from "@kubernetes/client-node";
import type { StepPOJobCondition } from "../../crds/steppojob-status.ts";
import { getCondition } from "../conditions.ts";
import { podsHealthy } from "../pod-health.ts";
import type { Step } from "./draft.ts";
import { active } from "./pods.ts";

/** Finished pods are not asked: a worker that exited cannot be stuck starting. */
export function podsHealth(pods: V1Pod[], conditions: readonly StepPOJobCondition[]): Step {
  const health = podsHealthy(pods.filter(active), getCondition(conditions, "PodsHealthy"));
  if (!health) return {};
  return {
    conditions: [{ type: "PodsHealthy", status: health.status, reason: health.reason, message: health.message }],
    events: health.event ? [health.event] : [],
  };
}
