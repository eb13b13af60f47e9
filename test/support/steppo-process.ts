// Test helper: `steppo learner` / `steppo worker` / `steppo run` as real child processes of bin/steppo.mjs,
// a tiny job file, and waiting on the learner's progress in the job's KV bucket.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { spawnSteppo } from "../../cli/distributed-run.ts";
import { connectNats } from "../../runtime/nats/connection.ts";
import { KV_KEYS, natsJobRef } from "../../core/nats-names.ts";
import type { LearnerProgress } from "../../runtime/nats/runtime-state.ts";
import { JobStateKV } from "../../runtime/nats/weights.ts";
import { notYet, pollUntil } from "./poll.ts";

export interface TinyJobOptions {
  name: string;
  updates?: number;
  maxPolicyLag?: number;
  checkpointInterval?: number;
  replicas?: number;
  toolLatencyMs?: [number, number];
}

/** A job small enough for a test: 16-wide one-layer model, no warm-up, 8 episodes per update. */
export function tinyJobYaml(o: TinyJobOptions): string {
  return `apiVersion: steppo.dev/v1alpha1
kind: StepPOJob
metadata:
  name: ${o.name}
spec:
  seed: 3
  algorithm: {epochs: 1, minibatchSteps: 32, criticWarmup: {episodes: 16}}
  model: {dModel: 16, layers: 1, heads: 2, contextLength: 128}
  environment: {name: multihop-qa, maxSteps: 3, maxStepTokens: 12${o.toolLatencyMs ? `, toolLatencyMs: [${o.toolLatencyMs.join(", ")}]` : ""}}
  warmup: {enabled: false}
  rollout: {episodesPerUpdate: 8, replicas: ${o.replicas ?? 3}}
  training: {updates: ${o.updates ?? 4}, maxPolicyLag: ${o.maxPolicyLag ?? 1}, evalEvery: 100, evalEpisodes: 4}
  checkpoint: {interval: ${o.checkpointInterval ?? 2}, keep: 2}
`;
}

export class Workspace {
  readonly dir = mkdtempSync(join(tmpdir(), "steppo-dist-"));

  writeJob(o: TinyJobOptions): string {
    const path = join(this.dir, `${o.name}.yaml`);
    writeFileSync(path, tinyJobYaml(o));
    return path;
  }

  dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface Proc {
  name: string;
  lines: string[];
  pid: number | undefined;
  exited: Promise<number>;
  kill(signal: NodeJS.Signals): void;
  running(): boolean;
}

/** Fast failure-detection settings for tests (production defaults are 30 s). */
export const FAST_ENV = { STEPPO_ACK_WAIT_MS: "3000", STEPPO_ADMISSION_LEASE_MS: "3000", STEPPO_METRICS_PORT: "0" };

const live = new Set<Proc>();
process.on("exit", () => killAll());

/** SIGKILLs every process started here that is still running (call in after()). */
export function killAll(): void {
  for (const p of live) p.kill("SIGKILL");
}

export function startSteppo(name: string, args: string[], env: Record<string, string> = {}): Proc {
  const lines: string[] = [];
  const verbose = process.env.STEPPO_TEST_VERBOSE !== undefined;
  const c = spawnSteppo(name, args, { ...process.env, ...FAST_ENV, ...env }, (line) => {
    lines.push(line);
    if (verbose) process.stderr.write(`${line}\n`);
  });
  let done = false;
  const p: Proc = {
    name,
    lines,
    pid: c.proc.pid,
    exited: c.exited.then((code) => {
      done = true;
      live.delete(p);
      return code;
    }),
    kill: (signal) => {
      if (!done) c.proc.kill(signal);
    },
    running: () => !done,
  };
  live.add(p);
  return p;
}

/** The port a process printed in its "metrics: serving … on port N" line, once it has. */
export function metricsPort(p: Proc): number | undefined {
  for (const l of p.lines) {
    const m = /metrics: serving .* on port (\d+)/.exec(l);
    if (m) return Number(m[1]);
  }
  return undefined;
}

export async function exitCode(p: Proc, timeoutMs: number): Promise<number> {
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error(`${p.name} did not exit within ${timeoutMs} ms; last output:\n${p.lines.slice(-30).join("\n")}`)), timeoutMs).unref(),
  );
  return Promise.race([p.exited, timeout]);
}

export class ProgressWatch {
  private constructor(
    readonly nc: NatsConnection,
    private readonly kv: JobStateKV,
  ) {}

  static async open(url: string, job: string): Promise<ProgressWatch> {
    const nc = await connectNats({ servers: url, name: "test-observer", log: () => {} });
    return new ProgressWatch(nc, await JobStateKV.open(nc, { job: natsJobRef({ name: job }) }));
  }

  get(): Promise<LearnerProgress | undefined> {
    return this.kv.get<LearnerProgress>(KV_KEYS.learnerProgress);
  }

  /** Polls learner.progress until `pred` holds. */
  async until(pred: (p: LearnerProgress) => boolean, timeoutMs: number, what: string): Promise<LearnerProgress> {
    try {
      return await pollUntil(what, timeoutMs, async () => {
        const p = await this.get().catch(() => undefined);
        return p && pred(p) ? p : notYet(p);
      });
    } catch (err) {
      // A failed wait ends the test: close the connection, or it keeps the test process alive after the failure.
      await this.close().catch(() => {});
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.nc.close();
  }
}
