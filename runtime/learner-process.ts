// `steppo learner`: the learner as its own process: the run loop with the NATS transport (nats-transport.ts),
// its /metrics and dashboard server, and a progress record that says so when the run fails.
import type { LearnerConfig } from "../core/process-config.ts";
import { startTelemetry, withSpan } from "../core/telemetry.ts";
import { serviceName } from "../crds/names.ts";
import type { CurvePoint } from "../learner/report.ts";
import { mountDashboard } from "./dashboard/server.ts";
import { type DistributedSummary, NatsTransport } from "./nats-transport.ts";
import { runLoop } from "./run-loop.ts";

export type { DistributedSummary };

export interface LearnerProcessOptions {
  config: LearnerConfig;
  /** Overrides spec.training.updates. */
  updates?: number;
  /** Stop once this many environment steps were trained on (see RunLoopOptions.envStepBudget). */
  envStepBudget?: number;
  /** A fresh run starts from this warm start (learner/warm-start.ts) instead of warming up. */
  warmStart?: string;
  /** Start over: existing checkpoints are moved aside (setAsideCheckpoints) instead of resumed. */
  fresh?: boolean;
  log: (line: string) => void;
  onUpdate?: (p: CurvePoint, total: number) => void;
  /** Aborting it (SIGTERM) finishes the current update, checkpoints, acks and returns. */
  signal?: AbortSignal;
}

export interface LearnerProcessResult {
  /** Present when the job finished (budget or success criterion), absent when stopped by the signal. */
  summary?: DistributedSummary;
  stoppedAt: number;
}

export async function runLearnerProcess(opts: LearnerProcessOptions): Promise<LearnerProcessResult> {
  const { config: cfg, log } = opts;
  const job = cfg.job;
  const telemetry = await startTelemetry({
    service: "steppo-learner",
    instance: job.metadata.name,
    job: job.metadata.name,
    port: cfg.metricsPort,
    otlpEndpoint: cfg.otlpEndpoint,
    log,
    routes: (app) => mountDashboard(app, [cfg.runDir]),
  });
  if (telemetry.port !== undefined) {
    log(`dashboard: served at / on port ${telemetry.port} (in a cluster: kubectl port-forward svc/${serviceName(job.metadata.name)} ${telemetry.port})`);
  }
  let transport: NatsTransport | undefined;
  try {
    transport = await NatsTransport.connect(cfg, telemetry, log, opts.signal);
    const result = await runLoop(job, transport, {
      updates: opts.updates,
      envStepBudget: opts.envStepBudget,
      warmStart: opts.warmStart,
      runDir: cfg.runDir,
      checkpointDir: cfg.checkpointDir,
      fresh: opts.fresh,
      log,
      onUpdate: opts.onUpdate,
      signal: opts.signal,
      span: (name, attributes, fn) => withSpan(telemetry.tracer, name, attributes, fn),
    });
    return { summary: result.summary as DistributedSummary | undefined, stoppedAt: result.stoppedAt };
  } catch (err) {
    telemetry.setUnhealthy((err as Error).message);
    await transport?.failed(err as Error);
    throw err;
  } finally {
    await transport?.disconnect();
    await telemetry.close();
  }
}
