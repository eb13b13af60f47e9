// A minimal scheduler for a one-node cluster: the test cluster runs no kube-scheduler, so the node agent
// binds every unscheduled pod (spec.nodeName empty, schedulerName default-scheduler) to its own node through
// the pods/binding subresource, as the scheduler does — but only when the pod fits: nodeSelector matches
// the node's labels, the node tolerates nothing (it has no taints), and the sum of the requests of the pods
// already on the node plus this one's stays within allocatable for every resource (cpu, memory, pods,
// nvidia.com/gpu, ...). A pod that does not fit stays Pending with PodScheduled=False/Unschedulable and is
// tried again whenever a pod on the node changes.
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { parseQuantity } from "./quantity.ts";

export const DEFAULT_SCHEDULER = "default-scheduler";

/** What a pod asks for, per resource: per container requests (limits where a request is absent, as the API
 * server defaults them), summed; init containers run one at a time, so each counts only against the max. */
export function podRequests(pod: V1Pod): Record<string, number> {
  const one = (c: V1Container): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(c.resources?.limits ?? {})) out[k] = parseQuantity(v as string);
    for (const [k, v] of Object.entries(c.resources?.requests ?? {})) out[k] = parseQuantity(v as string);
    return out;
  };
  const sum: Record<string, number> = {};
  for (const c of pod.spec?.containers ?? []) for (const [k, v] of Object.entries(one(c))) sum[k] = (sum[k] ?? 0) + v;
  for (const c of pod.spec?.initContainers ?? []) for (const [k, v] of Object.entries(one(c))) sum[k] = Math.max(sum[k] ?? 0, v);
  sum.pods = 1;
  return sum;
}

/** Pods that hold node resources: bound here and not finished. */
export function holdsResources(pod: V1Pod, nodeName: string): boolean {
  const phase = pod.status?.phase;
  return pod.spec?.nodeName === nodeName && phase !== "Succeeded" && phase !== "Failed";
}

export interface NodeView {
  name: string;
  labels: Record<string, string>;
  allocatable: Record<string, string>;
}

export type Fit = { fits: true } | { fits: false; reason: string };

/** Whether `pod` fits on the node next to `others` (the pods already bound to it). */
export function fits(pod: V1Pod, node: NodeView, others: V1Pod[]): Fit {
  for (const [k, v] of Object.entries(pod.spec?.nodeSelector ?? {})) {
    if (node.labels[k] !== v) return { fits: false, reason: `0/1 nodes are available: 1 node(s) didn't match Pod's node selector (${k}=${v})` };
  }
  const used: Record<string, number> = {};
  for (const o of others) {
    if (o.metadata?.uid === pod.metadata?.uid || !holdsResources(o, node.name)) continue;
    for (const [k, v] of Object.entries(podRequests(o))) used[k] = (used[k] ?? 0) + v;
  }
  const short: string[] = [];
  for (const [k, want] of Object.entries(podRequests(pod))) {
    if (want <= 0) continue;
    const cap = node.allocatable[k] === undefined ? 0 : parseQuantity(node.allocatable[k]);
    if ((used[k] ?? 0) + want > cap + 1e-9) short.push(k);
  }
  if (short.length > 0) return { fits: false, reason: `0/1 nodes are available: ${short.map((k) => `1 Insufficient ${k}`).join(", ")}` };
  return { fits: true };
}

function created(p: V1Pod): number {
  const t = p.metadata?.creationTimestamp;
  return t === undefined ? 0 : new Date(t).getTime();
}

/** Unscheduled pods this scheduler is responsible for, oldest first. */
export function unscheduled(pods: readonly V1Pod[]): V1Pod[] {
  return pods
    .filter(
      (p) =>
        !p.spec?.nodeName &&
        !p.metadata?.deletionTimestamp &&
        (p.spec?.schedulerName ?? DEFAULT_SCHEDULER) === DEFAULT_SCHEDULER &&
        p.status?.phase !== "Succeeded" &&
        p.status?.phase !== "Failed",
    )
    .sort((a, b) => created(a) - created(b));
}
