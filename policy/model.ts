// A small decoder-only transformer (GPT-style, pre-LayerNorm) with a value head on the shared trunk.
// Written against tfjs ops directly (like nanoGPT's model.py) so every parameter is a named variable
// that the optimiser, the checkpoint and the weight store address the same way.
//
// Embeddings and the heads' positions are `gather`s whose gradient is a `scatterND` (gatherRows below):
// tfjs differentiates `gather` with UnsortedSegmentSum, which the wasm backend lacks, and scatterND sums
// duplicate indices just as that would. (A one-hot × matrix product has the same value at V times the work.)
import { Rng } from "../core/rng.ts";
import { MODEL_PRESETS, type ModelSpec } from "../crds/steppojob.ts";
import { tf } from "./backend.ts";
import { matMul, matMulTransposed } from "./matmul.ts";

export interface ModelConfig {
  vocabSize: number;
  dModel: number;
  layers: number;
  heads: number;
  contextLength: number;
}

export const PRESETS: Record<"tiny" | "small", Omit<ModelConfig, "vocabSize">> = MODEL_PRESETS;

export function modelConfig(spec: ModelSpec, vocabSize: number): ModelConfig {
  const preset = PRESETS[spec.preset];
  const cfg: ModelConfig = {
    vocabSize,
    dModel: spec.dModel ?? preset.dModel,
    layers: spec.layers ?? preset.layers,
    heads: spec.heads ?? preset.heads,
    contextLength: spec.contextLength ?? preset.contextLength,
  };
  if (cfg.dModel % cfg.heads !== 0) throw new Error(`spec.model: dModel ${cfg.dModel} must be divisible by heads ${cfg.heads}`);
  return cfg;
}

export interface ForwardOutput {
  /** Next-token logits at every position. [B, T, V] */
  logits: tf.Tensor3D;
  /** Value of the prefix ending at every position. [B, T] */
  values: tf.Tensor2D;
}

/** Parameter shapes by name, in a fixed order (the order of checkpoints and weight blobs). */
function parameterShapes(c: ModelConfig): [string, number[]][] {
  const d = c.dModel;
  const shapes: [string, number[]][] = [
    ["tok_emb", [c.vocabSize, d]],
    ["pos_emb", [c.contextLength, d]],
  ];
  for (let l = 0; l < c.layers; l++) {
    shapes.push(
      [`h${l}.ln1.g`, [d]],
      [`h${l}.ln1.b`, [d]],
      [`h${l}.attn.w_qkv`, [d, 3 * d]],
      [`h${l}.attn.b_qkv`, [3 * d]],
      [`h${l}.attn.w_o`, [d, d]],
      [`h${l}.attn.b_o`, [d]],
      [`h${l}.ln2.g`, [d]],
      [`h${l}.ln2.b`, [d]],
      [`h${l}.mlp.w_in`, [d, 4 * d]],
      [`h${l}.mlp.b_in`, [4 * d]],
      [`h${l}.mlp.w_out`, [4 * d, d]],
      [`h${l}.mlp.b_out`, [d]],
    );
  }
  shapes.push(["ln_f.g", [d]], ["ln_f.b", [d]], ["lm_head", [d, c.vocabSize]], ["value_head.w", [d, 1]], ["value_head.b", [1]]);
  return shapes;
}

/** GPT-2 style initialisation from our seeded RNG, so weights are identical on every backend. */
function initialValue(name: string, shape: number[], c: ModelConfig, rng: Rng): Float32Array {
  const size = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(size);
  if (name.endsWith(".g")) return out.fill(1);
  if (name.endsWith(".b") || name.includes(".b_") || name === "value_head.w") return out;
  // Residual projections are scaled down by depth (GPT-2), keeping the residual stream's variance flat.
  const std = name.endsWith("w_o") || name.endsWith("w_out") ? 0.02 / Math.sqrt(2 * c.layers) : 0.02;
  for (let i = 0; i < size; i++) out[i] = rng.normal() * std;
  return out;
}

