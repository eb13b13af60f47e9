// API clients and the few idempotent writes the reconciler needs. AlreadyExists on create and NotFound on
// delete are successes: both mean the cluster is already as the plan wants it (a second reconcile, another
// replica before it lost its lease, or a stale cache).
import {
  ApiException,
  CoordinationV1Api,
  CoreV1Api,
  type createConfiguration,
  CustomObjectsApi,
  KubeConfig,
  type KubernetesObject,
  type V1ConfigMap,
  type V1PersistentVolumeClaim,
  type V1Pod,
  type V1Service,
} from "@kubernetes/client-node";
import { GROUP, VERSION } from "../crds/steppojob.ts";
import type { StepPOJobStatus } from "../crds/steppojob-status.ts";
import type { Child } from "./plan.ts";
import { PLURAL } from "../crds/names.ts";
import { makePooledApiClient, SharedConnections } from "./api-connections.ts";

export interface Clients {
  kc: KubeConfig;
  core: CoreV1Api;
  custom: CustomObjectsApi;
  coordination: CoordinationV1Api;
}

/** `--kubeconfig` if given, else KUBECONFIG / ~/.kube/config, else the in-cluster service account. */
export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else if (!process.env.KUBECONFIG && process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}

/** The API clients, sharing one pool of keep-alive connections (api-connections.ts: why). */
export function makeClients(kc: KubeConfig): Clients {
  const auth = new SharedConnections(kc);
  const client = <T>(api: new (config: ReturnType<typeof createConfiguration>) => T) => makePooledApiClient(kc, auth, api, "steppo-operator");
  return { kc, core: client(CoreV1Api), custom: client(CustomObjectsApi), coordination: client(CoordinationV1Api) };
}

export function statusCode(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  const c = (err as { code?: unknown; statusCode?: unknown })?.code ?? (err as { statusCode?: unknown })?.statusCode;
  return typeof c === "number" ? c : undefined;
}

/** The address of one StepPOJob for the custom-objects API. */
function jobRef(namespace: string, name: string) {
  return { group: GROUP, version: VERSION, namespace, plural: PLURAL, name };
}

/** Creates a child; true if created, false if it already existed. */
export async function createChild(c: Clients, namespace: string, obj: Child): Promise<boolean> {
  try {
    switch (obj.kind) {
      case "Pod":
        await c.core.createNamespacedPod({ namespace, body: obj as V1Pod });
        break;
      case "Service":
        await c.core.createNamespacedService({ namespace, body: obj as V1Service });
        break;
      case "ConfigMap":
        await c.core.createNamespacedConfigMap({ namespace, body: obj as V1ConfigMap });
        break;
      case "PersistentVolumeClaim":
        await c.core.createNamespacedPersistentVolumeClaim({ namespace, body: obj as V1PersistentVolumeClaim });
        break;
      default:
        throw new Error(`cannot create a ${obj.kind}`);
    }
    return true;
  } catch (err) {
    if (statusCode(err) === 409) return false;
    throw err;
  }
}

export async function replaceConfigMapData(c: Clients, namespace: string, name: string, data: Record<string, string>): Promise<void> {
  // JSON patch "add" replaces /data whether or not it exists; no read-modify-write race on other fields.
  await c.core.patchNamespacedConfigMap({ namespace, name, body: [{ op: "add", path: "/data", value: data }] });
}

/** Deletes a pod in the background; false if it was already gone. */
export async function deletePod(c: Clients, namespace: string, name: string): Promise<boolean> {
  try {
    await c.core.deleteNamespacedPod({ namespace, name, propagationPolicy: "Background" });
    return true;
  } catch (err) {
    if (statusCode(err) === 404) return false;
    throw err;
  }
}

export async function deleteJob(c: Clients, namespace: string, name: string): Promise<void> {
  try {
    await c.custom.deleteNamespacedCustomObject({ ...jobRef(namespace, name), propagationPolicy: "Background" });
  } catch (err) {
    if (statusCode(err) !== 404) throw err;
  }
}

