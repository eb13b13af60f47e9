// The `steppo` command line. Each command's code is imported when the command runs, so a process loads only
// what its command needs: the operator and `validate` never load tfjs or its wasm backend
// (test/unit/operator-footprint.test.ts traces the imports).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadJobFile } from "../common/job-spec.ts";
import { ValidationError } from "../common/schema.ts";
import { OPERATOR_USAGE } from "../operator/usage.ts";
import { intFlag, parseFlags, UsageError } from "./args.ts";
import { DISTRIBUTED_USAGE } from "./distributed-usage.ts";

const USAGE = `usage: steppo <command> [options]

commands:
  run <job.yaml>        train a StepPOJob on this machine (learner and rollout workers in one process)
      --updates N         override spec.training.updates
      --run-dir DIR       where checkpoints, curve.csv/svg and summary.json go (default runs/<job name>)
      --summary FILE      also write the run summary JSON to FILE
${DISTRIBUTED_USAGE}${OPERATOR_USAGE}  validate <job.yaml>   check a job file against the StepPOJob schema and print it with defaults
  help                  this text
`;

async function cmdRun(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, { updates: { type: "string" }, "run-dir": { type: "string" }, summary: { type: "string" } });
  if (positionals.length !== 1) throw new UsageError("run takes exactly one job file");
  const job = loadJobFile(positionals[0]);
  const runDir = (values["run-dir"] as string | undefined) ?? join("runs", job.metadata.name);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const [{ runJob }, { progressReporter }] = await Promise.all([import("../learner/run-job.ts"), import("./progress.ts")]);
  const summary = await runJob(job, { updates: intFlag(values.updates, "updates"), runDir, log, onUpdate: progressReporter() });
  const { curve: _curve, ...brief } = summary;
  if (values.summary) writeFileSync(values.summary as string, `${JSON.stringify(summary, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(brief, null, 2)}\n`);
  log(`run directory: ${runDir} (summary.json, curve.csv, curve.svg, checkpoints/)`);
  return 0;
}

async function cmdValidate(argv: string[]): Promise<number> {
  const { positionals } = parseFlags(argv, {});
  if (positionals.length !== 1) throw new UsageError("validate takes exactly one job file");
  const job = loadJobFile(positionals[0]);
  process.stdout.write(`${JSON.stringify(job, null, 2)}\n`);
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
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
      case undefined:
      case "help":
      case "--help":
      case "-h":
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`steppo: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    if (err instanceof ValidationError) {
      process.stderr.write(`steppo: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`steppo: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}