// tfjs variable names are global; a per-process counter keeps two models (policy, reference) apart.
let modelInstances = 0;

export class PolicyModel {
  readonly config: ModelConfig;
  readonly params: Map<string, tf.Variable>;

  constructor(config: ModelConfig, seed: number) {
    this.config = config;
    const rng = new Rng(seed);
    this.params = new Map();
    // tidy frees the initial tensors (the variables keep their data); tidy never disposes variables.
    tf.tidy(() => {
      for (const [name, shape] of parameterShapes(config)) {
        this.params.set(name, tf.variable(tf.tensor(initialValue(name, shape, config, rng), shape), true, `${name}#${++modelInstances}`));
      }
    });
  }

  get variables(): tf.Variable[] {
    return [...this.params.values()];
  }

  parameterCount(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    return n;
  }

  private p(name: string): tf.Tensor {
    const v = this.params.get(name);
    if (!v) throw new Error(`model: no parameter ${name}`);
    return v;
  }

  /** ids: [B, T] int32, right-padded; causal attention makes padding invisible to real positions. */
  forward(ids: tf.Tensor2D): ForwardOutput {
    const c = this.config;
    const [B, T] = ids.shape;
    const h = tf.reshape(this.features(ids), [B * T, c.dModel]); // [B*T, D]
    const logits = tf.reshape(matMul(h, this.p("lm_head")), [B, T, c.vocabSize]) as tf.Tensor3D;
    const values = tf.reshape(tf.add(matMul(h, this.p("value_head.w")), this.p("value_head.b")), [B, T]) as tf.Tensor2D;
    return { logits, values };
  }

  /** The trunk's final, layer-normed hidden state at every position, what both heads read. [B, T, D] */
  features(ids: tf.Tensor2D): tf.Tensor3D {
    const c = this.config;
    const [B, T] = ids.shape;
    if (T > c.contextLength) throw new Error(`model: sequence of ${T} tokens exceeds contextLength ${c.contextLength}`);
    const d = c.dModel;
    const tok = gatherRows(this.p("tok_emb"), tf.reshape(ids, [B * T]) as tf.Tensor1D); // [B*T, D]
    const pos = tf.slice(this.p("pos_emb"), [0, 0], [T, d]); // [T, D]
    let x = tf.add(tf.reshape(tok, [B, T, d]), pos) as tf.Tensor3D; // [B, T, D]
    const mask = causalMask(T); // [T, T]
    for (let l = 0; l < c.layers; l++) x = this.block(x, l, mask).x;
    return layerNorm(x, this.p("ln_f.g"), this.p("ln_f.b"));
  }

  /**
   * Logits and values at some positions only: `positions` are flat indices b·T + t into ids [B, T]. The
   * losses read a handful of positions per step (its action tokens), so the heads and the log-softmax over
   * the vocabulary run on those rows alone. → logits [P, V], values [P]
   */
  headsAt(ids: tf.Tensor2D, positions: Int32Array): { logits: tf.Tensor2D; values: tf.Tensor1D } {
    const [B, T] = ids.shape;
    const h = tf.reshape(this.features(ids), [B * T, this.config.dModel]); // [B*T, D]
    const hP = gatherRows(h, tf.tensor1d(positions, "int32")); // [P, D]
    const logits = matMul(hP, this.p("lm_head")) as tf.Tensor2D; // [P, V]
    const values = tf.reshape(tf.add(matMul(hP, this.p("value_head.w")), this.p("value_head.b")), [positions.length]) as tf.Tensor1D;
    return { logits, values };
  }

