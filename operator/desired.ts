// The children a StepPOJob should have, computed by PURE functions of the job (no API calls, no clock):
// the reconciler diffs these against the informer cache. Pods are immutable, so a pod's spec here is only
// used when the pod is created; the ConfigMap's data is kept in sync on every reconcile.
import type {
  V1ConfigMap,
  V1EnvVar,
  V1OwnerReference,
  V1PersistentVolumeClaim,
  V1Container,
  V1Pod,
  V1PodSecurityContext,
  V1ResourceRequirements,
  V1SecurityContext,
  V1Service,
  V1Volume,
  V1VolumeMount,
} from "@kubernetes/client-node";
import { createHash } from "node:crypto";
import yaml from "js-yaml";
import { DEFAULT_METRICS_PORT, ENV } from "../core/process-config.ts";
import { type HeaderFrom, headerEnvVar, headersFromProblems } from "../crds/secrets.ts";
import type { ModelSpec, StepPOJob } from "../crds/steppojob.ts";
import { MODEL_VOLUME } from "../crds/model-volume.ts";
import { mergeTemplate } from "./template-merge.ts";
import {
  configMapName,
  JOB_API_VERSION,
  JOB_KIND,
  jobLabels,
  LABEL_RESTART,
  LABEL_SPEC_HASH,
  learnerPodName,
  pvcName,
  type Role,
  rolloutPodName,
  serviceName,
} from "../crds/names.ts";

/** A StepPOJob as the API server returns it: server-defaulted spec plus the metadata the operator needs. */
export type JobObject = Omit<StepPOJob, "metadata"> & {
  metadata: StepPOJob["metadata"] & {
    uid?: string;
    generation?: number;
    resourceVersion?: string;
    creationTimestamp?: string | Date;
    deletionTimestamp?: string | Date;
    finalizers?: string[];
  };
  status?: import("../crds/steppojob-status.ts").StepPOJobStatus;
};

/** Operator-wide defaults for what a job may leave out, and the operator's cluster id. */
export interface Defaults {
  image: string;
  natsUrl: string;
  /**
   * This cluster's id (`steppo operator --cluster-id`): part of every job's NATS names, so clusters whose
   * operators share one NATS server never share a stream. "" or absent: none (one cluster per NATS server).
   */
  clusterId?: string;
  /**
   * Most rollout replicas (and maxReplicas) a job may ask this operator for (`steppo operator --max-replicas`);
   * a job above it fails with the ReplicasOverLimit condition before anything is created. Default
   * DEFAULT_MAX_REPLICAS; never above the schema's MAX_REPLICAS.
   */
  maxReplicas?: number;
}

/** The operator's replica limit when `--max-replicas` is not given. */
export const DEFAULT_MAX_REPLICAS = 256;

export const DEFAULTS: Defaults = { image: "ghcr.io/steppo/steppo:0.1.0", natsUrl: "nats://nats:4222" };

// Paths inside the pods. The job file is the ConfigMap's `job.yaml`; checkpoints live on the PVC so a
// recreated learner resumes from them.
export const JOB_FILE_DIR = "/etc/steppo/job";
export const JOB_FILE = `${JOB_FILE_DIR}/job.yaml`;
export const DATA_DIR = "/var/lib/steppo";
export const CHECKPOINT_DIR = `${DATA_DIR}/checkpoints`;
export const NATS_CREDS_DIR = "/etc/steppo/nats";
export const METRICS_PORT_NAME = "metrics";

/**
 * steppo's images run as uid/gid 65532 (see the Dockerfile). Job pods meet the PodSecurity "restricted"
 * profile, which neither process needs more than: non-root (the uid is set too, so the kubelet can verify
 * it whatever USER a custom image declares), the runtime's default seccomp profile, no privilege escalation,
 * no capabilities, and a read-only root filesystem: everything they write goes to a volume (checkpoints and
 * the run directory on the checkpoint claim, temporary files in /tmp). fsGroup makes the claim writable.
 */
export const IMAGE_UID = 65532;
export const TMP_DIR = "/tmp";
const POD_SECURITY: V1PodSecurityContext = {
  runAsNonRoot: true,
  runAsUser: IMAGE_UID,
  runAsGroup: IMAGE_UID,
  fsGroup: IMAGE_UID,
  seccompProfile: { type: "RuntimeDefault" },
};
const CONTAINER_SECURITY: V1SecurityContext = {
  allowPrivilegeEscalation: false,
  capabilities: { drop: ["ALL"] },
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
};

