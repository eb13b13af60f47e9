// The `steppo` command line. Each command's code is imported when the command runs, so a process loads only
// what its command needs: the operator and `validate` never load tfjs or its wasm backend
// (test/unit/operator-footprint.test.ts traces the imports).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadJobFile } from "../crds/job-spec.ts";
import { ValidationError } from "../crds/schema.ts";
import { OPERATOR_USAGE } from "../operator/usage.ts";
import { environmentConfigProblem } from "../envs/config-check.ts";
import { parseFlags, RUN_FLAGS, runFlags, UsageError } from "../core/args.ts";
import { LEARNER_USAGE, PROCESS_ENV_USAGE, RUN_NATS_USAGE, WORKER_USAGE } from "./distributed-usage.ts";
import { EXPORT_USAGE } from "./export-command.ts";
import { RESULTS_USAGE } from "./results-command.ts";
import { cmdUi, startRunDashboard, takeUiFlag, UI_USAGE } from "./ui-command.ts";

const RUN_USAGE = `  run <job.yaml>        train a StepPOJob on this machine (learner and rollout workers in one process)
      --updates N         override spec.training.updates
      --run-dir DIR       where checkpoints, curve.csv/svg and summary.json go (default runs/<job name>)
      --summary FILE      also write the run summary JSON to FILE
      --fresh             start over: move existing checkpoints aside (into checkpoints/replaced-<time>/) instead of resuming
      --warm-start DIR    a new run starts from the warm start in DIR (an update-0 checkpoint of the same model and warm-up)
      --env-step-budget N stop after the update that brings the environment steps trained on to N
      A run resumes from its run directory's last checkpoint, whichever runtime (with or without --nats) wrote it.
      --ui [PORT]         serve the run dashboard while training (default port 8464), --ui-host H (default 127.0.0.1)
`;
const VALIDATE_USAGE = `  validate <job.yaml>   check a job file against the StepPOJob schema and its environment's config rules,
                        and print it with defaults
`;
const GLOBAL_USAGE = `  help, --help, -h      this text (\`steppo <command> --help\`: that command's)
  --version             the steppo version
  --debug               print the stack trace of an error, not only its message (or STEPPO_DEBUG=1)
`;

const USAGE = `usage: steppo <command> [options]

commands:
${RUN_USAGE}${UI_USAGE}${RUN_NATS_USAGE}${LEARNER_USAGE}${WORKER_USAGE}${PROCESS_ENV_USAGE}${RESULTS_USAGE}${EXPORT_USAGE}${OPERATOR_USAGE}${VALIDATE_USAGE}${GLOBAL_USAGE}`;

/** Each command's own `--help`. */
const COMMAND_USAGE: Record<string, string> = {
  run: RUN_USAGE + RUN_NATS_USAGE,
  learner: LEARNER_USAGE + PROCESS_ENV_USAGE,
  worker: WORKER_USAGE + PROCESS_ENV_USAGE,
  operator: OPERATOR_USAGE,
  validate: VALIDATE_USAGE,
  ui: UI_USAGE,
  results: RESULTS_USAGE,
  export: EXPORT_USAGE,
};

function commandUsage(command: string): string {
  return `usage: steppo ${command} [options]\n\n${COMMAND_USAGE[command]}`;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

async function cmdRun(argv: string[]): Promise<number> {
  const { rest, uiPort } = takeUiFlag(argv);
  const { values, positionals } = parseFlags(rest, { ...RUN_FLAGS, "ui-host": { type: "string" } });
  if (positionals.length !== 1) throw new UsageError("run takes exactly one job file");
  const options = runFlags(values);
  const job = loadJobFile(positionals[0]);
  const runDir = (values["run-dir"] as string | undefined) ?? join("runs", job.metadata.name);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const [{ runLoop }, { EmbeddedTransport }, { printSummary, progressReporter }, { shutdownSignal }] = await Promise.all([
    import("../runtime/run-loop.ts"),
    import("../runtime/embedded-transport.ts"),
    import("./progress.ts"),
    import("./shutdown.ts"),
  ]);
  const dashboard = await startRunDashboard(runDir, uiPort, values["ui-host"] as string | undefined, log);
  const stop = shutdownSignal("run", log);
  const { summary } = await runLoop(job, new EmbeddedTransport(), { ...options, runDir, log, onUpdate: progressReporter(), signal: stop.signal }).finally(
    () => {
      stop.dispose();
      return dashboard?.close();
    },
  );
  if (!summary) return 130; // stopped by a signal, checkpointed: the same command resumes it
  printSummary(summary, values.summary);
  log(`run directory: ${runDir} (summary.json, curve.csv, curve.svg, checkpoints/)`);
  return 0;
}

async function cmdValidate(argv: string[]): Promise<number> {
  const { positionals } = parseFlags(argv, {});
  if (positionals.length !== 1) throw new UsageError("validate takes exactly one job file");
  const job = loadJobFile(positionals[0]);
  // The schema leaves environment.config free-form; the environment's own rules are what `run` applies.
  const problem = environmentConfigProblem(job.spec.environment);
  if (problem) throw new ValidationError(positionals[0], [problem]);
  process.stdout.write(`${JSON.stringify(job, null, 2)}\n`);
  return 0;
}

async function dispatch(command: string | undefined, rest: string[]): Promise<number> {
  if (command !== undefined && Object.hasOwn(COMMAND_USAGE, command) && rest.some((a) => a === "--help" || a === "-h")) {
    process.stdout.write(commandUsage(command));
    return 0;
  }
  switch (command) {
    case "run":
      return rest.some((a) => a === "--nats" || a.startsWith("--nats="))
        ? await (await import("./process-commands.ts")).cmdRunDistributed(rest)
        : await cmdRun(rest);
    case "learner":
      return await (await import("./process-commands.ts")).cmdLearner(rest);
    case "worker":
      return await (await import("./process-commands.ts")).cmdWorker(rest);
    case "operator":
      // Loaded on demand: the Kubernetes client is only needed by this command.
      return await (await import("../operator/cli.ts")).cmdOperator(rest);
    case "validate":
      return await cmdValidate(rest);
    case "ui":
      return await cmdUi(rest);
    case "results":
      return await (await import("./results-command.ts")).cmdResults(rest);
    case "export":
      return await (await import("./export-command.ts")).cmdExport(rest);
    case "--version":
    case "version":
      process.stdout.write(`steppo ${version()}\n`);
      return 0;
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

export async function main(argv: string[]): Promise<number> {
  // --debug may stand anywhere; it is ours, not the command's.
  const debug = argv.includes("--debug") || process.env.STEPPO_DEBUG === "1";
  const [command, ...rest] = argv.filter((a) => a !== "--debug");
  try {
    return await dispatch(command, rest);
  } catch (err) {
    if (err instanceof UsageError) {
      const usage = command !== undefined && Object.hasOwn(COMMAND_USAGE, command) ? commandUsage(command) : USAGE;
      process.stderr.write(`steppo: ${err.message}\n\n${usage}`);
      return 2;
    }
    // Ordinary failures (a missing file, invalid YAML, an invalid job) are the user's to fix: the message
    // says what and where; the stack only helps someone debugging steppo itself.
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`steppo: ${debug && err instanceof Error && err.stack ? err.stack : message}\n`);
    if (!debug && !(err instanceof ValidationError)) process.stderr.write("(run with --debug for the stack trace)\n");
    return 1;
  }
}