  /** Sets the linear value head: V = h·w + b. w: [D] */
  setValueHead(w: Float32Array, b: number): void {
    const d = this.config.dModel;
    if (w.length !== d) throw new Error(`model: value head needs ${d} weights, got ${w.length}`);
    tf.tidy(() => {
      (this.p("value_head.w") as tf.Variable).assign(tf.tensor2d(w, [d, 1]));
      (this.p("value_head.b") as tf.Variable).assign(tf.tensor1d([b]));
    });
  }

  /**
   * One pre-LN transformer block. `mask` is additive and broadcasts to [B, H, Tq, Tk]; `past` holds the
   * keys/values of earlier positions during incremental decoding. Returns this block's keys/values.
   */
  private block(x: tf.Tensor3D, l: number, mask: tf.Tensor, past?: { k: tf.Tensor4D; v: tf.Tensor4D }): { x: tf.Tensor3D; k: tf.Tensor4D; v: tf.Tensor4D } {
    const [B, T, d] = x.shape;
    const H = this.config.heads;
    const dh = d / H;
    const normed = layerNorm(x, this.p(`h${l}.ln1.g`), this.p(`h${l}.ln1.b`));
    const qkv = tf.add(matMul(tf.reshape(normed, [B * T, d]), this.p(`h${l}.attn.w_qkv`)), this.p(`h${l}.attn.b_qkv`)); // [B*T, 3D]
    const [q, kNew, vNew] = tf.split(tf.reshape(qkv, [B, T, 3 * d]), 3, 2).map((t) => tf.transpose(tf.reshape(t, [B, T, H, dh]), [0, 2, 1, 3]) as tf.Tensor4D); // 3 × [B, H, T, dh]
    const k = past ? (tf.concat([past.k, kNew], 2) as tf.Tensor4D) : kNew; // [B, H, Tk, dh]
    const v = past ? (tf.concat([past.v, vNew], 2) as tf.Tensor4D) : vNew;
    const scores = tf.add(tf.mul(matMulTransposed(q, k), 1 / Math.sqrt(dh)), mask); // [B, H, T, Tk]
    const att = matMul(tf.softmax(scores), v); // [B, H, T, dh]
    const merged = tf.reshape(tf.transpose(att, [0, 2, 1, 3]), [B * T, d]); // [B*T, D]
    const attnOut = tf.reshape(tf.add(matMul(merged, this.p(`h${l}.attn.w_o`)), this.p(`h${l}.attn.b_o`)), [B, T, d]);
    const x1 = tf.add(x, attnOut) as tf.Tensor3D;
    const x2 = tf.add(x1, this.mlp(layerNorm(x1, this.p(`h${l}.ln2.g`), this.p(`h${l}.ln2.b`)), l)) as tf.Tensor3D;
    return { x: x2, k, v };
  }

  private mlp(x: tf.Tensor3D, l: number): tf.Tensor3D {
    const [B, T, d] = x.shape;
    const hidden = tf.relu(tf.add(matMul(tf.reshape(x, [B * T, d]), this.p(`h${l}.mlp.w_in`)), this.p(`h${l}.mlp.b_in`))); // [B*T, 4D]
    return tf.reshape(tf.add(matMul(hidden, this.p(`h${l}.mlp.w_out`)), this.p(`h${l}.mlp.b_out`)), [B, T, d]) as tf.Tensor3D;
  }

  /**
   * Incremental decoding with a key/value cache. Contexts are left-padded so every row's newest token
   * sits in the last column; padded keys are masked and positions count from each row's first real
   * token, so logits equal those of `forward` on the unpadded sequence.
   */
  decoder(contexts: Int32Array[]): Decoder {
    return new KvDecoder(this, contexts);
  }

  /** @internal used by KvDecoder: token + position embeddings without one-hot (no gradients needed). */
  embedInference(ids: tf.Tensor2D, positions: tf.Tensor2D): tf.Tensor3D {
    return tf.add(tf.gather(this.p("tok_emb"), ids), tf.gather(this.p("pos_emb"), positions)) as tf.Tensor3D;
  }