export function ownerRef(job: JobObject): V1OwnerReference {
  return { apiVersion: JOB_API_VERSION, kind: JOB_KIND, name: job.metadata.name, uid: job.metadata.uid ?? "", controller: true, blockOwnerDeletion: true };
}

function meta(job: JobObject, name: string, role?: Role, extra: Record<string, string> = {}) {
  return { name, namespace: job.metadata.namespace, labels: { ...jobLabels(job.metadata.name, role), ...extra }, ownerReferences: [ownerRef(job)] };
}

/** The job file every pod reads (STEPPO_JOB_FILE): the spec as the server defaulted it, without status. */
export function jobFileYaml(job: JobObject): string {
  const doc = { apiVersion: job.apiVersion, kind: job.kind, metadata: { name: job.metadata.name, namespace: job.metadata.namespace }, spec: job.spec };
  return yaml.dump(doc, { sortKeys: true, lineWidth: -1 });
}

/**
 * What a running pod depends on, hashed (like a Deployment's pod-template-hash): the spec and the operator
 * defaults, minus what changes without restarting anyone — the replica count and its bounds (scaling adds
 * or removes pods) and runPolicy (suspend, deadlines, TTL are the operator's business). Pods read the job
 * file once at start, so any other spec change means new pods; the learner resumes from its checkpoint.
 */
export function specHash(job: JobObject, defaults: Defaults = DEFAULTS): string {
  const { replicas: _r, minReplicas: _min, maxReplicas: _max, autoscale: _a, ...rollout } = job.spec.rollout;
  const { runPolicy: _p, ...spec } = job.spec;
  // The cluster id is in the pods' environment (it names their NATS streams), so it is hashed; left out
  // when empty, so that operators without one keep the hashes (and pods) they had.
  // The replica limit is policy, not pod content: changing it must not replace pods.
  const { clusterId, maxReplicas: _limit, ...rest } = defaults;
  const hashed = clusterId ? { ...rest, clusterId } : rest;
  const doc = yaml.dump({ spec: { ...spec, rollout }, defaults: hashed }, { sortKeys: true, lineWidth: -1 });
  return createHash("sha256").update(doc).digest("hex").slice(0, 16);
}

export function desiredConfigMap(job: JobObject): V1ConfigMap {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: meta(job, configMapName(job.metadata.name)), data: { "job.yaml": jobFileYaml(job) } };
}

/** The checkpoint claim, or undefined when the job brings its own (spec.checkpoint.existingClaim). */
export function desiredPvc(job: JobObject): V1PersistentVolumeClaim | undefined {
  const cp = job.spec.checkpoint;
  if (cp.existingClaim) return undefined;
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: meta(job, pvcName(job.metadata.name)),
    spec: {
      accessModes: ["ReadWriteOnce"],
      resources: { requests: { storage: cp.size ?? "1Gi" } },
      ...(cp.storageClassName ? { storageClassName: cp.storageClassName } : {}),
    },
  };
}

export function claimName(job: JobObject): string {
  return job.spec.checkpoint.existingClaim ?? pvcName(job.metadata.name);
}

export function desiredService(job: JobObject): V1Service {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: meta(job, serviceName(job.metadata.name), "learner"),
    spec: {
      // Headless: Prometheus (or a ServiceMonitor) scrapes the pod endpoints, and a job needs no virtual IP
      // from the cluster's service range (a cluster with many jobs would run out).
      clusterIP: "None",
      // Selects whichever learner incarnation is current: the restart index is not in the selector.
      selector: jobLabels(job.metadata.name, "learner"),
      ports: [{ name: METRICS_PORT_NAME, port: DEFAULT_METRICS_PORT, targetPort: METRICS_PORT_NAME, protocol: "TCP" }],
    },
  };
}

type Quantities = Record<string, string | number> | undefined;

/** The CRD allows int-or-string quantities (`nvidia.com/gpu: 1`); a Pod spec wants strings. */
function quantities(q: Quantities): Record<string, string> | undefined {
  return q ? Object.fromEntries(Object.entries(q).map(([k, v]) => [k, String(v)])) : undefined;
}

