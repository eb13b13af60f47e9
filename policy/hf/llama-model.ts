// A Llama-family causal LM (Llama, Qwen2) with a value head, in tfjs: pre-RMSNorm decoder layers with
// rotary embeddings, grouped-query attention and a SwiGLU MLP; tied or untied output embeddings. Every
// parameter is a tfjs variable under its Hugging Face name with its Hugging Face shape, so that loading,
// exporting, checkpoints and the weights sent over NATS (core/weights-codec.ts) all name tensors alike.
//
// The full-sequence forward pass (training, scoring) and the cached one a decoder runs are the same layer
// code: a pass either starts from no keys and values or extends a cache.
import type { NamedTensor } from "../../core/weights-codec.ts";
import { tf } from "../backend.ts";
import { type Decoder, gatherRows } from "../model.ts";
import { LlamaDecoder } from "./llama-decoder.ts";
import { causalMask } from "./llama-masks.ts";
import type { LlamaConfig } from "./llama-config.ts";
import { applyRotary, fromHeads, groupedAttention, linearHf, rmsNorm, rotaryTables, swiGlu, toHeads } from "./llama-layers.ts";
import { EMBED, FINAL_NORM, LM_HEAD, layerNames, llamaParameterShapes, VALUE_BIAS, VALUE_WEIGHT } from "./llama-params.ts";
import { type LoraSpec, loraModules, loraNames } from "./lora.ts";

/** A projection's names: its module (what LoRA adapts), weight and bias. */
type Proj = { module: string; weight: string; bias: string };

/** What one pass of T new positions per row runs under: rotary tables [B or 1, 1, T, dh] and an additive mask broadcasting to [B, H, T, Tk]. */
export interface Pass {
  cos: tf.Tensor4D;
  sin: tf.Tensor4D;
  mask: tf.Tensor;
}

/** One layer's keys (rotated) and values so far, [B, KVH, Tk, dh] each. */
export interface LayerCache {
  k: tf.Tensor4D;
  v: tf.Tensor4D;
}

// tfjs variable names are global; a per-process counter keeps two models (policy, reference) apart.
let instances = 0;

export class LlamaPolicy {
  readonly config: LlamaConfig;
  /** Every variable by name: the model's parameters (Hugging Face names), then any LoRA adapters (PEFT names). */
  readonly params: Map<string, tf.Variable>;
  private readonly id: number;
  private readonly adapters = new Map<string, { a: tf.Variable; b: tf.Variable }>();
  private lora: LoraSpec | undefined;

  /** A model holding `tensors` (by name; every parameter must be there, checked before any is created). */
  constructor(config: LlamaConfig, tensors: Map<string, NamedTensor>) {
    this.config = config;
    checkTensors(config, tensors);
    this.params = new Map();
    this.id = ++instances;
    // tidy frees the initial tensors (the variables keep their own copy); tidy never disposes variables.
    tf.tidy(() => {
      for (const [name, shape] of llamaParameterShapes(config)) {
        const t = tensors.get(name)!;
        this.params.set(name, tf.variable(tf.tensor(t.data, shape), true, `${name}#hf${this.id}`));
      }
    });
  }

  /** Rows of the output head: what decoding samples over (TokenPolicy). */
  get vocabSize(): number {
    return this.config.vocabSize;
  }

  /** The variables training updates: all of them, or with LoRA attached the adapters and the value head. */
  get variables(): tf.Variable[] {
    return [...this.params.values()].filter((v) => v.trainable);
  }

  parameterCount(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    return n;
  }

  private p(name: string): tf.Tensor {
    const v = this.params.get(name);
    if (!v) throw new Error(`llama model: no parameter ${name}`);
    return v;
  }

  /** x·Wᵀ (+ b) of projection `proj`, plus its LoRA adapter's (α/r)·(x·Aᵀ)·Bᵀ when it has one. x [R, in] → [R, out] */
  private linear(x: tf.Tensor2D, proj: Proj, hasBias: boolean): tf.Tensor2D {
    const y = linearHf(x, this.p(proj.weight), hasBias ? this.p(proj.bias) : undefined);
    const adapter = this.adapters.get(proj.module);
    if (!adapter || !this.lora) return y;
    const low = linearHf(linearHf(x, adapter.a), adapter.b); // [R, r] then [R, out]
    return tf.add(y, tf.mul(low, this.lora.alpha / this.lora.rank)) as tf.Tensor2D;
  }

