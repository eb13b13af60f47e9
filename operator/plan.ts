// The heart of the controller, as a PURE function: given a job, what the informer cache holds for it and
// the time, decide which objects to create/update/delete, the new status and the Events to record. The
// reconciler only executes the plan, so every policy (restarts, backoff, suspend, deadline, TTL,
// cleanPodPolicy, scaling) is unit-testable without an API server, and a re-run on the same input is a
// no-op apart from AlreadyExists answers (level-triggered: the plan depends on state, not on events).
import type { V1ConfigMap, V1PersistentVolumeClaim, V1Pod, V1Service } from "@kubernetes/client-node";
import type { ConditionType, StepPOJobStatus } from "../crds/steppojob-status.ts";
import type { LearnerProgress } from "../runtime/nats/runtime-state.ts";
import { specSecretProblems } from "../crds/secrets.ts";
import { environmentConfigProblem } from "../envs/config-check.ts";
import { autoscale } from "./autoscaler.ts";
import { getCondition, isTrue, phaseOf, rfc3339, type Status, setCondition } from "./conditions.ts";
import { DEFAULT_MAX_REPLICAS, DEFAULTS, type Defaults, desiredChildren, desiredLearnerPod, desiredRolloutPod, type JobObject, specHash } from "./desired.ts";
import { jobNameProblem, LABEL_ROLE, LABEL_SPEC_HASH, podIndex, rolloutSelector } from "../crds/names.ts";
import { podsHealthy } from "./pod-health.ts";
import { displayFields, trainingStatus } from "./status-fields.ts";

export interface Observed {
  /** Pods controlled by this job (owner uid), terminating ones included. */
  pods: V1Pod[];
  configMap?: V1ConfigMap;
  service?: V1Service;
  pvc?: V1PersistentVolumeClaim;
  /** The learner's progress from the job's NATS KV bucket, when the operator reads it. */
  progress?: LearnerProgress;
}

export interface JobEvent {
  type: "Normal" | "Warning";
  reason: string;
  message: string;
}

export type Child = V1Pod | V1ConfigMap | V1Service | V1PersistentVolumeClaim;

export interface Plan {
  create: Child[];
  /** ConfigMaps whose data drifted from the spec (the job file pods read on start). */
  update: V1ConfigMap[];
  deletePods: string[];
  /** ttlSecondsAfterFinished elapsed: delete the StepPOJob itself (owner references take the children). */
  deleteJob: boolean;
  status: StepPOJobStatus;
  events: JobEvent[];
  /** Reconcile again after this long even if nothing changes (deadline, TTL): a timer, not a poll. */
  requeueAfterMs?: number;
  /** The autoscaler's new spec.rollout.replicas, written through the scale subresource (guarded by `from`). */
  scale?: { from: number; to: number };
}

const WARNING_CONDITIONS: ReadonlySet<ConditionType> = new Set(["Failed", "Restarting"]);

function podPhase(p: V1Pod): string {
  return p.status?.phase ?? "Pending";
}

function terminating(p: V1Pod): boolean {
  return p.metadata?.deletionTimestamp !== undefined && p.metadata?.deletionTimestamp !== null;
}

