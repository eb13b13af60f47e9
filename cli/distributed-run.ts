// `steppo run job.yaml --nats URL [--workers N]`: the job as separate processes on this machine, one
// `steppo learner` and N `steppo worker` children of bin/steppo.mjs, meeting only through the NATS server.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadJobFile } from "../crds/job-spec.ts";
import { connectNats } from "../runtime/nats/connection.ts";
import { KV_KEYS, type NatsJobRef, natsJobRef } from "../core/nats-names.ts";
import type { LearnerProgress } from "../runtime/nats/runtime-state.ts";
import { JobStateKV } from "../runtime/nats/weights.ts";
import type { DistributedSummary } from "../runtime/learner-process.ts";
import { redactUrl } from "../crds/secrets.ts";
import { ENV } from "../core/process-config.ts";

export const STEPPO_BIN = fileURLToPath(new URL("../bin/steppo.mjs", import.meta.url));

export interface DistributedRunOptions {
  jobFile: string;
  natsUrl: string;
  workers: number;
  runDir: string;
  updates?: number;
  /** Passed on as `steppo learner --fresh`, `--warm-start DIR`, `--env-step-budget N`. */
  fresh?: boolean;
  warmStart?: string;
  envStepBudget?: number;
  log: (line: string) => void;
  /** Extra environment for the children (STEPPO_METRICS_PORT defaults to 0: each picks a free port). */
  env?: Record<string, string>;
  /** Aborting stops the children with SIGTERM (the learner checkpoints first). */
  signal?: AbortSignal;
}

interface Child {
  name: string;
  proc: ChildProcess;
  exited: Promise<number>;
}

/** Spawns `node bin/steppo.mjs <args>`, prefixing its stderr lines with `[name]`. */
export function spawnSteppo(name: string, args: string[], env: Record<string, string | undefined>, log: (line: string) => void): Child {
  const proc = spawn(process.execPath, [STEPPO_BIN, ...args], { stdio: ["ignore", "pipe", "pipe"], env });
  let buf = "";
  proc.stderr?.on("data", (d: Buffer) => {
    buf += d.toString("utf8");
    const lines = buf.split("\n");
    buf = lines.pop() ?? "";
    for (const l of lines) if (l.trim()) log(`[${name}] ${l}`);
  });
  proc.stdout?.resume(); // the learner prints its brief summary; we read summary.json instead
  const exited = new Promise<number>((resolve) => {
    proc.on("exit", (code, signal) => resolve(code ?? (signal ? 128 + (signal === "SIGKILL" ? 9 : 15) : 1)));
    proc.on("error", () => resolve(1));
  });
  return { name, proc, exited };
}

async function stopChild(c: Child, graceMs: number): Promise<void> {
  if (c.proc.exitCode !== null || c.proc.signalCode !== null) return;
  c.proc.kill("SIGTERM");
  const timer = setTimeout(() => c.proc.kill("SIGKILL"), graceMs);
  await c.exited;
  clearTimeout(timer);
}

/** A job that finished on this server says so in KV, and workers would leave at once: clear the mark for a new run. */
async function clearDoneMark(job: NatsJobRef, natsUrl: string, log: (line: string) => void): Promise<void> {
  const nc = await connectNats({ servers: natsUrl, name: "steppo-run", log });
  try {
    const kv = await JobStateKV.open(nc, { job });
    const p = await kv.get<LearnerProgress>(KV_KEYS.learnerProgress);
    if (p?.phase === "done") {
      log(`job ${job.namespace}/${job.name} finished before on this NATS server; running it again`);
      await kv.delete(KV_KEYS.learnerProgress);
    }
  } finally {
    await nc.close();
  }
}

export async function runDistributed(opts: DistributedRunOptions): Promise<DistributedSummary> {
  // One machine, no cluster: the job file's namespace (else "default") and no cluster id, told to every
  // child explicitly so that a stray STEPPO_NAMESPACE in the shell cannot split them across two jobs.
  const job = natsJobRef(loadJobFile(opts.jobFile).metadata);
  await clearDoneMark(job, opts.natsUrl, opts.log);
  const env = { ...process.env, STEPPO_METRICS_PORT: "0", ...opts.env, [ENV.namespace]: job.namespace, [ENV.clusterId]: "" };
  const common = ["--job", opts.jobFile, "--nats", opts.natsUrl];
  const learnerArgs = ["learner", ...common, "--run-dir", opts.runDir];
  if (opts.updates !== undefined) learnerArgs.push("--updates", String(opts.updates));
  if (opts.fresh) learnerArgs.push("--fresh");
  if (opts.warmStart !== undefined) learnerArgs.push("--warm-start", opts.warmStart);
  if (opts.envStepBudget !== undefined) learnerArgs.push("--env-step-budget", String(opts.envStepBudget));
  const learner = spawnSteppo("learner", learnerArgs, env, opts.log);
  const workers = Array.from({ length: Math.max(1, opts.workers) }, (_, i) =>
    spawnSteppo(`worker-${i}`, ["worker", ...common, "--id", `worker-${i}`], env, opts.log),
  );
  opts.log(`started learner (pid ${learner.proc.pid}) and ${workers.length} worker(s) against ${redactUrl(opts.natsUrl)}`);
  const onAbort = () => {
    for (const c of [learner, ...workers]) if (c.proc.exitCode === null) c.proc.kill("SIGTERM");
  };
  opts.signal?.addEventListener("abort", onAbort, { once: true });

  let live = workers.length;
  let allWorkersGone: () => void = () => {};
  const workersGone = new Promise<void>((resolve) => {
    allWorkersGone = resolve;
  });
  for (const w of workers) {
    w.exited.then((code) => {
      if (code !== 0 && learner.proc.exitCode === null) opts.log(`${w.name} exited with code ${code}; the learner carries on with the others`);
      if (--live === 0) allWorkersGone();
    });
  }
  const first = await Promise.race([learner.exited.then((code) => ({ learner: code })), workersGone.then(() => ({ learner: undefined }))]);
  let code = first.learner;
  if (code === undefined) {
    // Every worker is gone: give the learner a moment in case it was finishing anyway.
    code = await Promise.race([learner.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 5000))]);
    if (code === undefined) {
      await stopChild(learner, 30_000);
      opts.signal?.removeEventListener("abort", onAbort);
      throw new Error("every rollout worker exited before the learner finished (see their logs above)");
    }
  }
  // The learner finished: workers see `done` in KV and leave; SIGTERM any that have not.
  await Promise.race([Promise.all(workers.map((w) => w.exited)), new Promise((r) => setTimeout(r, 10_000))]);
  await Promise.all(workers.map((w) => stopChild(w, 10_000)));
  opts.signal?.removeEventListener("abort", onAbort);
  if (code !== 0) throw new Error(`the learner exited with code ${code} (see its log above)`);
  try {
    return JSON.parse(readFileSync(join(opts.runDir, "summary.json"), "utf8")) as DistributedSummary;
  } catch (err) {
    throw new Error(`the learner exited without a summary in ${opts.runDir} (stopped before the end?): ${(err as Error).message}`);
  }
}
