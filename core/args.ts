// Minimal flag parsing over node:util's parseArgs, with errors that name the flag.
import { parseArgs } from "node:util";
import { trainingSchema } from "../crds/steppojob.ts";

export type FlagSpec = Record<string, { type: "string" | "boolean"; short?: string }>;

export function parseFlags(argv: string[], flags: FlagSpec) {
  try {
    return parseArgs({ args: argv, options: flags, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export class UsageError extends Error {}

export function intFlag(value: string | boolean | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (typeof value !== "string" || value.trim() === "" || !Number.isSafeInteger(n) || n < 0)
    throw new UsageError(`--${name} must be a non-negative integer, got "${String(value)}"`);
  return n;
}

/**
 * `--updates N` overrides spec.training.updates, so it obeys the same range as that field (one rule:
 * the schema's minimum and maximum), not merely "a non-negative integer".
 */
export function updatesFlag(value: string | boolean | undefined): number | undefined {
  const n = intFlag(value, "updates");
  const { minimum = 1, maximum = Number.MAX_SAFE_INTEGER } = trainingSchema.props.updates.openapi;
  if (n !== undefined && (n < minimum || n > maximum))
    throw new UsageError(`--updates must be between ${minimum} and ${maximum} (the range of spec.training.updates), got ${n}`);
  return n;
}

/** The flags every training command (`run`, `run --nats`, `learner`) takes beyond its own. */
export const RUN_FLAGS: FlagSpec = {
  updates: { type: "string" },
  "run-dir": { type: "string" },
  summary: { type: "string" },
  fresh: { type: "boolean" },
  "warm-start": { type: "string" },
  "env-step-budget": { type: "string" },
};

/** The run options those flags give. */
export function runFlags(values: Record<string, string | boolean | undefined>): {
  updates?: number;
  fresh: boolean;
  warmStart?: string;
  envStepBudget?: number;
} {
  const budget = intFlag(values["env-step-budget"], "env-step-budget");
  if (budget === 0) throw new UsageError("--env-step-budget must be at least 1");
  return {
    updates: updatesFlag(values.updates),
    fresh: values.fresh === true,
    warmStart: typeof values["warm-start"] === "string" ? values["warm-start"] : undefined,
    envStepBudget: budget,
  };
}
