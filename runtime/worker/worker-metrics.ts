// The rollout worker's OpenTelemetry instruments (served on /metrics by core/telemetry.ts): counters per
// batch, and gauges of the last batch and of what the worker runs with now.
import type { Meter } from "@opentelemetry/api";
import type { BatchTally } from "./episode-tally.ts";

export interface WorkerGaugeSources {
  /** The policy version the worker samples with. */
  policyVersion(): number;
  /** Episodes admitted and still running. */
  runningEpisodes(): number;
}

export function workerMetrics(meter: Meter, read: WorkerGaugeSources) {
  const episodes = meter.createCounter("steppo_worker_episodes", { description: "Episodes published" });
  const envSteps = meter.createCounter("steppo_worker_env_steps", { description: "Environment steps of published episodes" });
  const abandoned = meter.createCounter("steppo_worker_episodes_abandoned", { description: "Episodes cut off (shutdown) and not published" });
  const excluded = meter.createCounter("steppo_worker_episodes_excluded", {
    description: "Episodes not published: reason env_fault (an environment fault, with its group) or oversized (above max_payload)",
  });
  const admissionWaits = meter.createCounter("steppo_worker_admission_waits", { description: "Times the staleness bound made the worker wait" });
  const last = { stepsPerSecond: 0, successRate: 0 };
  meter
    .createObservableGauge("steppo_worker_env_steps_per_second", { description: "Env steps per second, last batch" })
    .addCallback((r) => r.observe(last.stepsPerSecond));
  meter.createObservableGauge("steppo_worker_success_rate", { description: "Success rate of the last batch" }).addCallback((r) => r.observe(last.successRate));
  meter
    .createObservableGauge("steppo_worker_policy_version", { description: "Policy version the worker samples with" })
    .addCallback((r) => r.observe(read.policyVersion()));
  meter.createObservableGauge("steppo_worker_running_episodes").addCallback((r) => r.observe(read.runningEpisodes()));
  return {
    /** The staleness bound made the worker wait for tickets. */
    admissionWaited(): void {
      admissionWaits.add(1);
    },
    batch(b: BatchTally): void {
      if (b.excludedForFaults > 0) excluded.add(b.excludedForFaults, { reason: "env_fault" });
      if (b.oversized > 0) excluded.add(b.oversized, { reason: "oversized" });
      episodes.add(b.published);
      envSteps.add(b.steps);
      if (b.abandoned > 0) abandoned.add(b.abandoned);
      last.stepsPerSecond = b.stepsPerSecond;
      last.successRate = b.successRate;
    },
  };
}

export type WorkerMetrics = ReturnType<typeof workerMetrics>;
