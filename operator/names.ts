// Deterministic names and labels of a StepPOJob's children. Every name is a pure function of the job (and,
// for the learner, of its restart index) so that a reconcile that runs twice, or on a stale cache, or after
// an operator restart, asks the API server for the SAME objects and gets AlreadyExists instead of duplicates.
import { createHash } from "node:crypto";
import { API_VERSION, KIND } from "../crds/steppojob.ts";

export const LABEL_JOB = "steppo.dev/job";
export const LABEL_ROLE = "steppo.dev/role";
/** Learner incarnation (0, 1, …): the pod name carries it, the label makes it selectable. */
export const LABEL_RESTART = "steppo.dev/restart";
/** Hash of the spec a pod was created from (specHash in desired.ts); a different hash means replace the pod. */
export const LABEL_SPEC_HASH = "steppo.dev/spec-hash";
export const LABEL_MANAGED_BY = "app.kubernetes.io/managed-by";
export const MANAGER = "steppo-operator";

export const ROLES = ["learner", "rollout"] as const;
export type Role = (typeof ROLES)[number];

export const PLURAL = "steppojobs";
export const JOB_API_VERSION = API_VERSION;
export const JOB_KIND = KIND;

const MAX_LABEL = 63;

function shortHash(s: string): string {
  return createHash("sha256").update(s).digest("hex").slice(0, 8);
}

/**
 * `base` if it fits in `max` characters, else a truncated prefix plus a hash of the whole (still unique and
 * still deterministic). Label values and Service names are limited to 63 characters; job names are not.
 */
export function fit(base: string, max: number): string {
  if (base.length <= max) return base;
  const head = base.slice(0, max - 9).replace(/-+$/, "");
  return `${head}-${shortHash(base)}`;
}

/** The `steppo.dev/job` label value (a label value is at most 63 characters). */
export function jobLabel(job: string): string {
  return fit(job, MAX_LABEL);
}

export function jobLabels(job: string, role?: Role): Record<string, string> {
  return { [LABEL_JOB]: jobLabel(job), ...(role ? { [LABEL_ROLE]: role } : {}), [LABEL_MANAGED_BY]: MANAGER };
}

/** Label selector of the rollout pods: the scale subresource's status.selector (HPA/KEDA count these). */
export function rolloutSelector(job: string): string {
  return `${LABEL_JOB}=${jobLabel(job)},${LABEL_ROLE}=rollout`;
}

export function learnerPodName(job: string, restart: number): string {
  return `${fit(job, 253 - 20)}-learner-${restart}`;
}

export function rolloutPodName(job: string, index: number): string {
  return `${fit(job, 253 - 20)}-rollout-${index}`;
}

export function configMapName(job: string): string {
  return `${fit(job, 253 - 5)}-spec`;
}

export function pvcName(job: string): string {
  return `${fit(job, 253 - 12)}-checkpoints`;
}

/** Services are DNS-1035 labels: at most 63 characters and starting with a letter (job names may start with a digit). */
export function serviceName(job: string): string {
  const base = /^[a-z]/.test(job) ? `${job}-learner` : `spj-${job}-learner`;
  return fit(base, MAX_LABEL);
}

/** Parses `<job>-learner-<n>` / `<job>-rollout-<i>` back into the index (undefined for other names). */
export function podIndex(job: string, role: Role, podName: string): number | undefined {
  const prefix = role === "learner" ? learnerPodName(job, 0).slice(0, -1) : rolloutPodName(job, 0).slice(0, -1);
  if (!podName.startsWith(prefix)) return undefined;
  const rest = podName.slice(prefix.length);
  return /^(0|[1-9]\d*)$/.test(rest) ? Number(rest) : undefined;
}

export function jobKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

export function splitKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf("/");
  return i < 0 ? { namespace: "default", name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}