  /** @internal */
  blockInference(x: tf.Tensor3D, l: number, mask: tf.Tensor, past?: { k: tf.Tensor4D; v: tf.Tensor4D }) {
    return this.block(x, l, mask, past);
  }

  /** @internal logits of the final position of x: [B, T, D] → [B, V] */
  lastLogits(x: tf.Tensor3D): tf.Tensor2D {
    const [B, T, d] = x.shape;
    const last = tf.reshape(tf.slice(x, [0, T - 1, 0], [B, 1, d]), [B, d]);
    return matMul(layerNorm(last, this.p("ln_f.g"), this.p("ln_f.b")), this.p("lm_head")) as tf.Tensor2D;
  }

  /** Named copies of every parameter (for checkpoints and the weight store). */
  async exportWeights(): Promise<{ name: string; shape: number[]; data: Float32Array }[]> {
    const out: { name: string; shape: number[]; data: Float32Array }[] = [];
    for (const [name, v] of this.params) out.push({ name, shape: [...v.shape], data: (await v.data()) as Float32Array });
    return out;
  }

  /** Replaces every parameter; checks them all first, so weights that do not fit change nothing. */
  importWeights(weights: { name: string; shape: number[]; data: Float32Array }[]): void {
    const byName = new Map(weights.map((w) => [w.name, w]));
    for (const [name, v] of this.params) {
      const w = byName.get(name);
      if (!w) throw new Error(`weights: missing parameter ${name}`);
      if (w.shape.join("x") !== v.shape.join("x")) throw new Error(`weights: parameter ${name} has shape [${w.shape}], model expects [${v.shape}]`);
    }
    for (const [name, v] of this.params) {
      const w = byName.get(name)!;
      tf.tidy(() => v.assign(tf.tensor(w.data, w.shape)));
    }
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
  }
}

export interface Decoder {
  /** Logits for the next token of every row, [B × V] row-major. */
  logits(): Float32Array;
  /** Appends one token per row. */
  push(tokens: Int32Array): void;
  dispose(): void;
}

const MASKED = -1e9;

class KvDecoder implements Decoder {
  private readonly B: number;
  private readonly lengths: number[];
  private cache: { k: tf.Tensor4D; v: tf.Tensor4D }[] = [];
  /** Additive key mask over the columns so far, [B, 1, 1, Tk]. */
  private keyMask: tf.Tensor4D;
  private next: tf.Tensor2D;

  constructor(
    private readonly model: PolicyModel,
    contexts: Int32Array[],
  ) {
    this.B = contexts.length;
    this.lengths = contexts.map((c) => c.length);
    const Tc = Math.max(...this.lengths);
    if (Tc > model.config.contextLength) throw new Error(`model: context of ${Tc} tokens exceeds contextLength ${model.config.contextLength}`);
    const ids = new Int32Array(this.B * Tc);
    const pos = new Int32Array(this.B * Tc);
    const keyMask = new Float32Array(this.B * Tc);
    contexts.forEach((c, b) => {
      const pad = Tc - c.length;
      ids.set(c, b * Tc + pad);
      for (let j = 0; j < Tc; j++) {
        pos[b * Tc + j] = Math.max(0, j - pad);
        if (j < pad) keyMask[b * Tc + j] = MASKED;
      }
    });
    this.keyMask = tf.tensor4d(keyMask, [this.B, 1, 1, Tc]);
    this.next = tf.tidy(() => {
      let x = model.embedInference(tf.tensor2d(ids, [this.B, Tc], "int32"), tf.tensor2d(pos, [this.B, Tc], "int32"));
      const mask = tf.add(causalMask(Tc), this.keyMask); // [B, 1, Tc, Tc]
      for (let l = 0; l < model.config.layers; l++) {
        const out = model.blockInference(x, l, mask);
        this.cache.push({ k: tf.keep(out.k), v: tf.keep(out.v) });
        x = out.x;
      }
      return model.lastLogits(x);
    });
  }

