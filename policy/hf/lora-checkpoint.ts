// LoRA adapters on disk in PEFT's layout: adapter_config.json and adapter_model.safetensors (the A and B
// matrices under PEFT's names), so that an adapter trained here loads with PeftModel.from_pretrained on
// the same base model, and one trained there loads here. The value head, which PEFT does not know, goes in
// value_head.safetensors beside them (TRL's tensor names).
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { HfPolicy } from "./hf-checkpoint.ts";
import { VALUE_BIAS, VALUE_WEIGHT } from "./llama-params.ts";
import { adapterConfigJson, freshAdapters, type LoraSpec, parseAdapterConfig } from "./lora.ts";
import { readSafetensors, writeSafetensors } from "./safetensors.ts";

export const ADAPTER_CONFIG = "adapter_config.json";
export const ADAPTER_WEIGHTS = "adapter_model.safetensors";
export const VALUE_HEAD_FILE = "value_head.safetensors";

/** Fresh adapters on `policy` (B = 0: the outputs stay those of the loaded model), seeded. */
export function attachFreshLora(policy: HfPolicy, spec: LoraSpec, seed: number): void {
  policy.model.attachLora(spec, freshAdapters(policy.config, spec, seed));
}

/** Writes `policy`'s adapters (float32) and value head to `dir`; `baseModel` is recorded as PEFT records it. */
export async function saveLoraAdapter(policy: HfPolicy, dir: string, baseModel: string): Promise<void> {
  const spec = policy.model.loraSpec;
  if (!spec) throw new Error("lora: the policy has no adapters to save");
  await mkdir(dir, { recursive: true });
  const tensors = (await policy.model.exportAdapters()).map((t) => ({ ...t, dtype: "F32" as const }));
  const isValueHead = (name: string) => name === VALUE_WEIGHT || name === VALUE_BIAS;
  await writeSafetensors(
    join(dir, ADAPTER_WEIGHTS),
    tensors.filter((t) => !isValueHead(t.name)),
  );
  await writeSafetensors(
    join(dir, VALUE_HEAD_FILE),
    tensors.filter((t) => isValueHead(t.name)),
  );
  await writeFile(join(dir, ADAPTER_CONFIG), `${JSON.stringify(adapterConfigJson(spec, baseModel), null, 2)}\n`);
}

/** Attaches the adapters saved in `dir` (PEFT layout) to `policy`, and its value head when the directory has one. */
export async function loadLoraAdapter(policy: HfPolicy, dir: string): Promise<LoraSpec> {
  const configPath = join(dir, ADAPTER_CONFIG);
  if (!existsSync(configPath)) throw new Error(`${dir}: no ${ADAPTER_CONFIG} (a PEFT adapter directory has one)`);
  let json: unknown;
  try {
    json = JSON.parse(await readFile(configPath, "utf8"));
  } catch (err) {
    throw new Error(`${configPath}: not JSON (${(err as Error).message})`);
  }
  const spec = parseAdapterConfig(json, configPath);
  const weightsPath = join(dir, ADAPTER_WEIGHTS);
  if (!existsSync(weightsPath)) throw new Error(`${dir}: no ${ADAPTER_WEIGHTS}`);
  const { tensors } = await readSafetensors(weightsPath);
  try {
    policy.model.attachLora(spec, tensors);
  } catch (err) {
    throw new Error(`${weightsPath}: ${(err as Error).message}`);
  }
  const valuePath = join(dir, VALUE_HEAD_FILE);
  if (existsSync(valuePath)) {
    const head = new Map((await readSafetensors(valuePath)).tensors.map((t) => [t.name, t]));
    const w = head.get(VALUE_WEIGHT);
    const b = head.get(VALUE_BIAS);
    if (!w || !b) throw new Error(`${valuePath}: needs ${VALUE_WEIGHT} and ${VALUE_BIAS}`);
    policy.model.setValueHead(w.data, b.data[0]);
  }
  return spec;
}
