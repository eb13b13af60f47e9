// What the informer caches keep of each object: only the fields the operator reads (plan.ts, pod-health.ts,
// finalizer.ts, reconciler.ts). managedFields, kubectl's last-applied-configuration, pod specs, pod IPs,
// image ids, service and claim specs and the like never reach the caches, which hold every job, pod and
// child of the cluster (or namespace). PURE; applied to list results and watch events (informers.ts), so
// changing what the operator reads means changing this file too (test/unit/operator-lifecycle.test.ts).
import type { KubernetesObject, V1ConfigMap, V1ContainerStatus, V1ObjectMeta, V1Pod, V1PodCondition } from "@kubernetes/client-node";

const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

function pick<T extends object, K extends keyof T>(o: T | undefined, keys: readonly K[]): Pick<T, K> | undefined {
  if (!o) return undefined;
  const out = {} as Pick<T, K>;
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

const META_KEYS = [
  "name",
  "namespace",
  "uid",
  "resourceVersion",
  "generation",
  "creationTimestamp",
  "deletionTimestamp",
  "labels",
  "annotations",
  "ownerReferences",
  "finalizers",
] as const;

export function trimMetadata(m: V1ObjectMeta | undefined): V1ObjectMeta | undefined {
  const out = pick(m, META_KEYS);
  if (out?.annotations?.[LAST_APPLIED] !== undefined) {
    const { [LAST_APPLIED]: _, ...rest } = out.annotations;
    out.annotations = rest;
  }
  return out;
}

function trimContainerStatus(c: V1ContainerStatus): V1ContainerStatus {
  return pick(c, ["name", "state", "lastState", "ready", "restartCount"] as const) as V1ContainerStatus;
}

export function trimPod(p: V1Pod): V1Pod {
  const s = p.status;
  return {
    apiVersion: p.apiVersion,
    kind: p.kind,
    metadata: trimMetadata(p.metadata),
    ...(s
      ? {
          status: {
            ...pick(s, ["phase", "reason", "message"] as const),
            ...(s.conditions ? { conditions: s.conditions.map((c) => pick(c, ["type", "status", "reason", "message"] as const) as V1PodCondition) } : {}),
            ...(s.containerStatuses ? { containerStatuses: s.containerStatuses.map(trimContainerStatus) } : {}),
            ...(s.initContainerStatuses ? { initContainerStatuses: s.initContainerStatuses.map(trimContainerStatus) } : {}),
          },
        }
      : {}),
  };
}

/** Jobs keep spec and status whole: the planner reads both. */
export function trimJob<T extends KubernetesObject>(o: T): T {
  const { spec, status } = o as T & { spec?: unknown; status?: unknown };
  return { apiVersion: o.apiVersion, kind: o.kind, metadata: trimMetadata(o.metadata), spec, status } as unknown as T;
}

/** ConfigMaps keep their data (compared with the job file the spec gives). */
export function trimConfigMap(o: V1ConfigMap): V1ConfigMap {
  return { apiVersion: o.apiVersion, kind: o.kind, metadata: trimMetadata(o.metadata), ...(o.data ? { data: o.data } : {}) };
}

/** Services and claims: only whether they exist, and whose they are. */
export function trimMetaOnly<T extends KubernetesObject>(o: T): T {
  return { apiVersion: o.apiVersion, kind: o.kind, metadata: trimMetadata(o.metadata) } as T;
}
