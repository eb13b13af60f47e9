// The run state a checkpoint stores beside the learner's weights, optimiser and RNGs: one format for both
// runtimes. What the run has done (curve, environment steps, initial evaluation, refusals) is common; what
// a transport needs to continue exactly (the in-process workers' RNGs, the NATS accounting and acked ids)
// sits under the transport's name. A run directory therefore moves between runtimes: the other runtime
// continues the run and starts its own transport state.
import type { CurvePoint } from "../learner/report.ts";
import { initialPoint } from "../learner/run-phases.ts";

export type TransportName = "embedded" | "distributed";

export interface RunState {
  envSteps: number;
  curve: CurvePoint[];
  /** Initial success rates per evaluation set (train sampled, the others greedy). */
  initial: Record<string, number>;
  /** The demonstrations' own success rate; absent when the run did not warm up. */
  demonstrations?: number;
  checkpoints: string[];
  /** Trajectories refused at intake, by cause (the embedded transport; the distributed one counts in its own state). */
  rejected?: Record<string, number>;
  /** Episodes left out of training because of environment faults (with their groups), and oversized ones. */
  excluded?: { envFaults: number; oversized: number };
  /** Each transport's own state, by name; absent for one that has not run in this directory. */
  transports: Partial<Record<TransportName, unknown>>;
}

/** The state of a run that has not trained yet (also what a warm start becomes when a run starts from it). */
export function freshRunState(initial: Record<string, number>, demonstrations?: number): RunState {
  return {
    envSteps: 0,
    curve: initial.test === undefined ? [] : [initialPoint(initial.test)],
    initial,
    demonstrations,
    checkpoints: [],
    transports: {},
  };
}

/** What a checkpoint's run state turned out to be. */
export type StoredRun =
  | { kind: "run"; state: RunState; wroteBy: TransportName[] }
  | { kind: "warm-start"; initial?: Record<string, number>; demonstrations?: number };

const COMMON = ["envSteps", "curve", "initial", "demonstrations", "checkpoints", "rejected", "excluded"] as const;

/**
 * Reads a checkpoint's run state. Update 0 is a starting point, as a warm start is (learner/warm-start.ts). Run states
 * of the two earlier, separate formats (the embedded runner's with `workers`, the distributed learner's with
 * `accounting`) are read into this one.
 */
export function readRunState(run: unknown, version: number): StoredRun {
  const r = (run ?? {}) as Record<string, unknown>;
  if (version === 0) {
    // Nothing trained yet: whatever else it holds, a starting point (critic warm-up and all) like a warm start.
    const w = r as { initial?: Record<string, number>; demonstrations?: number };
    return { kind: "warm-start", initial: w.initial, demonstrations: w.demonstrations };
  }
  if (r.transports !== undefined && Array.isArray(r.curve)) {
    const state = r as unknown as RunState;
    return { kind: "run", state, wroteBy: Object.keys(state.transports) as TransportName[] };
  }
  const legacy: TransportName | undefined = r.accounting !== undefined ? "distributed" : Array.isArray(r.workers) ? "embedded" : undefined;
  if (legacy) {
    const common = Object.fromEntries(COMMON.filter((k) => r[k] !== undefined).map((k) => [k, r[k]]));
    const own = Object.fromEntries(Object.entries(r).filter(([k]) => !(COMMON as readonly string[]).includes(k)));
    const state = { ...common, transports: { [legacy]: own } } as unknown as RunState;
    return { kind: "run", state, wroteBy: [legacy] };
  }
  throw new Error(`checkpoint run state at update ${version} is not a run state steppo wrote (no curve, no transport state)`);
}
