// The StepPOJob status, written only by the operator through the status subresource. Built with the
// same schema builder as the spec, so the CRD's status schema and the operator's TypeScript types
// come from this one definition. No object here carries a default (`optional: true`): a status is
// whatever the operator last wrote, never something the API server invents on read.
import * as s from "./schema.ts";

export const PHASES = ["Pending", "Created", "Running", "Restarting", "Suspended", "Succeeded", "Failed"] as const;
/**
 * PodsHealthy: False while a pod cannot start (unschedulable, image pull, crash loop, OOM), with the pod's
 * reason. CleanupBlocked: True while a deleted job's NATS resources cannot be deleted (finalizer).
 */
export const CONDITION_TYPES = ["Created", "Running", "Restarting", "Suspended", "Succeeded", "Failed", "PodsHealthy", "CleanupBlocked"] as const;
export const CONDITION_STATUSES = ["True", "False", "Unknown"] as const;

export const conditionSchema = s.object(
  {
    type: s.enumOf(CONDITION_TYPES),
    status: s.enumOf(CONDITION_STATUSES),
    reason: s.string({ description: "CamelCase reason for the last transition." }),
    message: s.string({ description: "Human-readable detail of the last transition." }),
    lastTransitionTime: s.string({ description: "RFC 3339 time the condition last changed status." }),
  },
  { required: ["type", "status"] },
);

export const statusSchema = s.object(
  {
    phase: s.enumOf(PHASES, { description: "Summary of the job's state (the condition most recently True)." }),
    conditions: s.array(conditionSchema, { description: "Latest observation of each condition type." }),
    observedGeneration: s.integer({ minimum: 0, description: "metadata.generation the operator last reconciled." }),
    startTime: s.string({ description: "RFC 3339 time the learner first started." }),
    completionTime: s.string({ description: "RFC 3339 time the job succeeded or failed." }),
    update: s.integer({ minimum: 0, description: "Latest learner update (policy version) reported by the learner." }),
    lastCheckpoint: s.object(
      {
        update: s.integer({ minimum: 0, description: "Learner update the checkpoint holds." }),
        path: s.string({ description: "Checkpoint location inside the checkpoint volume." }),
        time: s.string({ description: "RFC 3339 time the checkpoint was written." }),
      },
      { optional: true, description: "The newest checkpoint the learner wrote (it resumes from here)." },
    ),
    rollout: s.object(
      {
        ready: s.integer({ minimum: 0, description: "Rollout pods Running and Ready (the scale subresource's status replicas)." }),
        desired: s.integer({ minimum: 0, description: "Rollout pods the operator wants (spec.rollout.replicas unless suspended)." }),
      },
      { optional: true },
    ),
    progress: s.string({ description: "update/updates, e.g. 12/30 (the UPDATE column)." }),
    ready: s.string({ description: "Ready/desired rollout pods, e.g. 2/3 (the READY column)." }),
    training: s.object(
      {
        learnerPhase: s.string({ description: "The learner's own phase (starting, warmup, training, done, failed)." }),
        policyVersion: s.integer({ minimum: 0, description: "Policy version the learner has published (= its latest update)." }),
        updates: s.integer({ minimum: 0, description: "Updates the learner will train (spec.training.updates)." }),
        envSteps: s.integer({ minimum: 0, description: "Environment steps trained on, over the run." }),
        envStepsPerSecond: s.number({ minimum: 0, description: "Environment steps per second in the last update, all rollout workers together." }),
        episodesPerSecond: s.number({ minimum: 0, description: "Episodes per second in the last update (the rollout workers' throughput)." }),
        policyLag: s.object(
          {
            mean: s.number({ minimum: 0, description: "Mean policy versions a trained-on sample lagged, over the run." }),
            max: s.integer({ minimum: 0, description: "Largest lag seen." }),
          },
          { optional: true },
        ),
        trainSuccess: s.number({ minimum: 0, maximum: 1, description: "Success rate of the last training batch (sampled)." }),
        heldOutSuccess: s.number({ minimum: 0, maximum: 1, description: "Latest greedy success on the held-out test split." }),
        updatedAt: s.string({ description: "RFC 3339 time the learner wrote this progress." }),
      },
      { optional: true, description: "What an RL user reads: the learner's progress from its NATS KV record." },
    ),
    restarts: s.integer({ minimum: 0, description: "Times the learner pod was recreated after a failure (compared with runPolicy.backoffLimit)." }),
    successRate: s.number({ minimum: 0, maximum: 1, description: "Latest greedy in-domain success rate reported by the learner." }),
    selector: s.string({ description: "Label selector of the rollout pods, for the scale subresource (HPA/KEDA)." }),
    autoscaler: s.object(
      {
        lastScaleTime: s.string({ description: "RFC 3339 time of the last decision that changed replicas (the stabilisation window starts here)." }),
        decision: s.object(
          {
            time: s.string({ description: "RFC 3339 time of the decision." }),
            from: s.integer({ minimum: 0 }),
            to: s.integer({ minimum: 0 }),
            action: s.enumOf(["up", "down", "hold"] as const),
            reason: s.string({ description: "Why, with the numbers that decided it." }),
          },
          { optional: true, required: ["time", "from", "to", "action", "reason"], description: "The latest decision." },
        ),
        signals: s.object(
          {
            update: s.integer({ minimum: 0, description: "Learner update the signals belong to." }),
            waitSecondsLastUpdate: s.number({ minimum: 0, description: "Seconds the learner waited for samples in that update." }),
            backlog: s.integer({ minimum: 0, description: "Trajectories in the stream not yet delivered to the learner." }),
            staleDrops: s.integer({ minimum: 0, description: "Trajectories dropped as too old, over the run." }),
            workers: s.integer({ minimum: 0, description: "Rollout workers holding admission tickets." }),
          },
          {
            optional: true,
            required: ["update", "waitSecondsLastUpdate", "backlog", "staleDrops", "workers"],
            description: "The learner's demand signals the decision used (from its NATS KV progress).",
          },
        ),
        staleDropsAtLastScale: s.integer({ minimum: 0, description: "staleDrops when replicas last changed: growth since then means too many workers." }),
      },
      { optional: true, description: "The built-in autoscaler's state (spec.rollout.autoscale)." },
    ),
  },
  { optional: true },
);

// The builder types every object-valued property as present (true of defaulted spec objects); no status
// field has a default, so every top-level field is optional, nested ones already are.
export type StepPOJobStatus = Partial<s.Static<typeof statusSchema>>;
export type StepPOJobCondition = s.Static<typeof conditionSchema>;
export type Phase = (typeof PHASES)[number];
export type ConditionType = (typeof CONDITION_TYPES)[number];
