// Runs the benchmark's tasks: in this process one after another (jobs = 1), or spread over `jobs` worker
// processes. A row's training waits for the warm start of its (family, seed). Results do not depend on
// the number of jobs (every run is seeded); only wall times do.
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { TaskResult } from "./results.ts";
import type { AlgosSettings } from "./settings.ts";
import { runTask, type Task, taskName } from "./tasks.ts";
import type { FromWorker, ToWorker } from "./worker.ts";

export interface PoolOptions {
  jobs: number;
  workDir: string;
  verbose: boolean;
  log: (line: string) => void;
  onResult: (task: Task, result: TaskResult) => void;
  /** Warm starts (`family/seed`) an earlier call already wrote into `workDir` (--tune's final phase). */
  warmStartsDone?: readonly string[];
}

const WORKER = fileURLToPath(new URL("./worker.ts", import.meta.url));

export const warmKey = (t: { family: string; seed: number }) => `${t.family}/${t.seed}`;

export async function runTasks(tasks: readonly Task[], settings: AlgosSettings, opts: PoolOptions): Promise<TaskResult[]> {
  if (opts.jobs <= 1) {
    const results: TaskResult[] = [];
    for (const task of tasks) {
      const result = await runTask(task, settings, opts.workDir, opts.verbose ? opts.log : () => {});
      results.push(result);
      opts.onResult(task, result);
    }
    return results;
  }
  return runInWorkers(tasks, settings, opts);
}

function runInWorkers(tasks: readonly Task[], settings: AlgosSettings, opts: PoolOptions): Promise<TaskResult[]> {
  const pending = [...tasks];
  const results: TaskResult[] = [];
  const warmDone = new Set<string>(opts.warmStartsDone ?? []);
  const busy = new Map<ChildProcess, Task>();
  const ready = (t: Task) => t.kind === "warm-start" || warmDone.has(warmKey(t));
  const children = Array.from({ length: Math.min(opts.jobs, tasks.length) }, () =>
    fork(WORKER, [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] }),
  );
  const send = (child: ChildProcess, m: ToWorker) => child.send(m);

  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      for (const child of children) {
        if (err) child.kill();
        else send(child, { type: "exit" });
      }
      if (err) reject(err);
      else resolve(results);
    };
    const dispatch = () => {
      if (settled) return;
      for (const child of children) {
        if (busy.has(child)) continue;
        const i = pending.findIndex(ready);
        if (i < 0) break;
        const [task] = pending.splice(i, 1);
        busy.set(child, task);
        send(child, { type: "run", task, settings, workDir: opts.workDir, verbose: opts.verbose });
      }
      if (busy.size === 0) {
        if (pending.length === 0) finish();
        else finish(new Error(`bench algos: ${pending.length} task(s) wait for a warm start that never finished`));
      }
    };
    for (const child of children) {
      child.on("error", (err) => finish(err));
      child.on("message", (m: FromWorker) => {
        if (settled) return;
        if (m.type === "log") return opts.log(m.line);
        const task = busy.get(child);
        busy.delete(child);
        if (m.type === "error") return finish(new Error(`bench algos: ${task ? taskName(task) : "a task"} failed: ${m.message}`));
        if (!task) return finish(new Error("bench algos: a worker answered without a task"));
        results.push(m.result);
        if (task.kind === "warm-start") warmDone.add(warmKey(task));
        opts.onResult(task, m.result);
        dispatch();
      });
      child.on("exit", (code, signal) => {
        const task = busy.get(child);
        if (task) finish(new Error(`bench algos: worker exited (${signal ?? `code ${code}`}) while running ${taskName(task)}`));
      });
    }
    dispatch();
  });
}
