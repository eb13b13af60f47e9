// Pure helpers over StepPOJob status conditions, in the metav1.Condition style: one entry per type,
// lastTransitionTime moves only when the status flips, and the phase is derived from the conditions
// (never stored independently of them) so the two cannot disagree.
import type { ConditionType, Phase, StepPOJobCondition } from "../crds/steppojob-status.ts";

export type Status = StepPOJobCondition["status"];

/** RFC 3339 without fractional seconds, as the API server formats metav1.Time. */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, "Z");
}

export function getCondition(conds: readonly StepPOJobCondition[] | undefined, type: ConditionType): StepPOJobCondition | undefined {
  return conds?.find((c) => c.type === type);
}

export function isTrue(conds: readonly StepPOJobCondition[] | undefined, type: ConditionType): boolean {
  return getCondition(conds, type)?.status === "True";
}

/**
 * Returns the conditions with `type` set, and whether its status changed (callers emit an Event then).
 * Reason and message are refreshed even without a transition; the transition time is kept.
 */
export function setCondition(
  conds: readonly StepPOJobCondition[],
  type: ConditionType,
  status: Status,
  reason: string,
  message: string,
  now: Date,
): { conditions: StepPOJobCondition[]; changed: boolean } {
  const old = getCondition(conds, type);
  const changed = old?.status !== status;
  const next: StepPOJobCondition = { type, status, reason, message, lastTransitionTime: changed ? rfc3339(now) : (old?.lastTransitionTime ?? rfc3339(now)) };
  // In place, so an unchanged status serialises identically and the reconciler can skip the write.
  const conditions = old ? conds.map((c) => (c.type === type ? next : c)) : [...conds, next];
  return { conditions, changed };
}

/** The phase is the most significant True condition. */
export function phaseOf(conds: readonly StepPOJobCondition[] | undefined): Phase {
  for (const t of ["Failed", "Succeeded", "Suspended", "Restarting", "Running", "Created"] as const) {
    if (isTrue(conds, t)) return t;
  }
  return "Pending";
}
