// A turn of the event loop for long computations in one process. Work chained through promises that are
// already resolved (the embedded runtime's rollouts, an evaluation, a training step) runs as microtasks,
// and Node runs signal handlers (SIGTERM, SIGINT) and timers only between macrotasks: without a turn, a
// stop requested during such work is seen at the next real I/O, which may be the end of the run.

/** Resolves after one macrotask turn, in which pending signal handlers and I/O callbacks run. */
export function eventLoopTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
