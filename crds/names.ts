// Deterministic names and labels of a StepPOJob's children. Every name is a pure function of the job (and,
// for the learner, of its restart index) so that a reconcile that runs twice, or on a stale cache, or after
// an operator restart, asks the API server for the SAME objects and gets AlreadyExists instead of duplicates.
import { createHash } from "node:crypto";
import type { Validation } from "./schema.ts";
import { API_VERSION, KIND, MAX_REPLICAS } from "./constants.ts";

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

// ---------------------------------------------------------------------------------------------------
// The job-name rule. The name becomes the prefix of every child's name, and pod names become hostnames
// and worker ids (DNS labels, at most 63 characters), Service names must be DNS-1035 labels. So a job
// name is a DNS-1035 label short enough that the longest suffix appended above still fits in 63
// characters, untruncated. The CRD (CEL) and the loader (crds/job-spec.ts) apply this one rule.

/** Learner incarnations the rule leaves room for (a restart index of up to 3 digits). */
const MAX_LEARNER_RESTART = 999;

/** The longest suffix the naming functions above append to a job name. */
export const LONGEST_NAME_SUFFIX = Math.max(
  learnerPodName("", MAX_LEARNER_RESTART).length,
  rolloutPodName("", MAX_REPLICAS - 1).length,
  configMapName("").length,
  pvcName("").length,
  serviceName("a").length - 1,
);

export const MAX_JOB_NAME_LENGTH = MAX_LABEL - LONGEST_NAME_SUFFIX;
const DNS_1035_LABEL = "^[a-z]([-a-z0-9]*[a-z0-9])?$";

export const JOB_NAME_MESSAGE =
  `metadata.name must be a DNS-1035 label of at most ${MAX_JOB_NAME_LENGTH} characters (lowercase letters, digits and '-', ` +
  `starting with a letter, ending with a letter or digit): it is the prefix of the job's pod and Service names, ` +
  `which add up to ${LONGEST_NAME_SUFFIX} characters (such as -rollout-${MAX_REPLICAS - 1})`;

/** Why `name` cannot name a StepPOJob, or undefined when it can. */
export function jobNameProblem(name: unknown): string | undefined {
  const ok = typeof name === "string" && name.length <= MAX_JOB_NAME_LENGTH && new RegExp(DNS_1035_LABEL).test(name);
  return ok ? undefined : JOB_NAME_MESSAGE;
}

/** The rule as a job-level validation: CEL for the API server, the same predicate for local loading. */
export const jobNameValidation: Validation = {
  rule: `size(self.metadata.name) <= ${MAX_JOB_NAME_LENGTH} && self.metadata.name.matches('${DNS_1035_LABEL}')`,
  message: JOB_NAME_MESSAGE,
  fieldPath: ".metadata.name",
  // A missing name is reported once, by the schema's `required`.
  check: (job) => {
    const name = (job.metadata as { name?: unknown } | undefined)?.name;
    return name === undefined || jobNameProblem(name) === undefined;
  },
};