export function resourceRequirements(r: { requests?: Quantities; limits?: Quantities }): V1ResourceRequirements {
  const requests = quantities(r.requests);
  const limits = quantities(r.limits);
  return { ...(requests ? { requests } : {}), ...(limits ? { limits } : {}) };
}

/**
 * The http environment's headersFrom entries with a secretKeyRef, as env vars the kubelet fills from the
 * Secret (valueFrom, never a `value`): the secret is in neither the job, its ConfigMap nor the pod spec.
 * Both pods open the environment (the learner evaluates on it), so both get them. A malformed list gives
 * none; the planner fails such a job before any pod is made.
 */
export function headerSecretEnv(job: JobObject): V1EnvVar[] {
  const list = job.spec.environment.name === "http" ? job.spec.environment.config?.headersFrom : undefined;
  if (list === undefined || headersFromProblems(list, "headersFrom").length > 0) return [];
  return (list as HeaderFrom[]).flatMap((h) =>
    h.secretKeyRef ? [{ name: headerEnvVar(h.name), valueFrom: { secretKeyRef: { name: h.secretKeyRef.name, key: h.secretKeyRef.key } } }] : [],
  );
}

function commonEnv(job: JobObject, defaults: Defaults): V1EnvVar[] {
  const env: V1EnvVar[] = [
    { name: ENV.jobFile, value: JOB_FILE },
    // The namespace the pod runs in, from the API server (not from the job file): with the cluster id it
    // scopes the job's NATS names, so a job never reads another namespace's trajectories or progress.
    { name: ENV.namespace, valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
    // Credential-free: the CRD, parseJob and the operator's --nats flag refuse user:password@ URLs.
    { name: ENV.natsUrl, value: job.spec.nats.url ?? defaults.natsUrl },
    { name: ENV.metricsPort, value: String(DEFAULT_METRICS_PORT) },
  ];
  if (defaults.clusterId) env.push({ name: ENV.clusterId, value: defaults.clusterId });
  if (job.spec.nats.credentialsSecret) env.push({ name: ENV.natsCredsFile, value: `${NATS_CREDS_DIR}/nats.creds` });
  env.push(...headerSecretEnv(job));
  return env;
}

function commonVolumes(job: JobObject): { volumes: V1Volume[]; mounts: V1VolumeMount[] } {
  const volumes: V1Volume[] = [
    { name: "job", configMap: { name: configMapName(job.metadata.name) } },
    // The root filesystem is read-only: a writable temp directory (the images run the JavaScript build, but a
    // custom image that runs the TypeScript sources has tsx keep its compile cache there).
    { name: "tmp", emptyDir: { sizeLimit: "256Mi" } },
  ];
  const mounts: V1VolumeMount[] = [
    { name: "job", mountPath: JOB_FILE_DIR, readOnly: true },
    { name: "tmp", mountPath: TMP_DIR },
  ];
  if (job.spec.nats.credentialsSecret) {
    volumes.push({ name: "nats-creds", secret: { secretName: job.spec.nats.credentialsSecret } });
    mounts.push({ name: "nats-creds", mountPath: NATS_CREDS_DIR, readOnly: true });
  }
  const model = modelVolume(job.spec.model);
  if (model) {
    volumes.push(model.volume);
    mounts.push(model.mount);
  }
  return { volumes, mounts };
}

/**
 * spec.model.volume as the pod volume `model` and its mount at spec.model.source, or undefined without it.
 * Read-only on both sides: every pod of the job shares the directory and none may change it (the learner's
 * checkpoints hash the model's files and refuse a resume onto others). The CRD keeps the templates off the
 * name and the path (crds/model-volume.ts), so the merge cannot meet a second one.
 */
export function modelVolume(model: ModelSpec): { volume: V1Volume; mount: V1VolumeMount } | undefined {
  const v = model.volume;
  if (v === undefined || model.source === undefined) return undefined;
  // Exactly one of the two is set (the CRD's rule).
  const source: Omit<V1Volume, "name"> = v.persistentVolumeClaim
    ? { persistentVolumeClaim: { claimName: v.persistentVolumeClaim.claimName, readOnly: true } }
    : { configMap: { name: v.configMap?.name ?? "" } };
  const mount: V1VolumeMount = { name: MODEL_VOLUME, mountPath: model.source, readOnly: true, ...(v.subPath ? { subPath: v.subPath } : {}) };
  return { volume: { name: MODEL_VOLUME, ...source }, mount };
}

/** What a learner and a rollout pod differ in; the rest of the pod is the same for both. */
interface PodParts {
  name: string;
  role: "learner" | "rollout";
  labels: Record<string, string>;
  container: Omit<V1Container, "name" | "ports" | "securityContext">;
  volumes: V1Volume[];
  scheduling?: Pick<NonNullable<V1Pod["spec"]>, "nodeSelector" | "tolerations">;
  template: StepPOJob["spec"]["learner"]["template"];
}

/** One job pod: restricted security, no service-account token, the metrics port; the user's template merged over it. */
function jobPod(job: JobObject, p: PodParts): V1Pod {
  return mergeTemplate(
    {
      apiVersion: "v1",
      kind: "Pod",
      metadata: meta(job, p.name, p.role, p.labels),
      spec: {
        // The operator, not the kubelet, replaces a failed pod: it counts learner failures against backoffLimit,
        // and recreates a rollout pod under the same name.
        restartPolicy: "Never",
        // Neither process talks to the API server: no service-account token in the pod.
        automountServiceAccountToken: false,
        containers: [
          {
            name: p.role,
            ...p.container,
            ports: [{ name: METRICS_PORT_NAME, containerPort: DEFAULT_METRICS_PORT, protocol: "TCP" }],
            securityContext: CONTAINER_SECURITY,
          },
        ],
        securityContext: POD_SECURITY,
        volumes: p.volumes,
        ...p.scheduling,
      },
    },
    p.template,
    job.metadata.labels,
  );
}

/** The learner pod of incarnation `restart` (0 first, +1 for each recreation after a failure). */
export function desiredLearnerPod(job: JobObject, restart: number, defaults: Defaults = DEFAULTS): V1Pod {
  const { volumes, mounts } = commonVolumes(job);
  const l = job.spec.learner;
  return jobPod(job, {
    name: learnerPodName(job.metadata.name, restart),
    role: "learner",
    labels: { [LABEL_RESTART]: String(restart), [LABEL_SPEC_HASH]: specHash(job, defaults) },
    container: {
      image: l.image ?? defaults.image,
      command: ["steppo", "learner"],
      args: ["--job", JOB_FILE, "--checkpoint-dir", CHECKPOINT_DIR],
      env: [...commonEnv(job, defaults), { name: ENV.checkpointDir, value: CHECKPOINT_DIR }, { name: ENV.runDir, value: `${DATA_DIR}/run` }],
      resources: resourceRequirements(l.resources),
      volumeMounts: [...mounts, { name: "checkpoints", mountPath: DATA_DIR }],
      terminationMessagePolicy: "FallbackToLogsOnError",
    },
    volumes: [...volumes, { name: "checkpoints", persistentVolumeClaim: { claimName: claimName(job) } }],
    scheduling: {
      ...(l.nodeSelector ? { nodeSelector: l.nodeSelector } : {}),
      ...(l.tolerations ? { tolerations: l.tolerations as NonNullable<V1Pod["spec"]>["tolerations"] } : {}),
    },
    template: l.template,
  });
}

export function desiredRolloutPod(job: JobObject, index: number, defaults: Defaults = DEFAULTS): V1Pod {
  const name = rolloutPodName(job.metadata.name, index);
  const { volumes, mounts } = commonVolumes(job);
  const r = job.spec.rollout;
  return jobPod(job, {
    name,
    role: "rollout",
    labels: { [LABEL_SPEC_HASH]: specHash(job, defaults) },
    container: {
      image: r.image ?? defaults.image,
      command: ["steppo", "worker"],
      args: ["--job", JOB_FILE, "--id", name],
      env: [...commonEnv(job, defaults), { name: ENV.workerId, value: name }],
      resources: resourceRequirements(r.resources),
      volumeMounts: mounts,
    },
    volumes,
    template: r.template,
  });
}

/** Everything but the pods, whose number and names depend on what is observed (see plan.ts). */
export interface DesiredChildren {
  configMap: V1ConfigMap;
  pvc?: V1PersistentVolumeClaim;
  service: V1Service;
}

export function desiredChildren(job: JobObject): DesiredChildren {
  return { configMap: desiredConfigMap(job), pvc: desiredPvc(job), service: desiredService(job) };
}
