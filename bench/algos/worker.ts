// A benchmark worker process (forked by pool.ts): runs the tasks it is sent, one at a time, and answers
// with each result. The wasm backend computes on one core, so one worker per core runs tasks in parallel.
import type { TaskResult } from "./results.ts";
import type { AlgosSettings } from "./settings.ts";
import { runTask, type Task } from "./tasks.ts";

export type ToWorker = { type: "run"; task: Task; settings: AlgosSettings; workDir: string; verbose: boolean } | { type: "exit" };
export type FromWorker = { type: "log"; line: string } | { type: "result"; result: TaskResult } | { type: "error"; message: string };

const send = (m: FromWorker) => process.send?.(m);

process.on("message", async (m: ToWorker) => {
  if (m.type === "exit") process.exit(0);
  try {
    const log = m.verbose ? (line: string) => send({ type: "log", line }) : () => {};
    send({ type: "result", result: await runTask(m.task, m.settings, m.workDir, log) });
  } catch (err) {
    send({ type: "error", message: (err as Error).stack ?? String(err) });
  }
});
