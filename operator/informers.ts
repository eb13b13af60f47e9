// Shared informers (list + watch from the list's resourceVersion, kept in a local cache) on StepPOJobs and
// on the pods, services, config maps and claims the operator owns. client-node 2.x re-lists by itself when
// a watch answers 410 Gone; on any other error it stops, so this restarts it with exponential backoff.
import { type Informer, type KubeConfig, type KubernetesListObject, type KubernetesObject, ListWatch, type ObjectCache, Watch } from "@kubernetes/client-node";
import type { V1ConfigMap, V1PersistentVolumeClaim, V1Pod, V1Service } from "@kubernetes/client-node";
import { GROUP, VERSION } from "../crds/steppojob.ts";
import type { JobObject } from "./desired.ts";
import type { Clients } from "./kube.ts";
import { LABEL_JOB, PLURAL } from "../crds/names.ts";
import { trimConfigMap, trimJob, trimMetaOnly, trimPod } from "./trim.ts";

export type Cache<T extends KubernetesObject> = Informer<T> & ObjectCache<T>;

export interface InformerSet {
  jobs: Cache<JobObject & KubernetesObject>;
  pods: Cache<V1Pod>;
  services: Cache<V1Service>;
  configMaps: Cache<V1ConfigMap>;
  pvcs: Cache<V1PersistentVolumeClaim>;
}

export interface InformerOptions {
  /** Watch one namespace instead of the whole cluster. */
  namespace?: string;
  onError?: (what: string, err: unknown) => void;
  /** First restart delay after a watch error (doubles up to 30 s). */
  restartDelayMs?: number;
}

/**
 * client-node's makeInformer, with `trim` applied to every listed and watched object before it is cached
 * (client-node 2.x has no transform option of its own): the caches keep only what the operator reads.
 */
export function makeTrimmedInformer<T extends KubernetesObject>(
  kc: KubeConfig,
  path: string,
  list: () => Promise<KubernetesListObject<T>>,
  trim: (o: T) => T,
  labelSelector?: string,
): Cache<T> {
  const watch = new Watch(kc);
  const trimmed = {
    watch: (
      p: string,
      q: Record<string, string | number | boolean | undefined>,
      cb: (phase: string, obj: unknown, w?: unknown) => void,
      done: (err: unknown) => void,
    ) => watch.watch(p, q, (phase, obj, w) => cb(phase, phase === "ERROR" ? obj : trim(obj as T), w), done),
  } as unknown as Watch;
  const listTrimmed = async () => {
    const l = await list();
    return { ...l, items: l.items.map(trim) };
  };
  return new ListWatch<T>(path, trimmed, listTrimmed, false, labelSelector);
}

// Children are selected by the job label, so the caches hold only what the operator owns.
const CHILD_SELECTOR = LABEL_JOB;

export function makeInformers(c: Clients, opts: InformerOptions = {}): InformerSet {
  const ns = opts.namespace;
  const core = (plural: string) => (ns ? `/api/v1/namespaces/${ns}/${plural}` : `/api/v1/${plural}`);
  const sel = { labelSelector: CHILD_SELECTOR };
  const jobsPath = ns ? `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${PLURAL}` : `/apis/${GROUP}/${VERSION}/${PLURAL}`;
  const set: InformerSet = {
    jobs: makeTrimmedInformer(
      c.kc,
      jobsPath,
      () =>
        ns
          ? c.custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: PLURAL })
          : c.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL }),
      trimJob,
    ),
    pods: makeTrimmedInformer(
      c.kc,
      core("pods"),
      () => (ns ? c.core.listNamespacedPod({ namespace: ns, ...sel }) : c.core.listPodForAllNamespaces(sel)),
      trimPod,
      CHILD_SELECTOR,
    ),
    services: makeTrimmedInformer(
      c.kc,
      core("services"),
      () => (ns ? c.core.listNamespacedService({ namespace: ns, ...sel }) : c.core.listServiceForAllNamespaces(sel)),
      trimMetaOnly,
      CHILD_SELECTOR,
    ),
    configMaps: makeTrimmedInformer(
      c.kc,
      core("configmaps"),
      () => (ns ? c.core.listNamespacedConfigMap({ namespace: ns, ...sel }) : c.core.listConfigMapForAllNamespaces(sel)),
      trimConfigMap,
      CHILD_SELECTOR,
    ),
    pvcs: makeTrimmedInformer(
      c.kc,
      core("persistentvolumeclaims"),
      () => (ns ? c.core.listNamespacedPersistentVolumeClaim({ namespace: ns, ...sel }) : c.core.listPersistentVolumeClaimForAllNamespaces(sel)),
      trimMetaOnly,
      CHILD_SELECTOR,
    ),
  };
  const base = opts.restartDelayMs ?? 500;
  for (const [what, inf] of Object.entries(set) as [string, Cache<KubernetesObject>][]) {
    let delay = base;
    let stopped = false;
    inf.on("connect", () => {
      delay = base;
    });
    inf.on("error", (err) => {
      if (stopped) return;
      opts.onError?.(what, err);
      const t = setTimeout(() => {
        if (!stopped) inf.start().catch((e) => opts.onError?.(what, e));
      }, delay);
      t.unref();
      delay = Math.min(delay * 2, 30_000);
    });
    const stop = inf.stop.bind(inf);
    inf.stop = async () => {
      stopped = true;
      await stop();
    };
  }
  return set;
}

/** Starts every informer; resolves once each has listed and opened its watch (the caches are synced). */
export async function startInformers(set: InformerSet): Promise<void> {
  await Promise.all(Object.values(set).map((i: Cache<KubernetesObject>) => i.start()));
}

export async function stopInformers(set: InformerSet): Promise<void> {
  await Promise.all(Object.values(set).map((i: Cache<KubernetesObject>) => i.stop()));
}
