// Configuration of the `steppo learner` and `steppo worker` processes: command-line flags first, then the
// environment variables a pod gets, then the job file. Anything required and missing is reported with every
// way to provide it.
import { existsSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { loadJobFile } from "../crds/job-spec.ts";
import { credentialedUrlMessage, hasUrlCredentials, NATS_CREDENTIALS_HINT, redactUrl } from "../crds/secrets.ts";
import { clusterIdProblem, DEFAULT_NAMESPACE, type NatsJobRef } from "./nats-names.ts";
import type { StepPOJob } from "../crds/steppojob.ts";
import { UsageError } from "./args.ts";

export const ENV = {
  jobFile: "STEPPO_JOB_FILE",
  /**
   * The job's namespace (the operator sets it from the pod's own namespace, downward API); default: the job
   * file's metadata.namespace, else "default". Part of every NATS name, so jobs in two namespaces never meet.
   */
  namespace: "STEPPO_NAMESPACE",
  /** The operator's cluster id (`steppo operator --cluster-id`): keeps clusters apart on a shared NATS server. */
  clusterId: "STEPPO_CLUSTER_ID",
  natsUrl: "STEPPO_NATS_URL",
  /** A NATS credentials file (JWT + seed), e.g. the job's spec.nats.credentialsSecret mounted by the operator. */
  natsCredsFile: "STEPPO_NATS_CREDS_FILE",
  workerId: "STEPPO_WORKER_ID",
  checkpointDir: "STEPPO_CHECKPOINT_DIR",
  runDir: "STEPPO_RUN_DIR",
  metricsPort: "STEPPO_METRICS_PORT",
  otlpEndpoint: "STEPPO_OTLP_ENDPOINT",
  otelEndpoint: "OTEL_EXPORTER_OTLP_ENDPOINT",
  ackWaitMs: "STEPPO_ACK_WAIT_MS",
  admissionLeaseMs: "STEPPO_ADMISSION_LEASE_MS",
  /** A worker told to stop (SIGTERM) that has not left cleanly after this long exits anyway (code 143). */
  shutdownTimeoutMs: "STEPPO_SHUTDOWN_TIMEOUT_MS",
} as const;

/** Below Kubernetes' default terminationGracePeriodSeconds (30 s), so the pod is never SIGKILLed mid-publish. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 20_000;

export const DEFAULT_METRICS_PORT = 9464;

export interface ProcessConfig {
  job: StepPOJob;
  /** The job's NATS identity (cluster id, namespace, name): what its streams, buckets and subjects derive from. */
  natsJob: NatsJobRef;
  jobFile: string;
  natsUrl: string;
  natsCredsFile?: string;
  /** undefined: do not serve /metrics (STEPPO_METRICS_PORT=off). */
  metricsPort?: number;
  otlpEndpoint?: string;
  /** Redelivery delay of trajectories a dead learner held (its live holdings are renewed). */
  ackWaitMs: number;
  /** A worker whose admission heartbeat has not moved for this long is presumed dead and its tickets reclaimed. */
  admissionLeaseMs: number;
}

export interface LearnerConfig extends ProcessConfig {
  checkpointDir: string;
  runDir: string;
}

export interface WorkerConfig extends ProcessConfig {
  workerId: string;
  /** After a stop request, the most time a clean shutdown may take before the process exits regardless. */
  shutdownTimeoutMs: number;
}

type Flags = Record<string, string | boolean | undefined>;
type Env = Record<string, string | undefined>;

function pick(flag: string | boolean | undefined, env: Env, name: string): string | undefined {
  if (typeof flag === "string" && flag !== "") return flag;
  const v = env[name];
  return v !== undefined && v.trim() !== "" ? v.trim() : undefined;
}

/** `value` as a positive integer (`fallback` when it is unset), or a UsageError naming `what`. */
export function positiveInt(value: string | undefined, what: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${what} must be a positive integer, got "${value}"`);
  return n;
}

/**
 * Refuses a NATS URL that is malformed or carries credentials (they would show in the process list, the
 * pod spec and logs; a creds file is the way). `what` names where the URL came from; messages redact it.
 */
export function checkNatsUrl(natsUrl: string, what: string): void {
  if (hasUrlCredentials(natsUrl)) {
    throw new UsageError(
      `${what}: ${credentialedUrlMessage(`pass a creds file with --nats-creds / ${ENV.natsCredsFile}, or on a cluster ${NATS_CREDENTIALS_HINT}`)}`,
    );
  }
  if (!/^(nats|tls|wss?):\/\//.test(natsUrl) && !/^[\w.-]+:\d+$/.test(natsUrl)) {
    throw new UsageError(`${what}: NATS URL "${redactUrl(natsUrl)}" is not a nats://host:port URL`);
  }
}

