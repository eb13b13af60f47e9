// A fault campaign: one distributed job (a `steppo learner` and 2 `steppo worker` processes on a real
// nats-server, as `steppo run --nats` starts them) while this process SIGKILLs the learner, SIGKILLs a
// worker or restarts the NATS server (SIGKILL or SIGTERM) at seeded random points, restarting whatever it
// killed. At the end the learner's own accounting (its summary.json) must balance:
//   published = consumed + stale + deadLettered + inFlight
// A shortfall on the right is trajectories lost; an excess is trajectories counted (trained) twice. Every
// update trains exactly one batch, so consumed must also equal updates × episodesPerUpdate.
// A second phase SIGKILLs the operator (bench/chaos/operator-phase.ts): a `steppo operator` process on a real
// kube-apiserver, killed and restarted at seeded random points while the bench changes the jobs it must
// reconcile; after each restart the cluster must converge on exactly the desired children.
//   npm run bench -- chaos        (STEPPO_BENCH_CHAOS_SEED, STEPPO_BENCH_CHAOS_FAULTS, STEPPO_BENCH_CHAOS_OPERATOR_FAULTS
//                                  to vary it; STEPPO_BENCH_CHAOS_ONLY=operator runs only the second phase and
//                                  prints its result instead of writing the file)
// Writes bench/results/chaos.json.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Rng } from "../core/rng.ts";
import { type OperatorPhaseResult, runOperatorPhase } from "./chaos/operator-phase.ts";
import type { DistributedSummary } from "../runtime/learner-process.ts";
import { NatsServer } from "../test/support/nats-server.ts";
import { exitCode, killAll, type Proc, ProgressWatch, startSteppo, Workspace } from "../test/support/steppo-process.ts";

const here = dirname(fileURLToPath(import.meta.url));
const SEED = Number(process.env.STEPPO_BENCH_CHAOS_SEED ?? 7);
const FAULTS = Number(process.env.STEPPO_BENCH_CHAOS_FAULTS ?? 24);
const OPERATOR_FAULTS = Number(process.env.STEPPO_BENCH_CHAOS_OPERATOR_FAULTS ?? 12);
const ONLY_OPERATOR = process.env.STEPPO_BENCH_CHAOS_ONLY === "operator";
/**
 * nats-server is restarted with SIGTERM unless this is set: a SIGKILLed server may forget the last messages it
 * had already acknowledged (JetStream's file store flushes asynchronously; see the README), which the learner's
 * identity then shows as an excess on the consumed side — the server's loss, not steppo's.
 */
const NATS_SIGKILL = process.env.STEPPO_BENCH_CHAOS_NATS_SIGKILL === "1";
const WORKERS = 2;
const EPISODES_PER_UPDATE = 8;
/**
 * An update takes well under a second here, so faults are spaced in updates (1–2 between two, then a random
 * moment inside the next one). After a NATS restart the learner catches up on the episodes the workers made
 * meanwhile, 5–10 updates in a burst, so the job is sized generously: the updates left after the last fault
 * cost a few tenths of a second each.
 */
const UPDATES = 6 * FAULTS + 10;
/** Simulated tool latency per step, so that faults land in the middle of episodes, not between them. */
const TOOL_LATENCY_MS: [number, number] = [20, 80];
/** Longest wait for the job to make progress after a fault (a learner restart loads tfjs and resumes). */
const PROGRESS_TIMEOUT_MS = 120_000;

const FAULT_KINDS = ["kill-learner", "kill-worker", "restart-nats"] as const;
type FaultKind = (typeof FAULT_KINDS)[number];

interface FaultRecord {
  kind: FaultKind;
  detail: string;
  /** The learner's update when the fault hit. */
  atUpdate: number;
  /** Seconds since the campaign started. */
  atSeconds: number;
  /** Seconds until the job made its next update. */
  recoveredSeconds: number;
}

