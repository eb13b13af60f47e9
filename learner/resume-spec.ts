// Resuming under a changed spec. A checkpoint stores the spec it was trained under (a copy, and a hash of
// its training-relevant part); a run that finds a checkpoint compares that spec with its own and refuses to
// resume when anything that shapes the training changed (estimator, model, environment, batch …): the
// old weights and optimizer state would silently continue under new settings while the summary claimed
// the new ones. Only the changes listed in RESUME_SAFE_FIELDS are allowed. `steppo run --fresh` (and
// `steppo learner --fresh`) starts over instead, setting the old checkpoints aside (never deleting them).
import { createHash } from "node:crypto";
import { mkdir, rename } from "node:fs/promises";
import { basename, join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import type { StepPOJobSpec } from "../crds/steppojob.ts";
import { listCheckpoints } from "./checkpoint-store.ts";

/**
 * Spec fields (a field, or a whole object by its path) a run may change and still resume: how long it
 * trains, how often it evaluates and checkpoints, how many workers produce episodes and where pods run.
 * None of them changes what one update computes. model.volume is where the model's files are stored, not
 * what they are: the checkpoint's model identity (a hash of the files) refuses a resume onto other ones.
 */
export const RESUME_SAFE_FIELDS: readonly string[] = [
  "training.updates",
  "training.evalEvery",
  "training.successRate",
  "checkpoint.interval",
  "checkpoint.keep",
  "checkpoint.dir",
  "checkpoint.size",
  "checkpoint.storageClassName",
  "checkpoint.existingClaim",
  "model.volume",
  "rollout.replicas",
  "rollout.minReplicas",
  "rollout.maxReplicas",
  "rollout.autoscale",
  "rollout.image",
  "rollout.resources",
  "learner.image",
  "learner.resources",
  "learner.nodeSelector",
  "learner.tolerations",
  "nats",
  "results",
  "runPolicy",
];

function isSafe(path: string): boolean {
  return RESUME_SAFE_FIELDS.some((safe) => path === safe || path.startsWith(`${safe}.`));
}

/** Leaf values by dotted path, as JSON stores them (arrays are one leaf; undefined fields are absent). */
function leaves(value: unknown, prefix = "", out = new Map<string, string>()): Map<string, string> {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) leaves(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (value !== undefined) out.set(prefix, JSON.stringify(value));
  return out;
}

/**
 * Defaulted fields added after checkpoints were first written, with the value (JSON) that a checkpoint
 * without them trained under: such a checkpoint still resumes under the default.
 */
const ADDED_DEFAULTS: Readonly<Record<string, string>> = { "model.critic": JSON.stringify("shared") };

/** Paths whose values differ between two specs, sorted, with the old and new value (JSON, or "(unset)"). */
export function specChanges(before: StepPOJobSpec, after: StepPOJobSpec): { path: string; before: string; after: string }[] {
  const a = leaves(JSON.parse(JSON.stringify(before)));
  const b = leaves(JSON.parse(JSON.stringify(after)));
  const value = (m: Map<string, string>, p: string) => m.get(p) ?? (Object.hasOwn(ADDED_DEFAULTS, p) ? ADDED_DEFAULTS[p] : undefined);
  const paths = [...new Set([...a.keys(), ...b.keys()])].filter((p) => value(a, p) !== value(b, p)).sort();
  return paths.map((path) => ({ path, before: value(a, path) ?? "(unset)", after: value(b, path) ?? "(unset)" }));
}

/** The critic a spec trains with; specs written before spec.model.critic trained a shared one. */
function criticOf(spec: StepPOJobSpec): string {
  return spec.model?.critic ?? "shared";
}

/**
 * Refuses to resume a checkpoint trained with the other spec.model.critic: its critic (a separate
 * network, or the policy's own value head) is not the one this run would train. Checked before any
 * weights are imported. A warm start (update 0) holds no critic, so it starts either kind.
 */
export function checkCriticResume(checkpoint: string, stored: { spec: StepPOJobSpec; version: number }, current: StepPOJobSpec): void {
  if (stored.version === 0) return;
  const before = criticOf(stored.spec);
  const after = criticOf(current);
  if (before === after) return;
  throw new ResumeSpecError(
    checkpoint,
    ["model.critic"],
    `spec.model.critic "${before}" → "${after}" (it trained a ${before === "separate" ? "separate critic network" : "value head on the policy's trunk"}, this job would train a ${after === "separate" ? "separate critic network" : "value head on the policy's trunk"})`,
  );
}

/** The spec without the fields a resume may change, canonically serialised (sorted keys). */
function trainingRelevant(spec: StepPOJobSpec): string {
  const kept = [...leaves(JSON.parse(JSON.stringify(spec)))].filter(([path]) => !isSafe(path)).sort(([x], [y]) => (x < y ? -1 : 1));
  return JSON.stringify(kept);
}

/** Hash of the training-relevant part of a spec: stored in every checkpoint, equal means "resume is fine". */
export function trainingSpecHash(spec: StepPOJobSpec): string {
  return createHash("sha256").update(trainingRelevant(spec)).digest("hex");
}

export class ResumeSpecError extends Error {
  constructor(
    readonly checkpoint: string,
    readonly fields: string[],
    detail: string,
  ) {
    super(
      `checkpoint ${checkpoint} was trained under another spec: ${detail}. Resuming would continue that training under the new settings. ` +
        `Restore the old values, or start over with --fresh (the old checkpoints are moved aside). ` +
        `Changes allowed on resume: ${RESUME_SAFE_FIELDS.join(", ")}.`,
    );
    this.name = "ResumeSpecError";
  }
}

/**
 * Throws ResumeSpecError naming every training-relevant field that differs between the checkpoint's spec
 * and the current one. `storedHash` (absent in checkpoints written before hashes) short-cuts the usual case.
 */
export function checkResumeSpec(checkpoint: string, stored: { spec: StepPOJobSpec; specHash?: string; version?: number }, current: StepPOJobSpec): void {
  // At update 0 nothing was trained under the stored RL settings yet: only what made the warm start must match.
  if (stored.version === 0) {
    checkStartSpec(checkpoint, stored.spec, current);
    return;
  }
  if (stored.specHash !== undefined && stored.specHash === trainingSpecHash(current)) return;
  const unsafe = specChanges(stored.spec, current).filter((c) => !isSafe(c.path));
  if (unsafe.length === 0) return;
  const detail = unsafe.map((c) => `${c.path} ${c.before} → ${c.after}`).join(", ");
  throw new ResumeSpecError(
    checkpoint,
    unsafe.map((c) => c.path),
    detail,
  );
}

/**
 * The parts of a spec that decide the warm-started weights and the initial evaluation. Runs that differ
 * only elsewhere (estimator, ratio, batch, updates …) may share one warm start.
 */
export function warmStartKey(spec: StepPOJobSpec): Record<string, unknown> {
  return {
    seed: spec.seed,
    // The critic is made after the warm start (Learner.startCritic): either kind starts from the same one.
    model: { ...spec.model, critic: undefined },
    environment: spec.environment,
    warmup: spec.warmup,
    temperature: spec.rollout.temperature,
    evalEpisodes: spec.training.evalEpisodes,
  };
}

/** The warm-start fields (warmStartKey) in which two specs differ. */
export function warmStartDifferences(stored: StepPOJobSpec, current: StepPOJobSpec): string[] {
  // Through JSON, as the checkpoint stored it: absent and undefined fields compare equal; key order does not matter.
  const plain = (v: unknown) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));
  const want = warmStartKey(current);
  const have = warmStartKey(stored);
  return Object.keys(want).filter((k) => !isDeepStrictEqual(plain(want[k]), plain(have[k])));
}

/** A checkpoint at update 0 (a warm start) starts any run whose warm-start fields are its own. */
function checkStartSpec(checkpoint: string, stored: StepPOJobSpec, current: StepPOJobSpec): void {
  const differ = warmStartDifferences(stored, current);
  if (differ.length > 0) {
    throw new ResumeSpecError(checkpoint, differ, `it is a warm start (update 0) made for a job with another ${differ.join(", ")}`);
  }
}

/**
 * `--fresh`: moves every checkpoint in `dir` into `dir/replaced-<time>/` so the run starts over while the
 * old training stays recoverable (the directory may be a volume mount, so files move, not the directory).
 * Returns the folder they went to, or undefined when there were none.
 */
export async function setAsideCheckpoints(dir: string, now = new Date()): Promise<string | undefined> {
  const found = await listCheckpoints(dir);
  if (found.length === 0) return undefined;
  const aside = join(dir, `replaced-${now.toISOString().replace(/[:.]/g, "-")}`);
  await mkdir(aside, { recursive: true });
  for (const { path } of found) await rename(path, join(aside, basename(path)));
  return aside;
}
