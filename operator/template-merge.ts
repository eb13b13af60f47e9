// Merges a job's pod template (spec.learner.template / spec.rollout.template, crds/pod-template.ts) over the
// pod the operator generated. PURE. Additive only: labels and annotations are added (the operator's win),
// env vars and mounts are appended to the main container, volumes, tolerations, pull secrets and sidecars to
// the pod; nodeSelector entries are merged (the template's win over spec.learner.nodeSelector); service
// account, affinity and priority class are set. What would break the operator's own fields is refused before
// (CRD CEL and the loader); what is left cannot reach the main container's command, image or resources.
import type { V1Container, V1EnvVar, V1Pod, V1Toleration, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import { KUEUE_QUEUE_LABEL, type PodTemplate } from "../crds/pod-template.ts";

/** Labels of the StepPOJob that go to every pod: Kueue's queue name (plain-pod integration). */
export function passThroughLabels(jobLabels: Record<string, string> | undefined): Record<string, string> {
  const q = jobLabels?.[KUEUE_QUEUE_LABEL];
  return q ? { [KUEUE_QUEUE_LABEL]: q } : {};
}

export function mergeTemplate(pod: V1Pod, template: PodTemplate | undefined, jobLabels?: Record<string, string>): V1Pod {
  const meta = template?.metadata;
  const t = template?.spec;
  const extraLabels = { ...passThroughLabels(jobLabels), ...(meta?.labels ?? {}) };
  const metadata = {
    ...pod.metadata,
    labels: { ...extraLabels, ...pod.metadata?.labels },
    ...(meta?.annotations ? { annotations: { ...meta.annotations, ...pod.metadata?.annotations } } : {}),
  };
  if (!t) return { ...pod, metadata };
  const spec = pod.spec!;
  const [main, ...rest] = spec.containers;
  const merged: V1Container = {
    ...main,
    env: [...(main.env ?? []), ...((t.env ?? []) as V1EnvVar[])],
    volumeMounts: [...(main.volumeMounts ?? []), ...((t.volumeMounts ?? []) as unknown as V1VolumeMount[])],
  };
  const nodeSelector = spec.nodeSelector || t.nodeSelector ? { ...spec.nodeSelector, ...t.nodeSelector } : undefined;
  const tolerations = [...(spec.tolerations ?? []), ...((t.tolerations ?? []) as V1Toleration[])];
  return {
    ...pod,
    metadata,
    spec: {
      ...spec,
      containers: [merged, ...rest, ...((t.containers ?? []) as unknown as V1Container[])],
      volumes: [...(spec.volumes ?? []), ...((t.volumes ?? []) as unknown as V1Volume[])],
      ...(nodeSelector ? { nodeSelector } : {}),
      ...(tolerations.length > 0 ? { tolerations } : {}),
      ...(t.imagePullSecrets?.length ? { imagePullSecrets: t.imagePullSecrets } : {}),
      ...(t.serviceAccountName ? { serviceAccountName: t.serviceAccountName } : {}),
      ...(t.affinity ? { affinity: t.affinity as NonNullable<V1Pod["spec"]>["affinity"] } : {}),
      ...(t.priorityClassName ? { priorityClassName: t.priorityClassName } : {}),
    },
  };
}