  /**
   * Puts LoRA adapters on the spec's projections (tensors named as PEFT saves them: lora.ts), every one
   * checked before any is created, and freezes the loaded weights: from then on `variables` are the
   * adapters and the value head. Once per model.
   */
  attachLora(spec: LoraSpec, tensors: NamedTensor[]): void {
    if (this.lora) throw new Error("llama model: LoRA adapters are attached already");
    const modules = loraModules(this.config, spec);
    const byName = new Map(tensors.map((t) => [t.name, t]));
    const expected = new Set<string>();
    for (const m of modules) {
      const names = loraNames(m.module);
      for (const [name, shape] of [
        [names.a, [spec.rank, m.in]],
        [names.b, [m.out, spec.rank]],
      ] as const) {
        expected.add(name);
        const t = byName.get(name);
        if (!t) throw new Error(`lora: missing adapter tensor ${name}`);
        if (t.shape.join("x") !== shape.join("x")) throw new Error(`lora: adapter tensor ${name} has shape [${t.shape}], expected [${shape}]`);
      }
    }
    const unknown = [...byName.keys()].filter((n) => !expected.has(n));
    if (unknown.length > 0) throw new Error(`lora: adapter tensors for modules this spec does not adapt: ${unknown.slice(0, 5).join(", ")}`);
    for (const [name, v] of this.params) if (name !== VALUE_WEIGHT && name !== VALUE_BIAS) v.trainable = false;
    const variable = (name: string) => {
      const t = byName.get(name)!;
      const v = tf.tidy(() => tf.variable(tf.tensor(t.data, t.shape), true, `${name}#hf${this.id}`));
      this.params.set(name, v);
      return v;
    };
    for (const m of modules) {
      const names = loraNames(m.module);
      this.adapters.set(m.module, { a: variable(names.a), b: variable(names.b) });
    }
    this.lora = spec;
  }

  /** The LoRA spec in use, if adapters are attached. */
  get loraSpec(): LoraSpec | undefined {
    return this.lora;
  }

  /** The adapters' tensors (PEFT names) and the value head's: what a LoRA run trains, saves and sends. */
  async exportAdapters(): Promise<NamedTensor[]> {
    const adapterVariables = new Set([...this.adapters.values()].flatMap(({ a, b }) => [a, b]));
    const out: NamedTensor[] = [];
    for (const [name, v] of this.params) {
      if (adapterVariables.has(v) || name === VALUE_WEIGHT || name === VALUE_BIAS)
        out.push({ name, shape: [...v.shape], data: (await v.data()) as Float32Array });
    }
    return out;
  }

  /** The model's own parameters (Hugging Face names) with every adapter merged in, W + (α/r)·B·A: a plain model again. */
  async mergedWeights(): Promise<NamedTensor[]> {
    const out: NamedTensor[] = [];
    const scale = this.lora ? this.lora.alpha / this.lora.rank : 0;
    for (const [name] of llamaParameterShapes(this.config)) {
      const v = this.params.get(name)!;
      const module = name.endsWith(".weight") ? name.slice(0, -".weight".length) : undefined;
      const adapter = module ? this.adapters.get(module) : undefined;
      const merged = adapter ? tf.tidy(() => tf.add(v, tf.mul(tf.matMul(adapter.b, adapter.a), scale))) : v; // B [out, r] · A [r, in]
      out.push({ name, shape: [...v.shape], data: (await merged.data()) as Float32Array });
      if (merged !== v) merged.dispose();
    }
    return out;
  }

  /**
   * ids [B, T] int32, right-padded (causal attention keeps padding out of every real position, and every
   * row's positions count from 0). → logits [B, T, V], values [B, T]
   */
  forward(ids: tf.Tensor2D): { logits: tf.Tensor3D; values: tf.Tensor2D } {
    const [B, T] = ids.shape;
    const h = this.trunk(ids); // [B·T, D]
    const logits = tf.reshape(this.logitsOf(h), [B, T, this.config.vocabSize]) as tf.Tensor3D;
    const values = tf.reshape(linearHf(h, this.p(VALUE_WEIGHT), this.p(VALUE_BIAS)), [B, T]) as tf.Tensor2D;
    return { logits, values };
  }