/**
 * Adds `finalizer` to the job as the cache saw it (`seen`): the patch sets that resourceVersion, which the
 * API server checks as a precondition, so a job changed meanwhile is refused (409) rather than its newer
 * finalizer list overwritten. → the resourceVersion the patch made (the version `seen` plus this finalizer:
 * a status computed from `seen` may be written against it), or undefined when refused — the newer version's
 * watch event brings the job back to decide again.
 */
export async function addFinalizer(
  c: Clients,
  namespace: string,
  name: string,
  seen: { finalizers?: string[]; resourceVersion?: string },
  finalizer: string,
): Promise<string | undefined> {
  if (!seen.resourceVersion) throw new Error(`addFinalizer ${namespace}/${name}: the cached job has no resourceVersion`);
  const guard = { op: "replace", path: "/metadata/resourceVersion", value: seen.resourceVersion };
  try {
    const patched = (await c.custom.patchNamespacedCustomObject({
      ...jobRef(namespace, name),
      body: [guard, { op: "add", path: "/metadata/finalizers", value: [...(seen.finalizers ?? []), finalizer] }],
    })) as KubernetesObject;
    return patched.metadata?.resourceVersion;
  } catch (err) {
    if (statusCode(err) === 409) return undefined;
    throw err;
  }
}

/** Removes `finalizer` from the job (guarded like addFinalizer); a job already gone is fine. */
export async function removeFinalizer(c: Clients, namespace: string, name: string, seen: string[], finalizer: string): Promise<void> {
  try {
    await c.custom.patchNamespacedCustomObject({
      ...jobRef(namespace, name),
      body: [
        { op: "test", path: "/metadata/finalizers", value: seen },
        { op: "replace", path: "/metadata/finalizers", value: seen.filter((f) => f !== finalizer) },
      ],
    });
  } catch (err) {
    if (statusCode(err) !== 404) throw err;
  }
}

/**
 * Writes the status subresource, computed from `seen` (the job as the cache held it). The JSON patch tests
 * the uid, so a status computed for a deleted-and-recreated job of the same name is never written onto the
 * new one, and sets the resourceVersion the status was computed from, which the API server checks as a
 * precondition: a status computed from a job the cache had not yet refreshed would overwrite what a newer
 * pass wrote (a Restarting condition, say) with older conditions. Such a write is refused (409) and false
 * returned; the newer version's watch event brings the job back to the queue, so nothing is retried here.
 */
export async function writeStatus(
  c: Clients,
  namespace: string,
  name: string,
  seen: { uid?: string; resourceVersion?: string },
  status: StepPOJobStatus,
): Promise<boolean> {
  try {
    await c.custom.patchNamespacedCustomObjectStatus({
      ...jobRef(namespace, name),
      body: [
        { op: "test", path: "/metadata/uid", value: seen.uid ?? "" },
        ...(seen.resourceVersion ? [{ op: "replace", path: "/metadata/resourceVersion", value: seen.resourceVersion }] : []),
        { op: "add", path: "/status", value: status },
      ],
    });
    return true;
  } catch (err) {
    if (statusCode(err) === 409) return false;
    throw err;
  }
}

/**
 * Sets spec.rollout.replicas through the scale subresource, as `kubectl scale` and an HPA do. The JSON
 * patch tests the current value, so a decision made on a spec someone else has just changed fails (409/422)
 * instead of overwriting theirs; false then, and the next reconcile decides again.
 */
export async function writeScale(c: Clients, namespace: string, name: string, from: number, to: number): Promise<boolean> {
  try {
    await c.custom.patchNamespacedCustomObjectScale({
      ...jobRef(namespace, name),
      body: [
        { op: "test", path: "/spec/replicas", value: from },
        { op: "replace", path: "/spec/replicas", value: to },
      ],
    });
    return true;
  } catch (err) {
    const code = statusCode(err);
    if (code === 409 || code === 422 || code === 404) return false;
    throw err;
  }
}
