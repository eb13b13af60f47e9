// Minimal flag parsing over node:util's parseArgs, with errors that name the flag.
import { parseArgs } from "node:util";

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
  if (typeof value !== "string" || !Number.isInteger(n) || n < 0) throw new UsageError(`--${name} must be a non-negative integer, got "${String(value)}"`);
  return n;
}