  /** The final, RMS-normed hidden state at every position, what both heads read. ids [B, T] → [B·T, D] (row b·T + t). */
  trunk(ids: tf.Tensor2D): tf.Tensor2D {
    const [B, T] = ids.shape;
    const c = this.config;
    if (T > c.maxPositions) throw new Error(`llama model: sequence of ${T} tokens exceeds max_position_embeddings ${c.maxPositions}`);
    const positions = Int32Array.from({ length: T }, (_, t) => t);
    const pass: Pass = { ...rotaryTables(positions, 1, T, c.headDim, c.ropeTheta), mask: causalMask(T) };
    let x = gatherRows(this.p(EMBED), tf.reshape(ids, [B * T]) as tf.Tensor1D); // [B·T, D]
    for (let l = 0; l < c.layers; l++) x = this.layer(x, l, B, T, pass).x;
    return rmsNorm(x, this.p(FINAL_NORM), c.rmsNormEps);
  }

  /** Next-token logits of hidden states h [R, D] → [R, V], through lm_head or the tied embeddings. */
  logitsOf(h: tf.Tensor2D): tf.Tensor2D {
    return linearHf(h, this.p(this.config.tieWordEmbeddings ? EMBED : LM_HEAD));
  }

  /**
   * The final hidden state at `positions` only (flat b·T + t into ids [B, T]; repeats allowed) → [P, D]:
   * what the losses and the critic fit read (the built-in model's featuresAt, without its last-layer
   * shortcut yet: the trunk runs at every position).
   */
  featuresAt(ids: tf.Tensor2D, positions: Int32Array): tf.Tensor2D {
    const [B, T] = ids.shape;
    for (const i of positions) if (!(i >= 0 && i < B * T)) throw new Error(`llama model: position ${i} is outside [0, ${B * T - 1}]`);
    return gatherRows(this.trunk(ids), tf.tensor1d(positions, "int32")); // trunk rows are b·T + t already
  }

  /** Logits and values at `positions` (as featuresAt) → logits [P, V], values [P]. */
  headsAt(ids: tf.Tensor2D, positions: Int32Array): { logits: tf.Tensor2D; values: tf.Tensor1D } {
    const h = this.featuresAt(ids, positions);
    const values = tf.reshape(linearHf(h, this.p(VALUE_WEIGHT), this.p(VALUE_BIAS)), [positions.length]) as tf.Tensor1D;
    return { logits: this.logitsOf(h), values };
  }

  /** Values at `positions` alone, as headsAt's → [P]. */
  valuesAt(ids: tf.Tensor2D, positions: Int32Array): tf.Tensor1D {
    return tf.reshape(linearHf(this.featuresAt(ids, positions), this.p(VALUE_WEIGHT), this.p(VALUE_BIAS)), [positions.length]) as tf.Tensor1D;
  }

  /** Next-token logits at `positions` alone → [P, V]. */
  logitsAt(ids: tf.Tensor2D, positions: Int32Array): tf.Tensor2D {
    return this.logitsOf(this.featuresAt(ids, positions));
  }

  /** Sets the linear value head, V = h·w + b (the critic fit's result). w: [D] */
  setValueHead(w: Float32Array, b: number): void {
    const d = this.config.hiddenSize;
    if (w.length !== d) throw new Error(`llama model: value head needs ${d} weights, got ${w.length}`);
    tf.tidy(() => {
      (this.p(VALUE_WEIGHT) as tf.Variable).assign(tf.tensor2d(w, [1, d]));
      (this.p(VALUE_BIAS) as tf.Variable).assign(tf.tensor1d([b]));
    });
  }

  /** Incremental decoding with a key/value cache over left-padded contexts (llama-decoder.ts). */
  decoder(contexts: Int32Array[]): Decoder {
    return new LlamaDecoder(this, contexts);
  }

  /**
   * @internal used by LlamaDecoder: T new tokens per row, ids [B, T], through every layer, each attending
   * over its layer's `past` keys and values (none for a prompt) and the new positions under pass.mask
   * ([B, 1, T, Tk]). → the next-token logits at each row's last new position [B, V] and the grown caches.
   */
  decodeStep(ids: tf.Tensor2D, pass: Pass, past: LayerCache[] | undefined): { logits: tf.Tensor2D; cache: LayerCache[] } {
    const [B, T] = ids.shape;
    const c = this.config;
    let x = gatherRows(this.p(EMBED), tf.reshape(ids, [B * T]) as tf.Tensor1D); // [B·T, D]
    const cache: LayerCache[] = [];
    for (let l = 0; l < c.layers; l++) {
      const out = this.layer(x, l, B, T, pass, past?.[l]);
      x = out.x;
      cache.push(out.kv);
    }
    const last = tf.reshape(tf.slice(tf.reshape(x, [B, T, c.hiddenSize]), [0, T - 1, 0], [B, 1, c.hiddenSize]), [B, c.hiddenSize]) as tf.Tensor2D;
    return { logits: this.logitsOf(rmsNorm(last, this.p(FINAL_NORM), c.rmsNormEps)), cache };
  }

