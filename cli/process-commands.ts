// The distributed commands: `steppo learner`, `steppo worker` (what the learner and rollout pods run)
// and `steppo run --nats` (both as local processes against a NATS server).
import { join } from "node:path";
import { loadJobFile } from "../crds/job-spec.ts";
import { type FlagSpec, intFlag, parseFlags, RUN_FLAGS, runFlags, UsageError } from "../core/args.ts";
import { shutdownSignal } from "./shutdown.ts";
import { runDistributed } from "./distributed-run.ts";
import { checkNatsUrl, ENV, learnerConfig, workerConfig } from "../core/process-config.ts";
import { printSummary, progressReporter } from "./progress.ts";

export { DISTRIBUTED_USAGE, LEARNER_USAGE, PROCESS_ENV_USAGE, RUN_NATS_USAGE, WORKER_USAGE } from "./distributed-usage.ts";

const log = (line: string) => process.stderr.write(`${line}\n`);

/** What a learner or worker process is told on its command line (or by env vars, core/process-config.ts). */
const PROCESS_FLAGS: FlagSpec = {
  job: { type: "string" },
  nats: { type: "string" },
  "nats-creds": { type: "string" },
  namespace: { type: "string" },
  "cluster-id": { type: "string" },
  "metrics-port": { type: "string" },
};

export async function cmdLearner(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, { ...PROCESS_FLAGS, "checkpoint-dir": { type: "string" }, ...RUN_FLAGS });
  if (positionals.length > 0) throw new UsageError(`learner takes no positional arguments (got ${positionals.join(" ")}); use --job FILE`);
  const config = learnerConfig(values);
  const { runLearnerProcess } = await import("../runtime/learner-process.ts");
  const stop = shutdownSignal("learner", log);
  try {
    const r = await runLearnerProcess({
      config,
      ...runFlags(values),
      log,
      onUpdate: progressReporter(),
      signal: stop.signal,
    });
    if (r.summary) {
      printSummary(r.summary, values.summary);
    }
    return 0;
  } finally {
    stop.dispose();
  }
}

export async function cmdWorker(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, { ...PROCESS_FLAGS, id: { type: "string" } });
  if (positionals.length > 0) throw new UsageError(`worker takes no positional arguments (got ${positionals.join(" ")}); use --job FILE`);
  const config = workerConfig(values);
  const { runWorkerProcess, VocabularyMismatchError } = await import("../runtime/worker-process.ts");
  const stop = shutdownSignal(`worker ${config.workerId}`, log);
  // A clean stop takes one step and a few NATS round trips; if it cannot finish (NATS unreachable, a publish
  // stuck on back-pressure) leave before the pod's grace period ends: nothing half-written reaches the stream
  // (a trajectory is one message), unpublished episodes are lost and the learner reclaims their tickets.
  stop.signal.addEventListener("abort", () => {
    setTimeout(() => {
      log(`worker ${config.workerId}: clean shutdown did not finish within ${config.shutdownTimeoutMs} ms (${ENV.shutdownTimeoutMs}); exiting with code 143`);
      process.exit(143);
    }, config.shutdownTimeoutMs).unref();
  });
  try {
    await runWorkerProcess({ config, log, signal: stop.signal });
    return 0;
  } catch (err) {
    if (err instanceof VocabularyMismatchError) {
      log(`steppo worker: ${err.message}`);
      return 1;
    }
    throw err;
  } finally {
    stop.dispose();
  }
}

/** `steppo run job.yaml --nats URL [--workers N]`. */
export async function cmdRunDistributed(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, {
    nats: { type: "string" },
    workers: { type: "string" },
    ...RUN_FLAGS,
  });
  if (positionals.length !== 1) throw new UsageError("run takes exactly one job file");
  if (!values.nats) throw new UsageError("run --nats needs a URL (nats://host:port)");
  checkNatsUrl(values.nats as string, "run --nats");
  const jobFile = positionals[0];
  const job = loadJobFile(jobFile);
  const runDir = (values["run-dir"] as string | undefined) ?? join("runs", job.metadata.name);
  const workers = intFlag(values.workers, "workers") ?? Math.max(1, job.spec.rollout.replicas);
  if (workers < 1) throw new UsageError("--workers must be at least 1");
  const stop = shutdownSignal("run", log);
  try {
    const summary = await runDistributed({
      jobFile,
      natsUrl: values.nats as string,
      workers,
      runDir,
      ...runFlags(values),
      log,
      signal: stop.signal,
    });
    printSummary(summary, values.summary);
    log(`run directory: ${runDir} (summary.json, curve.csv, curve.svg, checkpoints/)`);
    return 0;
  } finally {
    stop.dispose();
  }
}
