// `steppo export <job.yaml> --out DIR`: a trained Hugging Face policy (spec.model.source) out of the run's
// newest checkpoint, in the layout transformers and PEFT read (learner/hf-export.ts). The learner's code is
// imported when the command runs, as for `run`.
import { join } from "node:path";
import { parseFlags, UsageError } from "../core/args.ts";
import { loadJobFile } from "../crds/job-spec.ts";

export const EXPORT_USAGE = `  export <job.yaml>     write a trained Hugging Face policy (spec.model.source) from the run's newest checkpoint:
                        a model directory (config.json, safetensors, tokenizer files, the value head), or for a
                        LoRA run a PEFT adapter (adapter_config.json, adapter_model.safetensors, value_head.safetensors);
                        a separate critic (spec.model.critic) goes beside it, in the same layout, under DIR/critic
      --out DIR           the directory to write (required; not the model's own)
      --run-dir DIR       the run's directory (default runs/<job name>); its checkpoints/ unless spec.checkpoint.dir
      --merged            a LoRA run: the model with the adapters merged in, instead of the adapter
`;

const FLAGS = { out: { type: "string" }, "run-dir": { type: "string" }, merged: { type: "boolean" } } as const;

export async function cmdExport(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, FLAGS);
  if (positionals.length !== 1) throw new UsageError("export takes exactly one job file");
  const out = values.out as string | undefined;
  if (out === undefined) throw new UsageError("export needs --out DIR");
  const job = loadJobFile(positionals[0]);
  const runDir = (values["run-dir"] as string | undefined) ?? join("runs", job.metadata.name);
  const checkpointDir = job.spec.checkpoint.dir ?? join(runDir, "checkpoints");
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const { exportTrainedPolicy } = await import("../learner/hf-export.ts");
  await exportTrainedPolicy(job, { checkpointDir, out, merged: values.merged === true, log });
  return 0;
}