  /**
   * One decoder layer on rows x [B·T, D] (row b·T + t): x + attention(norm(x)), then + mlp(norm(·)). The
   * attention reads `past` keys and values before the new ones when given (decoding); returns the layer's
   * keys and values too (past and new, [B, KVH, Tk, dh]), which a decoder keeps as its cache.
   */
  private layer(x: tf.Tensor2D, l: number, B: number, T: number, pass: Pass, past?: LayerCache): { x: tf.Tensor2D; kv: LayerCache } {
    const c = this.config;
    const n = layerNames(l);
    const normed = rmsNorm(x, this.p(n.inputNorm), c.rmsNormEps);
    const heads = (proj: Proj, count: number) => toHeads(this.linear(normed, proj, c.qkvBias), B, T, count, c.headDim);
    const q = applyRotary(heads(n.q, c.heads), pass.cos, pass.sin); // [B, H, T, dh]
    const kNew = applyRotary(heads(n.k, c.kvHeads), pass.cos, pass.sin); // [B, KVH, T, dh]
    const vNew = heads(n.v, c.kvHeads); // [B, KVH, T, dh]
    const k = past ? (tf.concat([past.k, kNew], 2) as tf.Tensor4D) : kNew; // [B, KVH, Tk, dh]
    const v = past ? (tf.concat([past.v, vNew], 2) as tf.Tensor4D) : vNew;
    const attended = fromHeads(groupedAttention(q, k, v, pass.mask)); // [B·T, H·dh]
    const x1 = tf.add(x, this.linear(attended, n.o, c.oBias)) as tf.Tensor2D;
    const normed2 = rmsNorm(x1, this.p(n.postNorm), c.rmsNormEps);
    const mlp = (proj: Proj) => (h: tf.Tensor2D) => this.linear(h, proj, c.mlpBias);
    const out = tf.add(x1, swiGlu(normed2, mlp(n.gate), mlp(n.up), mlp(n.down))) as tf.Tensor2D;
    return { x: out, kv: { k, v } };
  }

  /** Named copies of every parameter, Hugging Face names and shapes (for export, checkpoints, the weight store). */
  async exportWeights(): Promise<NamedTensor[]> {
    const out: NamedTensor[] = [];
    for (const [name, v] of this.params) out.push({ name, shape: [...v.shape], data: (await v.data()) as Float32Array });
    return out;
  }

  /** Replaces every variable (adapters included); checks them all first, so weights that do not fit change nothing. */
  importWeights(weights: NamedTensor[]): void {
    const byName = new Map(weights.map((w) => [w.name, w]));
    for (const [name, v] of this.params) {
      const w = byName.get(name);
      if (!w) throw new Error(`weights: missing parameter ${name}`);
      if (w.shape.join("x") !== v.shape.join("x")) throw new Error(`weights: parameter ${name} has shape [${w.shape}], the model's is [${v.shape}]`);
      if (w.data.length !== v.size) throw new Error(`weights: parameter ${name} has ${w.data.length} values for shape [${v.shape}]`);
    }
    for (const [name, v] of this.params) {
      const w = byName.get(name)!;
      tf.tidy(() => v.assign(tf.tensor(w.data, w.shape)));
    }
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    this.params.clear();
    this.adapters.clear();
  }
}

/** Every parameter the config calls for is in `tensors` with its shape and as many values. */
function checkTensors(config: LlamaConfig, tensors: Map<string, NamedTensor>): void {
  for (const [name, shape] of llamaParameterShapes(config)) {
    const t = tensors.get(name);
    if (!t) throw new Error(`weights: missing parameter ${name}`);
    if (t.shape.join("x") !== shape.join("x")) throw new Error(`weights: parameter ${name} has shape [${t.shape}], the config needs [${shape}]`);
    if (t.data.length !== shape.reduce((a, b) => a * b, 1)) throw new Error(`weights: parameter ${name} has ${t.data.length} values for shape [${shape}]`);
  }
}
