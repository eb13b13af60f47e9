// Checks a learner progress record from the job's NATS KV before the operator uses it. Anything that can
// write to the job's bucket can write `learner.progress`, and what the operator takes from it goes into the
// StepPOJob status: a value the status schema refuses (`update: "x"`, `successRate: 7`, a megabyte path)
// would make the API server reject that status patch and every later one, freezing the job's status. So
// each field the operator reads is checked against what the status schema accepts, and a record with any
// bad field is refused whole (reported with the field named) rather than partly used.
import { LEARNER_PHASES, type LearnerProgress } from "../runtime/nats/runtime-state.ts";

/** Longest checkpoint path taken into status.lastCheckpoint.path. */
export const MAX_PATH_LENGTH = 1024;
/** Longest learner error message accepted (it is logged, never put in status). */
export const MAX_ERROR_LENGTH = 4096;

export type ProgressCheck = { ok: true; progress: LearnerProgress } | { ok: false; problem: string };

/** Thrown inside the checker only: which field is wrong and why. */
class BadField extends Error {}

/** A short, bounded rendering of a bad value for the message (never the whole value: it may be huge). */
function preview(v: unknown): string {
  if (v === undefined) return "nothing";
  const text = typeof v === "string" ? JSON.stringify(v) : (JSON.stringify(v) ?? String(v));
  const shown = text.length > 40 ? `${text.slice(0, 40)}… (${text.length} characters)` : text;
  return `${Array.isArray(v) ? "array" : v === null ? "null" : typeof v} ${shown}`;
}

function fail(field: string, want: string, v: unknown): never {
  throw new BadField(`field "${field}" must be ${want}, got ${preview(v)}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function count(v: unknown, field: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) fail(field, "a non-negative integer", v);
  return v;
}

function seconds(v: unknown, field: string): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) fail(field, "a finite non-negative number", v);
  return v;
}

function rateOrNull(v: unknown, field: string): number | null {
  if (v === null) return null;
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || v > 1) fail(field, "null or a number in [0, 1]", v);
  return v;
}

function boundedString(v: unknown, field: string, max: number): string {
  if (typeof v !== "string" || v.length > max) fail(field, `a string of at most ${max} characters`, v);
  return v;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

function time(v: unknown, field: string): string {
  if (typeof v !== "string" || !RFC3339.test(v) || !Number.isFinite(Date.parse(v))) fail(field, "an RFC 3339 time", v);
  return v;
}

function phase(v: unknown): LearnerProgress["phase"] {
  if (!(LEARNER_PHASES as readonly unknown[]).includes(v)) fail("phase", `one of ${LEARNER_PHASES.join(", ")}`, v);
  return v as LearnerProgress["phase"];
}

function checkpoint(v: unknown): LearnerProgress["lastCheckpoint"] {
  if (v === null) return null;
  if (!isRecord(v)) fail("lastCheckpoint", "null or an object", v);
  return {
    update: count(v.update, "lastCheckpoint.update"),
    path: boundedString(v.path, "lastCheckpoint.path", MAX_PATH_LENGTH),
    at: time(v.at, "lastCheckpoint.at"),
  };
}

function demand(v: unknown): LearnerProgress["demand"] {
  if (!isRecord(v)) fail("demand", "an object", v);
  return {
    waitSecondsLastUpdate: seconds(v.waitSecondsLastUpdate, "demand.waitSecondsLastUpdate"),
    waitSecondsPerUpdate: seconds(v.waitSecondsPerUpdate, "demand.waitSecondsPerUpdate"),
    backlog: count(v.backlog, "demand.backlog"),
    staleDrops: count(v.staleDrops, "demand.staleDrops"),
    workers: count(v.workers, "demand.workers"),
  };
}

function trajectories(v: unknown): LearnerProgress["trajectories"] {
  if (!isRecord(v)) fail("trajectories", "an object", v);
  const keys = ["published", "consumed", "stale", "deadLettered", "duplicates", "inFlight"] as const;
  return Object.fromEntries(keys.map((k) => [k, count(v[k], `trajectories.${k}`)])) as unknown as LearnerProgress["trajectories"];
}

function policyLag(v: unknown): LearnerProgress["policyLag"] {
  if (!isRecord(v)) fail("policyLag", "an object", v);
  return { mean: seconds(v.mean, "policyLag.mean"), max: count(v.max, "policyLag.max") };
}

function rates(v: unknown): LearnerProgress["rates"] {
  if (!isRecord(v)) fail("rates", "an object", v);
  return {
    envStepsPerSecond: seconds(v.envStepsPerSecond, "rates.envStepsPerSecond"),
    episodesPerSecond: seconds(v.episodesPerSecond, "rates.episodesPerSecond"),
  };
}

/** Fields a record may leave out (the warm-up and failure records do), each with its check. */
const OPTIONAL_FIELDS: { [K in keyof LearnerProgress]?: (v: unknown, field: string) => LearnerProgress[K] } = {
  update: count,
  updates: count,
  envSteps: count,
  trainSuccess: rateOrNull,
  testSuccess: rateOrNull,
  lastCheckpoint: checkpoint,
  demand,
  trajectories,
  policyLag,
  rates,
  error: (v, field) => boundedString(v, field, MAX_ERROR_LENGTH),
  updatedAt: time,
};

/**
 * The record as the operator may use it, rebuilt from checked fields only (unknown keys are dropped), or
 * the first problem found. `phase` is required; any other field may be absent, never malformed.
 */
export function checkProgress(value: unknown): ProgressCheck {
  try {
    if (!isRecord(value)) fail("(record)", "a JSON object", value);
    const out: Record<string, unknown> = { phase: phase(value.phase) };
    for (const [field, check] of Object.entries(OPTIONAL_FIELDS)) {
      if (value[field] !== undefined) out[field] = (check as (v: unknown, f: string) => unknown)(value[field], field);
    }
    return { ok: true, progress: out as unknown as LearnerProgress };
  } catch (err) {
    if (err instanceof BadField) return { ok: false, problem: err.message };
    throw err;
  }
}
