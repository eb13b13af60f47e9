// A trained Hugging Face policy written back out in the layouts it came in: the run's newest checkpoint loaded
// onto spec.model.source's model, then saved as a model directory (config.json as loaded, safetensors in the
// dtypes loaded, the tokenizer files, the value head as TRL names it) or, for a LoRA run, as a PEFT adapter
// (adapter_config.json, adapter_model.safetensors, the value head beside it) unless a merged model is asked for.
// A separate critic (spec.model.critic) is written beside it in the same layout, under critic/: its value head
// is the one that learned, while the policy's own stays as it was after the critic warm-up.
import { join, resolve } from "node:path";
import type { StepPOJob } from "../crds/steppojob.ts";
import { type HfPolicy, saveHfPolicy } from "../policy/hf/hf-checkpoint.ts";
import { HfTrainable } from "../policy/hf/hf-trainable.ts";
import { saveLoraAdapter } from "../policy/hf/lora-checkpoint.ts";
import { restoreLearner } from "./checkpoint.ts";
import { setUpRun } from "./run-setup.ts";

export interface ExportOptions {
  /** Where the run's checkpoints are. */
  checkpointDir: string;
  /** The directory written (created; never the model's own directory). */
  out: string;
  /** A LoRA run: write the model with the adapters merged in, W + (α/r)·B·A, instead of the adapter alone. */
  merged?: boolean;
  log: (line: string) => void;
}

/** Where a separate critic goes, inside --out. */
export const CRITIC_DIR = "critic";

export async function exportTrainedPolicy(job: StepPOJob, o: ExportOptions): Promise<{ version: number; layout: "model" | "adapter"; critic?: string }> {
  const source = job.spec.model.source;
  if (source === undefined)
    throw new Error("steppo export writes Hugging Face models: this job has no spec.model.source (its checkpoints are the built-in model's)");
  if (resolve(o.out) === resolve(source)) throw new Error(`--out ${o.out} is the model directory itself (spec.model.source): choose another directory`);
  const setup = await setUpRun(job, o.log);
  try {
    const restored = await restoreLearner(o.checkpointDir, setup.learner, setup.tokenizer, o.log);
    if (!restored) throw new Error(`${o.checkpointDir}: no checkpoint to export`);
    const hf = setup.hf!;
    const layout = hf.model.loraSpec && !o.merged ? "adapter" : "model";
    const save = (policy: HfPolicy, dir: string) =>
      layout === "adapter" ? saveLoraAdapter(policy, dir, source) : saveHfPolicy(policy, dir, { tokenizerFrom: source });
    await save(hf, o.out);
    o.log(`exported update ${setup.learner.version} of ${source} to ${o.out} (${layout === "adapter" ? "PEFT adapter and value head" : "model directory"})`);
    const critic = setup.learner.critic?.model;
    if (critic === undefined) return { version: setup.learner.version, layout };
    if (!(critic instanceof HfTrainable)) throw new Error("steppo export: the separate critic is not a Hugging Face model");
    // The critic shares the policy's config, tokenizer and stored dtypes: only its weights differ.
    const criticDir = join(o.out, CRITIC_DIR);
    await save({ ...hf, model: critic.model }, criticDir);
    o.log(`exported the separate critic to ${criticDir} (its v_head is the trained critic's; the policy's is not)`);
    return { version: setup.learner.version, layout, critic: criticDir };
  } finally {
    setup.learner.dispose();
  }
}
