// Pods that do not start, read from their status as the scheduler and kubelet report it: Unschedulable,
// image pull failures, crash loops, OOM kills, bad container config. PURE; the planner turns the findings
// into the PodsHealthy condition and a Warning Event, so a job never sits silently in Created.
import type { V1ContainerStatus, V1Pod } from "@kubernetes/client-node";
import type { StepPOJobCondition } from "../crds/steppojob-status.ts";

export interface PodProblem {
  pod: string;
  /** The kubelet's or scheduler's reason (ImagePullBackOff, Unschedulable, OOMKilled, …). */
  reason: string;
  message: string;
}

/** Waiting reasons that mean the container will not run without someone changing something. */
export const STUCK_WAITING_REASONS: ReadonlySet<string> = new Set([
  "ImagePullBackOff",
  "ErrImagePull",
  "ErrImageNeverPull",
  "InvalidImageName",
  "CrashLoopBackOff",
  "CreateContainerConfigError",
  "CreateContainerError",
  "RunContainerError",
]);

function containerProblem(c: V1ContainerStatus): { reason: string; message: string } | undefined {
  const w = c.state?.waiting;
  if (w?.reason && STUCK_WAITING_REASONS.has(w.reason)) {
    // A crash loop's cause is in the last termination (OOMKilled, an exit code): say it.
    const last = c.lastState?.terminated;
    const cause = w.reason === "CrashLoopBackOff" && last ? ` (last exit: ${last.reason ?? "Error"}, code ${last.exitCode})` : "";
    return { reason: last?.reason === "OOMKilled" ? "OOMKilled" : w.reason, message: `container ${c.name}: ${w.message ?? w.reason}${cause}` };
  }
  const t = c.state?.terminated ?? c.lastState?.terminated;
  if (t?.reason === "OOMKilled")
    return { reason: "OOMKilled", message: `container ${c.name} was killed for exceeding its memory limit (exit code ${t.exitCode})` };
  return undefined;
}

/** The first problem of one pod, or undefined when it is starting or running normally (or terminating). */
export function podProblem(p: V1Pod): PodProblem | undefined {
  const pod = p.metadata?.name ?? "";
  if (p.metadata?.deletionTimestamp) return undefined;
  const sched = (p.status?.conditions ?? []).find((c) => c.type === "PodScheduled" && c.status === "False");
  if (sched && (p.status?.phase ?? "Pending") === "Pending") {
    return { pod, reason: sched.reason ?? "Unschedulable", message: sched.message ?? "the pod cannot be scheduled" };
  }
  for (const c of [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])]) {
    const r = containerProblem(c);
    if (r) return { pod, ...r };
  }
  return undefined;
}

export function podProblems(pods: V1Pod[]): PodProblem[] {
  return pods.flatMap((p) => podProblem(p) ?? []);
}

/** The condition's message: each stuck pod with its reason (at most 5 named). */
export function problemsMessage(ps: PodProblem[]): string {
  const shown = ps.slice(0, 5).map((x) => `pod ${x.pod}: ${x.reason}: ${x.message}`);
  return ps.length > 5 ? `${shown.join("; ")}; and ${ps.length - 5} more` : shown.join("; ");
}

/**
 * The PodsHealthy condition for these (active) pods given its previous value: False with the first stuck
 * pod's reason and every stuck pod in the message, plus a Warning Event when it turns False or the reason
 * changes; True again once no pod is stuck. Undefined: never unhealthy, so no condition at all.
 */
export function podsHealthy(
  pods: V1Pod[],
  prev: StepPOJobCondition | undefined,
): { status: "True" | "False"; reason: string; message: string; event?: { type: "Warning"; reason: string; message: string } } | undefined {
  const ps = podProblems(pods);
  if (ps.length === 0) return prev ? { status: "True", reason: "PodsStarted", message: "no pod is stuck" } : undefined;
  const message = problemsMessage(ps);
  const reason = ps[0].reason;
  const told = prev?.status === "False" && prev.reason === reason;
  return { status: "False", reason, message, ...(told ? {} : { event: { type: "Warning", reason: "PodsUnhealthy", message } }) };
}
