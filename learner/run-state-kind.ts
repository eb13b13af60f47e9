// Which runtime wrote a checkpoint's run state. The weights, optimiser and RNGs are the same format in both,
// but the state beside them is not: the embedded runner (`steppo run`) keeps its in-process workers' RNGs,
// the distributed learner keeps the trajectory accounting and the acked ids. A warm start (update 0,
// learner/warm-start.ts) keeps neither and starts either runtime.

export type RunStateKind = "embedded" | "distributed" | "warm-start";

export function runStateKind(run: unknown, version: number): RunStateKind {
  const r = (run ?? {}) as { workers?: unknown; accounting?: unknown };
  if (r.accounting !== undefined) return "distributed";
  if (Array.isArray(r.workers)) return "embedded";
  if (version === 0) return "warm-start";
  throw new Error(`checkpoint run state at update ${version} is neither the embedded runner's nor the distributed learner's`);
}

/** The refusal when one runtime finds the other's checkpoint in its directory. */
export function otherRuntimeMessage(path: string, kind: "embedded" | "distributed", version: number): string {
  return kind === "embedded"
    ? `${path} was written by \`steppo run\` (the embedded runtime) at update ${version}; the distributed learner keeps other run state ` +
        "(trajectory accounting, acked ids) and cannot continue it: resume it with `steppo run` without --nats, or start over with --fresh " +
        "(the old checkpoints are moved aside)"
    : `${path} was written by the distributed learner (steppo run --nats, or a learner pod) at update ${version}; its run state ` +
        "(trajectory accounting) is not the embedded runner's: resume it with `steppo run --nats URL`, or start over with --fresh";
}
