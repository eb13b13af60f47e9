// What the planner reads from a pod's metadata and status. The kubelet's phase is the verdict on a pod,
// except while it terminates: then its exit says nothing about the job (a SIGTERMed learner checkpoints
// and exits 0), so every step asks `terminating` first.
import type { V1Pod } from "@kubernetes/client-node";
import { LABEL_ROLE, LABEL_SPEC_HASH } from "../../crds/names.ts";

export function podPhase(p: V1Pod): string {
  return p.status?.phase ?? "Pending";
}

export function terminating(p: V1Pod): boolean {
  return p.metadata?.deletionTimestamp !== undefined && p.metadata?.deletionTimestamp !== null;
}

export function ready(p: V1Pod): boolean {
  return podPhase(p) === "Running" && (p.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
}

/** Created from another spec than the current one (pods from before spec hashes existed are left alone). */
export function outdated(p: V1Pod, hash: string): boolean {
  const h = p.metadata?.labels?.[LABEL_SPEC_HASH];
  return h !== undefined && h !== hash;
}

/** Not finished: still holds (or will hold) a node's resources. */
export function active(p: V1Pod): boolean {
  const ph = podPhase(p);
  return ph === "Pending" || ph === "Running" || ph === "Unknown";
}

export function byRole(pods: readonly V1Pod[], role: "learner" | "rollout"): V1Pod[] {
  return pods.filter((p) => p.metadata?.labels?.[LABEL_ROLE] === role);
}

/** Why a pod failed, from its container statuses (exit code and reason), for messages. */
export function failureReason(p: V1Pod): string {
  const term = (p.status?.containerStatuses ?? []).map((c) => c.state?.terminated).find((t) => t && t.exitCode !== 0);
  if (term) return `exit code ${term.exitCode}${term.reason ? ` (${term.reason})` : ""}`;
  return p.status?.reason ?? p.status?.message ?? "pod failed";
}
