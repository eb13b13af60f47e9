// Per-job NATS names: streams, subjects, consumer, KV bucket and object store. One job never sees another's
// messages, whatever namespace or cluster it runs in: names derive from the job's identity (cluster id,
// namespace, name), not from its name alone, so ns-a/quickstart and ns-b/quickstart (or two clusters'
// default/quickstart on one shared NATS server) get disjoint streams, buckets and subjects.
//
// Every name is made of [A-Za-z0-9_-] (valid as a subject token and as a stream, bucket or consumer name)
// and the longest one stays far below NATS's 255-character limit on stream names. When an identity cannot
// be spelled plainly (characters NATS disallows, upper case, which case-insensitive file systems would
// fold, or too long), it is shortened to a readable prefix plus a sha256 digest of the exact identity:
// 128 bits, so no one can search for two identities that share a name.
import { createHash } from "node:crypto";

/** Which job, on which cluster: what a job's NATS names are unique for. */
export interface NatsJobRef {
  /** The operator's cluster id (`--cluster-id`), for several clusters sharing one NATS server; "" or absent: none. */
  cluster?: string;
  namespace: string;
  name: string;
}

/** The namespace of jobs that run outside Kubernetes (`steppo run --nats`) or whose job file names none. */
export const DEFAULT_NAMESPACE = "default";

/** Longest scope token (`JobNames.job`); the longest name built from it is `OBJ_steppo-<token>-results`. */
export const MAX_TOKEN_LENGTH = 64;
/** Hex digits of the sha256 digest in a shortened name (128 bits: collisions cannot be found by search). */
export const HASH_HEX_DIGITS = 32;

/** What may be spelled as is: lower case only, so no two names differ only in case. */
const PLAIN_PART = /^[a-z0-9-]+$/;
/** A worker id may keep upper case: it is a subject token and a KV key, never a file name. */
const SAFE_TOKEN = /^[A-Za-z0-9_-]{1,64}$/;
/** Marks a shortened token. Plain tokens never contain it: their parts are non-empty and have no "_". */
const HASH_MARK = "__";

function digest(identity: string): string {
  return createHash("sha256").update(identity).digest("hex").slice(0, HASH_HEX_DIGITS);
}

/** `readable` cut to fit, then the digest of `identity` (which must determine the token on its own). */
function shortened(readable: string, identity: string, maxLength: number): string {
  const room = maxLength - HASH_MARK.length - HASH_HEX_DIGITS;
  const prefix = readable
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, "-")
    .slice(0, room);
  return `${prefix}${HASH_MARK}${digest(identity)}`;
}

/**
 * The token that scopes every NATS name of a job: `<cluster>_<namespace>_<name>` (no cluster part when the
 * cluster id is empty) when each part is plain and the whole fits, else a shortened form. Plain tokens are
 * injective (parts contain no "_", so the parts can be read back) and never contain "__"; shortened ones
 * always do and differ by the digest of the exact (cluster, namespace, name) triple.
 */
export function jobToken(ref: NatsJobRef): string {
  if (ref.name === "") throw new Error("NATS names: the job name must not be empty");
  if (ref.namespace === "") throw new Error("NATS names: the job namespace must not be empty");
  const cluster = ref.cluster ?? "";
  const parts = cluster === "" ? [ref.namespace, ref.name] : [cluster, ref.namespace, ref.name];
  const plain = parts.join("_");
  if (parts.every((p) => PLAIN_PART.test(p)) && plain.length <= MAX_TOKEN_LENGTH) return plain;
  return shortened(plain, JSON.stringify([cluster, ref.namespace, ref.name]), MAX_TOKEN_LENGTH);
}

/** A string usable as one subject token or KV key token (worker ids). Deterministic; shortened like jobToken. */
export function sanitizeName(name: string): string {
  if (name.length === 0) throw new Error("NATS name must not be empty");
  if (SAFE_TOKEN.test(name)) return name;
  return shortened(name, name, MAX_TOKEN_LENGTH);
}

/** Cluster ids are DNS labels (as `--cluster-id` documents): an error message, or undefined when valid. */
export function clusterIdProblem(id: string): string | undefined {
  if (id === "") return undefined;
  if (id.length > 32 || !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(id)) {
    return `cluster id "${id}" must be at most 32 characters of a-z, 0-9 and "-", starting and ending with a letter or digit`;
  }
  return undefined;
}

export interface JobNames {
  /** The job's scope token (see jobToken), part of every name below. */
  job: string;
  /** Stream holding the job's trajectories (work-queue retention). */
  trajStream: string;
  /** Filter subject covering every worker: `steppo.<job>.traj.>`. */
  trajFilter: string;
  /** Subject one worker publishes on: `steppo.<job>.traj.<workerId>`. */
  trajSubject(workerId: string): string;
  /** Dead-letter subject for undecodable trajectory messages: `steppo.<job>.dlq`. */
  dlqSubject: string;
  /** Stream that keeps dead-lettered messages for inspection. */
  dlqStream: string;
  /** The learner's durable pull consumer. */
  consumer: string;
  /** KV bucket with the current policy version and job state (learner progress, …). */
  kvBucket: string;
  /** Object store holding one object per policy version. */
  weightsBucket: string;
  /**
   * Object store holding the finished run's results (summary, curves, final policy) under the job's TTL
   * (`spec.results.ttlSeconds`). Not one of the job's streams the operator's finalizer deletes: it outlives the job.
   * A suffix, like the weights store's, so that no job's results store can share a name with another job's weights store.
   */
  resultsBucket: string;
}

export function jobNames(ref: NatsJobRef): JobNames {
  const j = jobToken(ref);
  return {
    job: j,
    trajStream: `steppo-${j}-traj`,
    trajFilter: `steppo.${j}.traj.>`,
    trajSubject: (workerId: string) => `steppo.${j}.traj.${sanitizeName(workerId)}`,
    dlqSubject: `steppo.${j}.dlq`,
    dlqStream: `steppo-${j}-dlq`,
    consumer: "learner",
    kvBucket: `steppo-${j}`,
    weightsBucket: `steppo-${j}-weights`,
    resultsBucket: `steppo-${j}-results`,
  };
}

/** The NATS identity of a job from its metadata; a job file without a namespace runs in "default". */
export function natsJobRef(metadata: { name: string; namespace?: string }, cluster = ""): NatsJobRef {
  return { cluster, namespace: metadata.namespace || DEFAULT_NAMESPACE, name: metadata.name };
}

/** Object name of a policy version in the weights bucket. */
export function weightObjectName(version: number): string {
  return `v${version}`;
}

/** KV keys the runtime uses (JobStateKV keys must be dot-separated tokens of [-/_=a-zA-Z0-9]). */
export const KV_KEYS = {
  policyVersion: "policy.version",
  learnerProgress: "learner.progress",
} as const;