  logits(): Float32Array {
    return this.next.dataSync() as Float32Array;
  }

  push(tokens: Int32Array): void {
    const positions = Int32Array.from(this.lengths, (len) => Math.min(len, this.model.config.contextLength - 1));
    for (let b = 0; b < this.B; b++) this.lengths[b]++;
    const oldCache = this.cache;
    const oldMask = this.keyMask;
    const oldNext = this.next;
    this.keyMask = tf.tidy(() => tf.concat([oldMask, tf.zeros([this.B, 1, 1, 1])], 3) as tf.Tensor4D);
    const cache: { k: tf.Tensor4D; v: tf.Tensor4D }[] = [];
    this.next = tf.tidy(() => {
      let x = this.model.embedInference(tf.tensor2d(tokens, [this.B, 1], "int32"), tf.tensor2d(positions, [this.B, 1], "int32"));
      for (let l = 0; l < this.model.config.layers; l++) {
        const out = this.model.blockInference(x, l, this.keyMask, oldCache[l]);
        cache.push({ k: tf.keep(out.k), v: tf.keep(out.v) });
        x = out.x;
      }
      return this.model.lastLogits(x);
    });
    this.cache = cache;
    tf.dispose([oldMask, oldNext, ...oldCache.flatMap((c) => [c.k, c.v])]);
  }

  dispose(): void {
    tf.dispose([this.keyMask, this.next, ...this.cache.flatMap((c) => [c.k, c.v])]);
    this.cache = [];
  }
}

/**
 * table[idx] for table [N, D] and idx [P] → [P, D], differentiable in `table`: the gradient scatters dy back
 * onto the rows, summing where an index repeats (a token that occurs twice).
 */
export function gatherRows(table: tf.Tensor, idx: tf.Tensor1D): tf.Tensor2D {
  const shape = table.shape;
  // idx is an input (with a zero "gradient") so that the tape keeps it alive until the backward pass.
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [t, i, save] = args as [tf.Tensor, tf.Tensor1D, tf.GradSaveFunc];
    save([i]);
    return {
      value: tf.gather(t, i),
      gradFunc: (dy, [si]) => [tf.scatterND(tf.reshape(si, [si.size, 1]), dy as tf.Tensor, shape), tf.zerosLike(si)],
    };
  });
  return f(table, idx) as tf.Tensor2D;
}

/**
 * x [P] placed at `positions` of a zero vector of length n (positions distinct), differentiable in x: the
 * gradient gathers dy at the same positions.
 */
export function scatterRows(x: tf.Tensor1D, positions: Int32Array, n: number): tf.Tensor1D {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [v, i, save] = args as [tf.Tensor, tf.Tensor1D, tf.GradSaveFunc];
    save([i]);
    return {
      value: tf.scatterND(tf.reshape(i, [i.size, 1]), v, [n]),
      gradFunc: (dy, [si]) => [tf.gather(dy as tf.Tensor, si), tf.zerosLike(si)],
    };
  });
  return f(x, tf.tensor1d(positions, "int32")) as tf.Tensor1D;
}

/** Additive causal mask: 0 on and below the diagonal, a large negative number above. [T, T] */
function causalMask(T: number): tf.Tensor2D {
  const m = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) m[i * T + j] = MASKED;
  return tf.tensor2d(m, [T, T]);
}

function layerNorm<T extends tf.Tensor>(x: T, g: tf.Tensor, b: tf.Tensor): T {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), g), b) as T;
}

/** Right-pads ragged sequences with <pad> (id 0) into a [B, T] int32 tensor. */
export function padBatch(sequences: Int32Array[], T: number): tf.Tensor2D {
  const buf = new Int32Array(sequences.length * T);
  sequences.forEach((s, i) => {
    buf.set(s.subarray(0, T), i * T);
  });
  return tf.tensor2d(buf, [sequences.length, T], "int32");
}