function ready(p: V1Pod): boolean {
  return podPhase(p) === "Running" && (p.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
}

/** Created from another spec than the current one (pods from before spec hashes existed are left alone). */
function outdated(p: V1Pod, hash: string): boolean {
  const h = p.metadata?.labels?.[LABEL_SPEC_HASH];
  return h !== undefined && h !== hash;
}

function active(p: V1Pod): boolean {
  const ph = podPhase(p);
  return ph === "Pending" || ph === "Running" || ph === "Unknown";
}

/** Why a pod failed, from its container statuses (exit code and reason), for messages. */
export function failureReason(p: V1Pod): string {
  const term = (p.status?.containerStatuses ?? []).map((c) => c.state?.terminated).find((t) => t && t.exitCode !== 0);
  if (term) return `exit code ${term.exitCode}${term.reason ? ` (${term.reason})` : ""}`;
  return p.status?.reason ?? p.status?.message ?? "pod failed";
}

const isUpdate = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
const isRate = (v: unknown): v is number => typeof v === "number" && v >= 0 && v <= 1;

/**
 * Progress the learner left in its termination message (JSON), the pod-status path to update/success.
 * Only values the status schema accepts are taken: one it refuses would block every later status patch.
 */
function terminationProgress(p: V1Pod | undefined): { update?: number; successRate?: number } {
  for (const c of p?.status?.containerStatuses ?? []) {
    const msg = c.state?.terminated?.message ?? c.lastState?.terminated?.message;
    if (!msg) continue;
    try {
      const v = JSON.parse(msg) as { update?: unknown; successRate?: unknown };
      return {
        ...(isUpdate(v.update) ? { update: v.update } : {}),
        ...(isRate(v.successRate) ? { successRate: v.successRate } : {}),
      };
    } catch {
      // Not ours (FallbackToLogsOnError puts log tails here): ignore.
    }
  }
  return {};
}

function cleanupPods(pods: V1Pod[], policy: string | undefined): string[] {
  const live = pods.filter((p) => !terminating(p));
  if (policy === "None") return [];
  if (policy === "All") return live.map((p) => p.metadata!.name!);
  return live.filter(active).map((p) => p.metadata!.name!);
}

/**
 * Why this operator refuses the job's size, or undefined: replicas, or maxReplicas (the autoscaler's
 * ceiling), above the operator's limit. Checked before anything is created, so a refused job has no children.
 */
export function replicasRefusal(rollout: JobObject["spec"]["rollout"], limit: number): string | undefined {
  const over = [
    ["spec.rollout.replicas", rollout.replicas],
    ["spec.rollout.maxReplicas", rollout.maxReplicas],
  ].filter((e): e is [string, number] => typeof e[1] === "number" && e[1] > limit);
  if (over.length === 0) return undefined;
  return `${over.map(([f, v]) => `${f} ${v}`).join(" and ")} above this operator's limit of ${limit} rollout replicas (steppo operator --max-replicas)`;
}

function secondsSince(t: string | undefined, now: Date): number | undefined {
  return t === undefined ? undefined : (now.getTime() - Date.parse(t)) / 1000;
}

export function plan(job: JobObject, observed: Observed, now: Date, defaults: Defaults = DEFAULTS): Plan {
  const name = job.metadata.name;
  const prev = job.status ?? {};
  const out: Plan = { create: [], update: [], deletePods: [], deleteJob: false, status: {}, events: [] };
  let conditions = prev.conditions ?? [];
  const status: StepPOJobStatus = { ...prev, selector: rolloutSelector(name) };
  if (job.metadata.generation !== undefined) status.observedGeneration = job.metadata.generation;

  const set = (type: ConditionType, s: Status, reason: string, message: string) => {
    const r = setCondition(conditions, type, s, reason, message, now);
    conditions = r.conditions;
    if (r.changed && s === "True") out.events.push({ type: WARNING_CONDITIONS.has(type) ? "Warning" : "Normal", reason, message });
  };
  const finish = () => {
    status.conditions = conditions;
    status.phase = phaseOf(conditions);
    Object.assign(status, displayFields(status, job.spec.training.updates));
    out.status = status;
    return out;
  };
  const finished = () => isTrue(conditions, "Succeeded") || isTrue(conditions, "Failed");
  const settle = () => {
    // A finished job: cleanPodPolicy decides which pods remain, ttlSecondsAfterFinished when the job goes.
    out.deletePods = cleanupPods(observed.pods, job.spec.runPolicy.cleanPodPolicy);
    status.completionTime ??= rfc3339(now);
    const ttl = job.spec.runPolicy.ttlSecondsAfterFinished;
    if (ttl !== undefined) {
      const left = ttl - (secondsSince(status.completionTime, now) ?? 0);
      if (left <= 0) out.deleteJob = true;
      else out.requeueAfterMs = Math.ceil(left * 1000);
    }
    status.rollout = { ready: 0, desired: 0 };
    return finish();
  };

  if (job.metadata.deletionTimestamp) return finish();
  if (finished()) return settle();

  // A credential in the clear in the spec (a job created before the CRD refused it, or through a field
  // the CRD cannot check): copying it into a ConfigMap or an env var would spread it, so write nothing
  // and fail the job. The messages name fields and headers, never values.
  const leaks = specSecretProblems(job.spec);
  if (leaks.length > 0) {
    set("Failed", "True", "CredentialsInSpec", leaks.map((e) => `${e.path}: ${e.message}`).join("; "));
    if (isTrue(conditions, "Running")) set("Running", "False", "CredentialsInSpec", "the spec holds credentials in the clear");
    return settle();
  }

  // A name the CRD refuses today (a job stored before the rule): its pods could not load the job file.
  const badName = jobNameProblem(name);
  if (badName) {
    set("Failed", "True", "InvalidName", badName);
    return settle();
  }

  // Too large for this operator: refused whole, never partly created (a scale-up past the limit fails the
  // job too, and cleanPodPolicy decides what happens to its pods).
  const tooLarge = replicasRefusal(job.spec.rollout, defaults.maxReplicas ?? DEFAULT_MAX_REPLICAS);
  if (tooLarge) {
    set("Failed", "True", "ReplicasOverLimit", tooLarge);
    if (isTrue(conditions, "Running")) set("Running", "False", "ReplicasOverLimit", "too many rollout replicas");
    return settle();
  }

  // An environment config that every pod would refuse at start (the CRD keeps environment.config free-form):
  // fail the job with the environment's own message instead of crash-looping its pods.
  const invalid = environmentConfigProblem(job.spec.environment);
  if (invalid) {
    set("Failed", "True", "InvalidSpec", `${invalid.path}: ${invalid.message}`);
    if (isTrue(conditions, "Running")) set("Running", "False", "InvalidSpec", "the spec is invalid");
    return settle();
  }

  // Shared children: the job file, the metrics Service, the checkpoint claim.
  const base = desiredChildren(job);
  if (!observed.configMap) out.create.push(base.configMap);
  else if (JSON.stringify(observed.configMap.data ?? {}) !== JSON.stringify(base.configMap.data)) out.update.push(base.configMap);
  if (!observed.service) out.create.push(base.service);
  if (base.pvc && !observed.pvc) out.create.push(base.pvc);

  const byRole = (role: string) => observed.pods.filter((p) => p.metadata?.labels?.[LABEL_ROLE] === role);
  const learners = byRole("learner");
  const rollouts = byRole("rollout");

  // Suspend: every pod goes, the PVC (checkpoints), ConfigMap and Service stay; resume starts a new learner
  // incarnation from the checkpoint. The deadline clock restarts on resume, as for a batch/v1 Job.
  if (job.spec.runPolicy.suspend) {
    out.deletePods = observed.pods.filter((p) => !terminating(p)).map((p) => p.metadata!.name!);
    set("Suspended", "True", "JobSuspended", "spec.runPolicy.suspend is true: pods deleted, checkpoints kept");
    if (isTrue(conditions, "Running")) set("Running", "False", "JobSuspended", "suspended");
    if (isTrue(conditions, "Restarting")) set("Restarting", "False", "JobSuspended", "suspended");
    delete status.startTime;
    status.rollout = { ready: 0, desired: 0 };
    return finish();
  }
  if (isTrue(conditions, "Suspended")) set("Suspended", "False", "JobResumed", "spec.runPolicy.suspend is false: pods recreated");
  status.startTime ??= rfc3339(now);

  // Learner: the current incarnation is the highest index seen (failed incarnations are kept as evidence,
  // which also keeps the index monotonic when the job's status lags behind the cache).
  let restarts = prev.restarts ?? 0;
  for (const p of learners) restarts = Math.max(restarts, podIndex(name, "learner", p.metadata?.name ?? "") ?? 0);
  const current = learners.find((p) => podIndex(name, "learner", p.metadata?.name ?? "") === restarts);
  const backoffLimit = job.spec.runPolicy.backoffLimit ?? 3;
  const hash = specHash(job, defaults);
  const progress = { ...terminationProgress(current) };
  if (observed.progress) {
    status.training = trainingStatus(observed.progress, job.spec.training.updates);
    progress.update = observed.progress.update;
    if (observed.progress.testSuccess !== null) progress.successRate = observed.progress.testSuccess;
    if (observed.progress.lastCheckpoint) {
      const c = observed.progress.lastCheckpoint;
      status.lastCheckpoint = { update: c.update, path: c.path, time: c.at };
    }
  }
  if (progress.update !== undefined) status.update = progress.update;
  if (progress.successRate !== undefined) status.successRate = progress.successRate;

  if (current && podPhase(current) === "Failed" && !terminating(current)) {
    const why = failureReason(current);
    if (restarts + 1 > backoffLimit) {
      status.restarts = restarts;
      if (isTrue(conditions, "Running")) set("Running", "False", "BackoffLimitExceeded", "learner failed");
      if (isTrue(conditions, "Restarting")) set("Restarting", "False", "BackoffLimitExceeded", "learner failed");
      set("Failed", "True", "BackoffLimitExceeded", `learner pod ${current.metadata?.name} failed (${why}) and backoffLimit ${backoffLimit} is exhausted`);
      return settle();
    }
    restarts += 1;
    const next = desiredLearnerPod(job, restarts, defaults);
    out.create.push(next);
    if (isTrue(conditions, "Running")) set("Running", "False", "LearnerFailed", `learner pod ${current.metadata?.name} failed`);
    set(
      "Restarting",
      "True",
      "LearnerFailed",
      `learner pod ${current.metadata?.name} failed (${why}); recreated as ${next.metadata?.name} (restart ${restarts} of ${backoffLimit})`,
    );
  } else if (current && terminating(current)) {
    // Being deleted (spec change, or by hand): whatever it exits with, the same incarnation comes back
    // once it is gone. Its phase is not a verdict on the job: a SIGTERMed learner checkpoints and exits 0.
  } else if (current && active(current) && outdated(current, hash)) {
    out.deletePods.push(current.metadata!.name!);
    out.events.push({
      type: "Normal",
      reason: "SpecChanged",
      message: `learner pod ${current.metadata?.name} runs an outdated spec; replacing it (it resumes from the checkpoint)`,
    });
  } else if (current && podPhase(current) === "Succeeded") {
    if (isTrue(conditions, "Running")) set("Running", "False", "LearnerSucceeded", "training finished");
    if (isTrue(conditions, "Restarting")) set("Restarting", "False", "LearnerSucceeded", "training finished");
    set("Succeeded", "True", "LearnerSucceeded", `learner pod ${current.metadata?.name} completed training`);
    status.restarts = restarts;
    return settle();
  } else if (!current) {
    // First start, after a resume, or the pod was deleted by someone: same incarnation, same name.
    out.create.push(desiredLearnerPod(job, restarts, defaults));
  } else if (podPhase(current) === "Running") {
    if (isTrue(conditions, "Restarting")) set("Restarting", "False", "LearnerRunning", `learner pod ${current.metadata?.name} is running`);
    set("Running", "True", "LearnerRunning", `learner pod ${current.metadata?.name} is running`);
  }
  status.restarts = restarts;

  // Autoscaler: decides on each new learner update; the change goes to the spec through the scale
  // subresource and the pods follow on the reconcile that the spec change triggers.
  if (job.spec.rollout.autoscale.enabled && observed.progress) {
    const next = autoscale(job.spec.rollout, observed.progress, prev.autoscaler, now);
    if (next) {
      status.autoscaler = next;
      const d = next.decision;
      if (d && d.to !== d.from) {
        out.scale = { from: d.from, to: d.to };
        out.events.push({
          type: "Normal",
          reason: d.action === "up" ? "ScaledUp" : "ScaledDown",
          message: `rollout replicas ${d.from} → ${d.to}: ${d.reason}`,
        });
      }
    }
  }

  // Rollout pods: indices [0, replicas) exist; failed ones are deleted and come back under the same name
  // once the deletion is observed; surplus indices (scale down) are deleted.
  const desired = job.spec.rollout.replicas;
  const byIndex = new Map<number, V1Pod>();
  for (const p of rollouts) {
    const i = podIndex(name, "rollout", p.metadata?.name ?? "");
    if (i === undefined || i >= desired) {
      if (!terminating(p)) out.deletePods.push(p.metadata!.name!);
    } else byIndex.set(i, p);
  }
  let readyCount = 0;
  let replaced = 0;
  for (let i = 0; i < desired; i++) {
    const p = byIndex.get(i);
    if (!p) out.create.push(desiredRolloutPod(job, i, defaults));
    else if (terminating(p)) continue;
    else if (active(p) && outdated(p, hash)) {
      // Workers are stateless: replace them all at once; each comes back under its name with the new spec.
      out.deletePods.push(p.metadata!.name!);
      replaced++;
    } else if (podPhase(p) === "Failed") {
      // Only failed workers are replaced. A worker exits 0 when the learner has marked the job done (or it
      // was asked to stop): Succeeded is finished, not broken; a replacement would leave at once, or be
      // killed by cleanPodPolicy as soon as the learner's success is observed (workers see the mark first).
      out.deletePods.push(p.metadata!.name!);
      out.events.push({
        type: "Warning",
        reason: "RolloutPodReplaced",
        message: `rollout pod ${p.metadata?.name} failed (${failureReason(p)}); replacing it`,
      });
    } else if (ready(p)) readyCount++;
  }
  status.rollout = { ready: readyCount, desired };
  if (replaced > 0) out.events.push({ type: "Normal", reason: "SpecChanged", message: `${replaced} rollout pod(s) run an outdated spec; replacing them` });

  // Pods that cannot start (unschedulable, image pull, crash loop, OOM): a condition and a Warning Event.
  const health = podsHealthy(observed.pods.filter(active), getCondition(conditions, "PodsHealthy"));
  if (health) {
    set("PodsHealthy", health.status, health.reason, health.message);
    if (health.event) out.events.push(health.event);
  }

  set("Created", "True", "ChildrenCreated", `learner, ${desired} rollout pod(s), service, config map and checkpoint claim requested`);

  // activeDeadlineSeconds counts from the (re)start of the job; past it the job fails.
  const deadline = job.spec.runPolicy.activeDeadlineSeconds;
  if (deadline !== undefined) {
    const left = deadline - (secondsSince(status.startTime, now) ?? 0);
    if (left <= 0) {
      out.create = [];
      out.update = [];
      if (isTrue(conditions, "Running")) set("Running", "False", "DeadlineExceeded", "deadline exceeded");
      if (isTrue(conditions, "Restarting")) set("Restarting", "False", "DeadlineExceeded", "deadline exceeded");
      set("Failed", "True", "DeadlineExceeded", `job ran longer than activeDeadlineSeconds (${deadline} s)`);
      return settle();
    }
    out.requeueAfterMs = Math.ceil(left * 1000);
  }
  return finish();
}