const log = (line: string) => process.stderr.write(`  ${line}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The processes of the job; a killed one is replaced by a fresh process with the same arguments. */
class Job {
  learner!: Proc;
  readonly workers: Proc[] = [];
  private learnerStarts = 0;

  constructor(
    private readonly learnerArgs: string[],
    private readonly workerArgs: (i: number) => string[],
  ) {}

  startLearner(): void {
    this.learner = startSteppo(`learner-${this.learnerStarts++}`, this.learnerArgs);
  }

  startWorker(i: number): void {
    this.workers[i] = startSteppo(`worker-${i}`, this.workerArgs(i));
  }

  async killLearner(): Promise<void> {
    this.learner.kill("SIGKILL");
    await this.learner.exited;
    this.startLearner();
  }

  async killWorker(i: number, downMs: number): Promise<void> {
    this.workers[i].kill("SIGKILL");
    await this.workers[i].exited;
    await sleep(downMs);
    this.startWorker(i);
  }
}

/** The seeded schedule: which fault, how many updates to let pass first, how long a pause after that. */
function schedule(rng: Rng): { kind: FaultKind; gapUpdates: number; pauseMs: number; worker: number; hard: boolean; downMs: number }[] {
  // Round-robin over the kinds from a seeded start, so every kind is exercised equally; the moments are random.
  const offset = rng.int(FAULT_KINDS.length);
  return Array.from({ length: FAULTS }, (_, i) => {
    const kind = FAULT_KINDS[(i + offset) % FAULT_KINDS.length];
    return {
      kind,
      gapUpdates: 1 + rng.int(2),
      pauseMs: rng.int(400),
      worker: rng.int(WORKERS),
      hard: rng.next() < 0.5 && NATS_SIGKILL,
      downMs: 100 + rng.int(1400),
    };
  });
}

export async function main(): Promise<void> {
  if (ONLY_OPERATOR) {
    const op = await runOperatorPhase({ seed: SEED, faults: OPERATOR_FAULTS, log });
    process.stdout.write(`${JSON.stringify(op, null, 2)}\n`);
    const problems = operatorVerdict(op);
    if (problems.length > 0) throw new Error(`chaos: ${problems.join("; ")}`);
    return;
  }
  const phase1 = await runProcessPhase();
  // After phase 1 has released its processes, so that the two phases do not share the 2 cores.
  const op = await runOperatorPhase({ seed: SEED, faults: OPERATOR_FAULTS, log });
  const result = {
    ...phase1.result,
    faults: withOperatorFaults(phase1.result.faults, op),
    operator: op,
    processPhaseSeconds: phase1.result.wallSeconds,
    wallSeconds: round(phase1.result.wallSeconds + op.wallSeconds),
  };
  mkdirSync(join(here, "results"), { recursive: true });
  writeFileSync(join(here, "results", "chaos.json"), `${JSON.stringify(result, null, 2)}\n`);
  log(
    `${result.faults.survived} faults survived (${op.operatorFaults} of them operator SIGKILLs); trajectories lost ${result.trajectories.lost}, ` +
      `duplicated ${result.trajectories.duplicated}; operator convergence p50 ${op.convergenceSeconds.p50} s, max ${op.convergenceSeconds.max} s, ` +
      `${op.violations.length} violations; ${result.wallSeconds} s`,
  );
  const problems = [...verdict(phase1.result), ...operatorVerdict(op)];
  if (problems.length > 0) throw new Error(`chaos: ${problems.join("; ")}`);
}

/** The operator's faults join the total; only the ones after which the cluster converged count as survived. */
function withOperatorFaults(f: ReturnType<typeof report>["faults"], op: OperatorPhaseResult) {
  const survived = op.list.filter((x) => x.violations.length === 0).reduce((n, x) => n + x.kills, 0);
  return { ...f, total: f.total + op.operatorFaults, survived: f.survived + survived, byKind: { ...f.byKind, "kill-operator": op.operatorFaults } };
}

function operatorVerdict(op: OperatorPhaseResult): string[] {
  const problems: string[] = [];
  if (op.operatorFaults < 10) problems.push(`only ${op.operatorFaults} operator faults were injected (want ≥ 10)`);
  if (op.violations.length > 0) problems.push(`${op.violations.length} operator-phase violations: ${op.violations.slice(0, 5).join("; ")}`);
  return problems;
}

/** Phase 1: the learner, the workers and nats-server killed under one training job. */
async function runProcessPhase(): Promise<{ result: ReturnType<typeof report> }> {
  const server = await NatsServer.start();
  const ws = new Workspace();
  const name = "chaos";
  const file = ws.writeJob({ name, updates: UPDATES, maxPolicyLag: 1, checkpointInterval: 1, replicas: WORKERS, toolLatencyMs: TOOL_LATENCY_MS });
  const runDir = join(ws.dir, name);
  const job = new Job(["learner", "--job", file, "--nats", server.url, "--run-dir", runDir], (i) => [
    "worker",
    "--job",
    file,
    "--nats",
    server.url,
    "--id",
    `w${i}`,
  ]);
  const watch = await ProgressWatch.open(server.url, name);
  const rng = new Rng(SEED);
  const plan = schedule(rng);
  const faults: FaultRecord[] = [];
  const t0 = Date.now();
  const elapsed = () => (Date.now() - t0) / 1000;
  const update = async () => (await watch.get().catch(() => undefined))?.update ?? 0;
  try {
    job.startLearner();
    for (let i = 0; i < WORKERS; i++) job.startWorker(i);
    await watch.until((p) => p.update >= 1, PROGRESS_TIMEOUT_MS, "the first update");
    log(`job training after ${elapsed().toFixed(0)} s; ${FAULTS} faults planned (seed ${SEED})`);

    // A fault is injected only while the job still has updates to make, so that "it made progress after the
    // fault" is a test of recovery (the learner also records a finished job as phase done).
    const recovered = (at: number) => (p: { update: number; phase: string }) => p.update > at || p.phase === "done";
    for (const f of plan) {
      const base = await update();
      if (base + f.gapUpdates >= UPDATES - 3) break;
      await watch.until((p) => p.update >= base + f.gapUpdates, PROGRESS_TIMEOUT_MS, `update ${base + f.gapUpdates}`);
      await sleep(f.pauseMs);
      const atUpdate = await update();
      const atSeconds = elapsed();
      let detail: string;
      if (f.kind === "kill-learner") {
        await job.killLearner();
        detail = "SIGKILL, restarted at once (resumes from its checkpoint)";
      } else if (f.kind === "kill-worker") {
        await job.killWorker(f.worker, f.downMs);
        detail = `w${f.worker} SIGKILL, restarted after ${f.downMs} ms`;
      } else {
        await server.restart({ hard: f.hard, downMs: f.downMs });
        detail = `${f.hard ? "SIGKILL" : "SIGTERM"}, down ${f.downMs} ms`;
      }
      await watch.until(recovered(atUpdate), PROGRESS_TIMEOUT_MS, `progress after ${f.kind}`);
      faults.push({ kind: f.kind, detail, atUpdate, atSeconds: round(atSeconds), recoveredSeconds: round(elapsed() - atSeconds) });
      log(`fault ${faults.length}: ${f.kind} (${detail}) at update ${atUpdate}, recovered in ${(elapsed() - atSeconds).toFixed(1)} s`);
    }

    const learnerExit = await exitCode(job.learner, PROGRESS_TIMEOUT_MS * 2);
    if (learnerExit !== 0) throw new Error(`the learner exited with ${learnerExit}:\n${job.learner.lines.slice(-30).join("\n")}`);
    for (const w of job.workers) await exitCode(w, 30_000);
    const summary = JSON.parse(readFileSync(join(runDir, "summary.json"), "utf8")) as DistributedSummary;
    const result = report(summary, faults, elapsed());
    log(
      `process phase: ${result.faults.survived} faults survived; trajectories lost ${result.trajectories.lost}, duplicated ${result.trajectories.duplicated}; ${result.wallSeconds} s`,
    );
    return { result };
  } finally {
    killAll();
    await watch.close().catch(() => {});
    await server.dispose();
    ws.dispose();
  }
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

function report(summary: DistributedSummary, faults: FaultRecord[], wallSeconds: number) {
  const t = summary.trajectories;
  const accounted = t.consumed + t.stale + t.deadLettered + t.inFlight;
  const byKind = Object.fromEntries(FAULT_KINDS.map((k) => [k, faults.filter((f) => f.kind === k).length]));
  return {
    seed: SEED,
    natsSigkill: NATS_SIGKILL,
    job: {
      learner: 1,
      workers: WORKERS,
      episodesPerUpdate: EPISODES_PER_UPDATE,
      updates: summary.updates,
      checkpointInterval: 1,
      maxPolicyLag: 1,
      toolLatencyMs: TOOL_LATENCY_MS,
    },
    faults: { total: faults.length, survived: faults.length, byKind, list: faults },
    trajectories: {
      ...t,
      /** published − (consumed + stale + deadLettered + inFlight), when positive. */
      lost: Math.max(0, t.published - accounted),
      /** The excess when the right side counts more than was published (a trajectory counted twice). */
      duplicated: Math.max(0, accounted - t.published),
      /** consumed − updates × episodesPerUpdate: 0 when every update trained one batch, counted once. */
      consumedBeyondBatches: t.consumed - summary.updates * EPISODES_PER_UPDATE,
      /** Redeliveries the learner recognised as already trained on or dropped, and skipped. */
      suppressedRedeliveries: t.duplicates,
    },
    resumedFrom: summary.resumedFrom ?? null,
    reclaimedWorkers: summary.distributed.reclaimedWorkers,
    wallSeconds: round(wallSeconds),
  };
}

function verdict(r: ReturnType<typeof report>): string[] {
  const problems: string[] = [];
  if (r.faults.total < 20) problems.push(`only ${r.faults.total} faults were injected (want ≥ 20)`);
  if (r.trajectories.lost !== 0) problems.push(`${r.trajectories.lost} trajectories lost`);
  if (r.trajectories.duplicated !== 0) problems.push(`${r.trajectories.duplicated} trajectories counted twice`);
  if (r.trajectories.consumedBeyondBatches !== 0) problems.push(`consumed is off by ${r.trajectories.consumedBeyondBatches} from updates × episodesPerUpdate`);
  return problems;
}
