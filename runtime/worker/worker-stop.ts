// When a rollout worker stops, and how its waits end early. It stops on SIGTERM (the process's signal) or
// when the learner reports the job done; either way it stops between steps, so finished episodes are still
// published. A worker waiting (for a first policy version, or for admission tickets) wakes on a new policy
// version or a stop instead of sleeping out its poll interval.

export class WorkerStop {
  private readonly ctl = new AbortController();
  /** Aborted on a stop request or when the learner reports the job done. */
  readonly signal = this.ctl.signal;
  /** The learner reported the job done (the worker leaves with reason "done"). */
  done = false;
  /** When the stop request (SIGTERM) came, for the shutdown-time log line. */
  signalledAt: number | undefined;
  private wakeUp: () => void = () => {};
  private readonly onRequest: () => void;

  /** `onRequest` runs once when `external` aborts (it logs what the stop abandons). */
  constructor(
    private readonly external: AbortSignal | undefined,
    onRequest: () => void,
  ) {
    this.onRequest = () => {
      this.signalledAt = Date.now();
      onRequest();
      this.ctl.abort();
    };
    external?.addEventListener("abort", this.onRequest, { once: true });
    if (external?.aborted) this.onRequest();
    this.signal.addEventListener("abort", () => this.wakeUp(), { once: true });
  }

  /** The learner reported the job done. */
  jobDone(): void {
    this.done = true;
    this.ctl.abort();
  }

  /** Ends the wait under way, if any (a new policy version was published). */
  wake(): void {
    this.wakeUp();
  }

  /** Waits `ms`, or until wake() or a stop. */
  waitForChange(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Stops listening to the process's signal. */
  dispose(): void {
    this.external?.removeEventListener("abort", this.onRequest);
  }
}
