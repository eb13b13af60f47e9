// Per-job NATS names: streams, subjects, consumer, KV bucket and object store. One job never sees another's
// messages. Names are sanitised to what NATS accepts everywhere (subject tokens, stream and bucket names:
// [A-Za-z0-9_-]); a name that had to be changed gets a short hash of the original so that two job names
// differing only in disallowed characters (e.g. "a.b" and "a_b") never collide.

const SAFE = /^[A-Za-z0-9_-]{1,64}$/;

function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(s)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0");
}

/** A string usable as one subject token and inside stream/bucket names. Deterministic; injective in practice. */
export function sanitizeName(name: string): string {
  if (name.length === 0) throw new Error("NATS name must not be empty");
  if (SAFE.test(name)) return name;
  const cleaned = name.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 48);
  return `${cleaned}-${fnv1a(name)}`;
}

export interface JobNames {
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
}

export function jobNames(job: string): JobNames {
  const j = sanitizeName(job);
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
  };
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
