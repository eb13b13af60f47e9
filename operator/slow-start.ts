// Creating many pods without hammering the API server: as the ReplicaSet controller's slowStartBatch, pods
// go in doubling batches (each batch concurrently), and a pass stops at the first batch in which a
// creation failed. A request that fails for every pod (quota exhausted, admission refusing the spec, the
// API server overloaded) then costs a few calls instead of one per missing pod; the next pass (the
// controller re-queues the job with backoff) starts over. The first batch is 4, not the ReplicaSet's 1: a
// typical job (a learner and two or three rollout pods) is then created in one round trip instead of two
// or three, at the price of at most 4 failed calls per pass.

/** The first batch's size. */
export const SLOW_START_INITIAL_BATCH = 4;

/** Batch sizes for `n` items: `initial`, twice that … doubling, the last one cut to what is left. */
export function slowStartBatches(n: number, initial = SLOW_START_INITIAL_BATCH): number[] {
  const sizes: number[] = [];
  let left = n;
  for (let size = Math.max(1, initial); left > 0; size *= 2) {
    sizes.push(Math.min(size, left));
    left -= sizes[sizes.length - 1];
  }
  return sizes;
}

export interface SlowStartResult {
  /** Calls that succeeded (including "already exists"). */
  succeeded: number;
  /** Calls made: succeeded ones plus the failures of the last batch. */
  attempted: number;
  /** Items never tried because an earlier batch failed. */
  skipped: number;
  /** The first failure of the batch that stopped the pass. */
  error?: unknown;
}

/** Runs `create` over `items` in slow-start batches; never throws, reports the first failure instead. */
export async function slowStart<T>(items: readonly T[], create: (item: T) => Promise<unknown>): Promise<SlowStartResult> {
  const result: SlowStartResult = { succeeded: 0, attempted: 0, skipped: 0 };
  let next = 0;
  for (const size of slowStartBatches(items.length)) {
    const batch = items.slice(next, next + size);
    next += size;
    const settled = await Promise.allSettled(batch.map((item) => create(item)));
    result.attempted += batch.length;
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
    result.succeeded += settled.filter((s) => s.status === "fulfilled").length;
    if (failed) {
      result.error = failed.reason;
      result.skipped = items.length - next;
      break;
    }
  }
  return result;
}
