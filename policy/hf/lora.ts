// LoRA adapters (Hu et al., 2021) on a LlamaPolicy's linear projections, in PEFT's layout: a projection
// W [out, in] gains A [r, in] and B [out, r] and computes x·Wᵀ + (α/r)·(x·Aᵀ)·Bᵀ, with W frozen. B starts
// at zero, so a fresh adapter leaves the model's outputs exactly as loaded; A starts as PEFT's default
// (Kaiming-uniform, bound 1/√in). Adapters are named as PEFT saves them in adapter_model.safetensors
// (base_model.model.<module>.lora_A.weight), so an adapter trained here loads in PEFT, and back.
import type { NamedTensor } from "../../core/weights-codec.ts";
import { Rng } from "../../core/rng.ts";
import type { LlamaConfig } from "./llama-config.ts";
import { layerNames } from "./llama-params.ts";

/** The projections an adapter may sit on, by their module's last name (PEFT's target_modules). */
export const LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

export interface LoraSpec {
  rank: number;
  alpha: number;
  targets: readonly LoraTarget[];
}

/** PEFT's prefix of a LoRA model's module names (a PeftModel wraps the transformers model as base_model.model). */
const PEFT_PREFIX = "base_model.model.";

export function loraNames(module: string): { a: string; b: string } {
  return { a: `${PEFT_PREFIX}${module}.lora_A.weight`, b: `${PEFT_PREFIX}${module}.lora_B.weight` };
}

/** The adapted modules with their projection's [out, in]: every layer's targets. */
export function loraModules(c: LlamaConfig, spec: LoraSpec): { module: string; out: number; in: number }[] {
  if (!Number.isSafeInteger(spec.rank) || spec.rank < 1) throw new Error(`lora: rank ${spec.rank} must be a positive integer`);
  if (!(spec.alpha > 0)) throw new Error(`lora: alpha ${spec.alpha} must be positive`);
  for (const t of spec.targets) if (!LORA_TARGETS.includes(t)) throw new Error(`lora: target ${t} is not one of ${LORA_TARGETS.join(", ")}`);
  if (spec.targets.length === 0) throw new Error("lora: no target modules");
  const d = c.hiddenSize;
  const shapes: Record<LoraTarget, [number, number]> = {
    q_proj: [c.heads * c.headDim, d],
    k_proj: [c.kvHeads * c.headDim, d],
    v_proj: [c.kvHeads * c.headDim, d],
    o_proj: [d, c.heads * c.headDim],
    gate_proj: [c.intermediateSize, d],
    up_proj: [c.intermediateSize, d],
    down_proj: [d, c.intermediateSize],
  };
  const out: { module: string; out: number; in: number }[] = [];
  for (let l = 0; l < c.layers; l++) {
    const n = layerNames(l);
    const byTarget: Record<LoraTarget, string> = {
      q_proj: n.q.module,
      k_proj: n.k.module,
      v_proj: n.v.module,
      o_proj: n.o.module,
      gate_proj: n.gate.module,
      up_proj: n.up.module,
      down_proj: n.down.module,
    };
    for (const t of spec.targets) out.push({ module: byTarget[t], out: shapes[t][0], in: shapes[t][1] });
  }
  return out;
}

/** Fresh adapters: A Kaiming-uniform (PEFT's default, bound 1/√in) from the seeded RNG, B zero. */
export function freshAdapters(c: LlamaConfig, spec: LoraSpec, seed: number): NamedTensor[] {
  const rng = new Rng(seed);
  const out: NamedTensor[] = [];
  for (const m of loraModules(c, spec)) {
    const names = loraNames(m.module);
    const bound = 1 / Math.sqrt(m.in);
    const a = Float32Array.from({ length: spec.rank * m.in }, () => (rng.next() * 2 - 1) * bound);
    out.push({ name: names.a, shape: [spec.rank, m.in], data: a }, { name: names.b, shape: [m.out, spec.rank], data: new Float32Array(m.out * spec.rank) });
  }
  return out;
}

/** adapter_config.json as PEFT writes it for these adapters. */
export function adapterConfigJson(spec: LoraSpec, baseModel: string): Record<string, unknown> {
  return {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: baseModel,
    r: spec.rank,
    lora_alpha: spec.alpha,
    lora_dropout: 0,
    target_modules: [...spec.targets],
    bias: "none",
    fan_in_fan_out: false,
    use_rslora: false,
    modules_to_save: null,
  };
}

/** The LoRA spec of a PEFT adapter_config.json; what this code does not compute is refused naming the field. */
export function parseAdapterConfig(json: unknown, where: string): LoraSpec {
  const c = (json ?? {}) as Record<string, unknown>;
  const fail = (field: string, why: string) => new Error(`${where}: ${field} ${why}`);
  if (c.peft_type !== "LORA") throw fail("peft_type", `is ${JSON.stringify(c.peft_type)}; only "LORA" adapters are read`);
  if (c.use_rslora === true) throw fail("use_rslora", "is true; rank-stabilised scaling is not built");
  if (c.use_dora === true) throw fail("use_dora", "is true; DoRA is not built");
  if (c.fan_in_fan_out === true) throw fail("fan_in_fan_out", "is true; Llama's projections are not transposed (nn.Linear)");
  if (c.bias !== undefined && c.bias !== "none") throw fail("bias", `is ${JSON.stringify(c.bias)}; adapters without biases only`);
  const targets = c.target_modules;
  if (!Array.isArray(targets) || !targets.every((t) => LORA_TARGETS.includes(t as LoraTarget))) {
    throw fail("target_modules", `is ${JSON.stringify(targets)}; a list of ${LORA_TARGETS.join(", ")}`);
  }
  if (!Number.isSafeInteger(c.r) || (c.r as number) < 1) throw fail("r", `is ${JSON.stringify(c.r)}, not a positive integer`);
  if (typeof c.lora_alpha !== "number" || !(c.lora_alpha > 0)) throw fail("lora_alpha", `is ${JSON.stringify(c.lora_alpha)}, not a positive number`);
  return { rank: c.r as number, alpha: c.lora_alpha, targets: targets as LoraTarget[] };
}
