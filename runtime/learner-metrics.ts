// The distributed learner's OpenTelemetry instruments (served on /metrics by core/telemetry.ts).
import type { Histogram } from "@opentelemetry/api";
import type { Telemetry } from "../core/telemetry.ts";
import type { TrajectoryAccounting } from "./nats/runtime-state.ts";

export interface Observed {
  acct: TrajectoryAccounting;
  backlog: number;
  version: number;
  liveWorkers: number;
  lastTrain: number | null;
  lastTest: number | null;
}

export function learnerMetrics(t: Telemetry) {
  const meter = t.meter;
  const rates = { envStepsPerSecond: 0, samplesPerSecond: 0, waitSeconds: 0 };
  const lag: Histogram = meter.createHistogram("steppo_learner_policy_lag", {
    description: "Versions between the policy that generated a trained sample and the learner's",
    advice: { explicitBucketBoundaries: [0, 1, 2, 3, 4, 6, 8, 16] },
  });
  const out = {
    rates,
    lag,
    updates: meter.createCounter("steppo_learner_updates", { description: "Learner updates since this process started" }),
    envSteps: meter.createCounter("steppo_learner_env_steps", { description: "Environment steps (step samples) trained on" }),
    stale: meter.createCounter("steppo_learner_stale_dropped", { description: "Samples dropped as more than maxPolicyLag versions old" }),
    rejected: meter.createCounter("steppo_learner_rejected", { description: "Trajectories refused at intake (by cause) and dead-lettered" }),
    checkpoints: meter.createCounter("steppo_learner_checkpoints", { description: "Checkpoints written" }),
    observe(read: () => Observed) {
      meter.createObservableGauge("steppo_learner_policy_version").addCallback((r) => r.observe(read().version));
      meter
        .createObservableGauge("steppo_learner_env_steps_per_second", { description: "Env steps per second of wall time, last update" })
        .addCallback((r) => r.observe(rates.envStepsPerSecond));
      meter
        .createObservableGauge("steppo_learner_samples_per_second", { description: "Step samples per second of training compute (all epochs), last update" })
        .addCallback((r) => r.observe(rates.samplesPerSecond));
      meter
        .createObservableGauge("steppo_learner_wait_seconds", { description: "Seconds spent waiting for samples, last update" })
        .addCallback((r) => r.observe(rates.waitSeconds));
      meter
        .createObservableGauge("steppo_learner_consumer_backlog", { description: "Trajectories in the stream not yet delivered to the learner" })
        .addCallback((r) => r.observe(read().backlog));
      meter
        .createObservableGauge("steppo_learner_live_workers", { description: "Rollout workers holding admission" })
        .addCallback((r) => r.observe(read().liveWorkers));
      meter
        .createObservableGauge("steppo_learner_success_rate", { description: "Success rate: train = last batch, test = last greedy evaluation" })
        .addCallback((r) => {
          const o = read();
          if (o.lastTrain !== null) r.observe(o.lastTrain, { split: "train" });
          if (o.lastTest !== null) r.observe(o.lastTest, { split: "test" });
        });
      meter
        .createObservableGauge("steppo_trajectories", { description: "Accounting: published = consumed + stale + dead_lettered + in_flight" })
        .addCallback((r) => {
          const a = read().acct;
          r.observe(a.published, { kind: "published" });
          r.observe(a.consumed, { kind: "consumed" });
          r.observe(a.stale, { kind: "stale" });
          r.observe(a.deadLettered, { kind: "dead_lettered" });
          r.observe(a.rejected ?? 0, { kind: "rejected" });
          r.observe(a.duplicates, { kind: "duplicates" });
          r.observe(a.inFlight, { kind: "in_flight" });
        });
    },
  };
  return out;
}
