// How the planner's sub-steps add up to one Plan. Each step (suspend, learner, rollouts, deadline …) is a
// pure function that returns a Step, plain data; plan() folds the steps into a Draft in a fixed order. The
// order is part of the behaviour: a step reads the conditions as the steps before it left them (the deadline
// sees the Running the learner step just set), and the Events come out in the order the steps ran, so
// `kubectl describe` tells one pass's story in sequence.
import type { V1ConfigMap } from "@kubernetes/client-node";
import type { ConditionType, StepPOJobCondition, StepPOJobStatus } from "../../crds/steppojob-status.ts";
import { rolloutSelector } from "../../crds/names.ts";
import { isTrue, phaseOf, type Status, setCondition } from "../conditions.ts";
import type { JobObject } from "../desired.ts";
import type { Child, JobEvent, Plan } from "../plan.ts";
import { displayFields } from "../status-fields.ts";

export interface ConditionChange {
  type: ConditionType;
  status: Status;
  reason: string;
  message: string;
}

/** What one sub-step decides. Absent fields leave the plan as the earlier steps left it. */
export interface Step {
  create?: Child[];
  update?: V1ConfigMap[];
  deletePods?: string[];
  /** Set in order; each one that turns True records an Event (before `events`), as `kubectl describe` expects. */
  conditions?: ConditionChange[];
  events?: JobEvent[];
  /** Status fields the step owns, merged over the status so far. */
  status?: Partial<StepPOJobStatus>;
  /** Status fields the step removes (a suspended job has no start time: the deadline clock restarts on resume). */
  unset?: (keyof StepPOJobStatus)[];
  /** Drop the creates and updates earlier steps decided: past the deadline nothing new starts. */
  withdraw?: boolean;
  requeueAfterMs?: number;
  scale?: Plan["scale"];
}

/** What a finished job's pass ends with (see finish.ts): these pod deletions replace any decided before. */
export interface Settlement {
  deletePods: string[];
  deleteJob: boolean;
  requeueAfterMs?: number;
  status: Partial<StepPOJobStatus>;
}

/** Failed and Restarting are things an operator wants to see in `kubectl get events --field-selector type=Warning`. */
const WARNING_CONDITIONS: ReadonlySet<ConditionType> = new Set(["Failed", "Restarting"]);

/**
 * `types` set False, each only where it is True now: a condition this job never had stays absent rather
 * than appearing as False, and one already False keeps the reason it went False for.
 */
export function turnOff(conditions: readonly StepPOJobCondition[], types: ConditionType[], reason: string, message: string): ConditionChange[] {
  return types.filter((type) => isTrue(conditions, type)).map((type) => ({ type, status: "False", reason, message }));
}

/** A plan under construction: the status starts from the job's, the Plan from nothing to do. */
export class Draft {
  readonly status: StepPOJobStatus;
  private conds: StepPOJobCondition[];
  private readonly out: Plan = { create: [], update: [], deletePods: [], deleteJob: false, status: {}, events: [] };

  constructor(
    private readonly job: JobObject,
    private readonly now: Date,
  ) {
    const prev = job.status ?? {};
    this.conds = prev.conditions ?? [];
    this.status = { ...prev, selector: rolloutSelector(job.metadata.name) };
    if (job.metadata.generation !== undefined) this.status.observedGeneration = job.metadata.generation;
  }

  get conditions(): readonly StepPOJobCondition[] {
    return this.conds;
  }

  /** Succeeded or Failed: nothing is started any more, the job only settles (see finish.ts). */
  get finished(): boolean {
    return isTrue(this.conds, "Succeeded") || isTrue(this.conds, "Failed");
  }

  apply(step: Step): this {
    const out = this.out;
    if (step.withdraw) {
      out.create = [];
      out.update = [];
    }
    if (step.create) out.create.push(...step.create);
    if (step.update) out.update.push(...step.update);
    if (step.deletePods) out.deletePods.push(...step.deletePods);
    for (const c of step.conditions ?? []) {
      const r = setCondition(this.conds, c.type, c.status, c.reason, c.message, this.now);
      this.conds = r.conditions;
      if (r.changed && c.status === "True")
        out.events.push({ type: WARNING_CONDITIONS.has(c.type) ? "Warning" : "Normal", reason: c.reason, message: c.message });
    }
    if (step.events) out.events.push(...step.events);
    for (const k of step.unset ?? []) delete this.status[k];
    if (step.status) Object.assign(this.status, step.status);
    if (step.requeueAfterMs !== undefined) out.requeueAfterMs = step.requeueAfterMs;
    if (step.scale) out.scale = step.scale;
    return this;
  }

  /** The finished job's last word: cleanPodPolicy's deletions instead of the pass's own, TTL, then done(). */
  settle(s: Settlement): Plan {
    this.out.deletePods = s.deletePods;
    if (s.deleteJob) this.out.deleteJob = true;
    if (s.requeueAfterMs !== undefined) this.out.requeueAfterMs = s.requeueAfterMs;
    Object.assign(this.status, s.status);
    return this.done();
  }

  /** The Plan, with the phase and printer columns derived from the final conditions so they cannot disagree. */
  done(): Plan {
    this.status.conditions = this.conds;
    this.status.phase = phaseOf(this.conds);
    Object.assign(this.status, displayFields(this.status, this.job.spec.training.updates));
    this.out.status = this.status;
    return this.out;
  }
}