/** Namespace: flag, env (the pod's namespace), the job file, "default"; cluster id: flag, env, none. */
function natsJobOf(command: string, job: StepPOJob, flags: Flags, env: Env): NatsJobRef {
  const namespace = pick(flags.namespace, env, ENV.namespace) ?? (job.metadata.namespace || DEFAULT_NAMESPACE);
  const cluster = pick(flags["cluster-id"], env, ENV.clusterId) ?? "";
  const problem = clusterIdProblem(cluster);
  if (problem) throw new UsageError(`${command}: --cluster-id / ${ENV.clusterId}: ${problem}`);
  return { cluster, namespace, name: job.metadata.name };
}

function common(command: string, flags: Flags, env: Env): ProcessConfig {
  const jobFile = pick(flags.job, env, ENV.jobFile);
  if (!jobFile) throw new UsageError(`${command}: no job file: pass --job FILE or set ${ENV.jobFile}`);
  const job = loadJobFile(jobFile);
  const natsUrl = pick(flags.nats, env, ENV.natsUrl) ?? job.spec.nats.url;
  if (!natsUrl) throw new UsageError(`${command}: no NATS server: pass --nats URL, set ${ENV.natsUrl}, or set spec.nats.url in ${jobFile}`);
  checkNatsUrl(natsUrl, `${command}: --nats / ${ENV.natsUrl} / spec.nats.url`);
  const natsJob = natsJobOf(command, job, flags, env);
  const natsCredsFile = pick(flags["nats-creds"], env, ENV.natsCredsFile);
  if (natsCredsFile !== undefined && !existsSync(natsCredsFile)) {
    throw new UsageError(`${command}: NATS credentials file "${natsCredsFile}" (--nats-creds / ${ENV.natsCredsFile}) does not exist`);
  }
  const portText = pick(flags["metrics-port"], env, ENV.metricsPort);
  let metricsPort: number | undefined = DEFAULT_METRICS_PORT;
  if (portText === "off") metricsPort = undefined;
  else if (portText !== undefined) {
    metricsPort = Number(portText);
    if (!Number.isInteger(metricsPort) || metricsPort < 0 || metricsPort > 65535) {
      throw new UsageError(`${command}: --metrics-port / ${ENV.metricsPort} must be a port number (0: any free port) or "off", got "${portText}"`);
    }
  }
  return {
    job,
    natsJob,
    jobFile,
    natsUrl,
    ...(natsCredsFile !== undefined ? { natsCredsFile } : {}),
    metricsPort,
    otlpEndpoint: pick(undefined, env, ENV.otlpEndpoint) ?? pick(undefined, env, ENV.otelEndpoint),
    ackWaitMs: positiveInt(pick(undefined, env, ENV.ackWaitMs), ENV.ackWaitMs, 30_000),
    admissionLeaseMs: positiveInt(pick(undefined, env, ENV.admissionLeaseMs), ENV.admissionLeaseMs, 30_000),
  };
}

export function learnerConfig(flags: Flags, env: Env = process.env): LearnerConfig {
  const base = common("learner", flags, env);
  const runDir = pick(flags["run-dir"], env, ENV.runDir) ?? join("runs", base.job.metadata.name);
  const checkpointDir = pick(flags["checkpoint-dir"], env, ENV.checkpointDir) ?? base.job.spec.checkpoint.dir ?? join(runDir, "checkpoints");
  return { ...base, runDir, checkpointDir };
}

export function workerConfig(flags: Flags, env: Env = process.env): WorkerConfig {
  const base = common("worker", flags, env);
  const workerId = pick(flags.id, env, ENV.workerId) ?? hostname();
  if (!workerId) throw new UsageError(`worker: no worker id: pass --id ID or set ${ENV.workerId} (the pod name)`);
  const shutdownTimeoutMs = positiveInt(pick(undefined, env, ENV.shutdownTimeoutMs), ENV.shutdownTimeoutMs, DEFAULT_SHUTDOWN_TIMEOUT_MS);
  return { ...base, workerId, shutdownTimeoutMs };
}
