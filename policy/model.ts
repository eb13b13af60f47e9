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
import {
  type AttentionShape,
  attention,
  attentionAt,
  attentionPrompt,
  attentionStep,
  type KeyValues,
  layerNorm,
  layerNormValue,
  linear,
  linearValue,
} from "./layers.ts";

const layerNormOp = layerNorm;
const linearOp = linear;
import { type DecodeState, disposeDecodeState, keepDecodeStep } from "./decode-state.ts";
import { matMul } from "./matmul.ts";
import { onHeap } from "./wasm-heap.ts";

export interface ModelConfig {
  vocabSize: number;
  dModel: number;
  layers: number;
  heads: number;
  contextLength: number;
}

export const PRESETS: Record<"tiny" | "small", Omit<ModelConfig, "vocabSize">> = MODEL_PRESETS;

export function modelConfig(spec: ModelSpec, vocabSize: number): ModelConfig {
  // A Hugging Face model's dimensions are its config.json's (policy/hf/hf-run-policy.ts): refused here rather
  // than building the preset in its place for a caller that did not ask which model the job names.
  if (spec.source !== undefined) {
    throw new Error(
      `spec.model.source: ${spec.source}: a Hugging Face model, not the built-in one; its config.json decides its dimensions (docs/hf-models.md)`,
    );
  }
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
  readonly valueHeadParameters = ["value_head.w", "value_head.b"] as const;

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
    const h = this.trunk(ids); // [T·B, D]
    const logits = tf.transpose(tf.reshape(matMul(h, this.p("lm_head")), [T, B, c.vocabSize]), [1, 0, 2]) as tf.Tensor3D;
    const values = tf.transpose(tf.reshape(linear(h, this.p("value_head.w"), this.p("value_head.b")), [T, B])) as tf.Tensor2D;
    return { logits, values };
  }

  /** The trunk's final, layer-normed hidden state at every position, what both heads read. [B, T, D] */
  features(ids: tf.Tensor2D): tf.Tensor3D {
    const [B, T] = ids.shape;
    return tf.transpose(tf.reshape(this.trunk(ids), [T, B, this.config.dModel]), [1, 0, 2]) as tf.Tensor3D;
  }

  /**
   * The trunk on time-major rows: row t·B + b holds position t of sequence b, so that attention's products
   * need the fewest transposes (layers.ts). → [T·B, D], layer-normed.
   */
  private trunk(ids: tf.Tensor2D): tf.Tensor2D {
    const [B, T] = ids.shape;
    const mask = tf.reshape(causalMask(T), [T, 1, 1, T]);
    const shape = this.attentionShape(T, B);
    let x = this.embed(ids);
    for (let l = 0; l < this.config.layers; l++) x = this.block(x, l, (normed, w, b) => attention(normed, w, b, mask, shape));
    return layerNorm(x, this.p("ln_f.g"), this.p("ln_f.b"));
  }

  /** Token plus position embeddings of ids [B, T], time-major. → [T·B, D] */
  private embed(ids: tf.Tensor2D): tf.Tensor2D {
    const c = this.config;
    const [B, T] = ids.shape;
    if (T > c.contextLength) throw new Error(`model: sequence of ${T} tokens exceeds contextLength ${c.contextLength}`);
    const d = c.dModel;
    const tok = gatherRows(this.p("tok_emb"), tf.reshape(tf.transpose(ids), [T * B]) as tf.Tensor1D); // [T·B, D]
    const pos = tf.reshape(tf.slice(this.p("pos_emb"), [0, 0], [T, d]), [T, 1, d]);
    return tf.reshape(tf.add(tf.reshape(tok, [T, B, d]), pos), [T * B, d]) as tf.Tensor2D;
  }

  /**
   * The trunk's output at the query slots of `win` only, [Q·B, D] layer-normed (row j·B + b: slot j of
   * sequence b). Every layer but the last runs at every position, since the next layer's keys and values
   * read them all; the last layer's keys and values too, but its queries, attention, output projection,
   * MLP and the final norm run at the slots alone. Each slot attends over the keys up to its own position,
   * so the rows equal the full trunk's at those positions.
   */
  private trunkAt(ids: tf.Tensor2D, win: ReadWindows): tf.Tensor2D {
    const [B, T] = ids.shape;
    const last = this.config.layers - 1;
    const mask = tf.reshape(causalMask(T), [T, 1, 1, T]);
    const shape = this.attentionShape(T, B);
    let x = this.embed(ids);
    for (let l = 0; l < last; l++) x = this.block(x, l, (normed, w, b) => attention(normed, w, b, mask, shape));
    const slots = tf.tensor1d(win.slotRows, "int32");
    const slotMask = tf.tensor4d(win.mask, [win.Q, B, 1, T]);
    const slotShape = this.attentionShape(win.Q, B);
    const xAt = this.block(
      x,
      last,
      (normed, w, b) => attentionAt(gatherRows(normed, slots), normed, w, b, slotMask, slotShape),
      false,
      (t) => gatherRows(t, slots), // the residual stream at the slots, [Q·B, D]
    );
    return layerNorm(xAt, this.p("ln_f.g"), this.p("ln_f.b"));
  }

  private attentionShape(T: number, B: number): AttentionShape {
    return { T, B, H: this.config.heads, dh: this.config.dModel / this.config.heads };
  }

  /**
   * Logits and values at some positions only: `positions` are flat indices b·T + t into ids [B, T]. The
   * losses read a handful of positions per step (its action tokens), so the heads and the log-softmax over
   * the vocabulary run on those rows alone, and so does most of the last layer (featuresAt).
   * → logits [P, V], values [P]
   */
  headsAt(ids: tf.Tensor2D, positions: Int32Array): { logits: tf.Tensor2D; values: tf.Tensor1D } {
    const hP = this.featuresAt(ids, positions); // [P, D]
    const logits = matMul(hP, this.p("lm_head")) as tf.Tensor2D; // [P, V]
    const values = tf.reshape(linear(hP, this.p("value_head.w"), this.p("value_head.b")), [positions.length]) as tf.Tensor1D;
    return { logits, values };
  }

  /** Next-token logits at `positions` (flat b·T + t into ids [B, T]) alone, as headsAt's. → [P, V] */
  logitsAt(ids: tf.Tensor2D, positions: Int32Array): tf.Tensor2D {
    return matMul(this.featuresAt(ids, positions), this.p("lm_head")) as tf.Tensor2D;
  }

  /** Values at `positions` alone, as headsAt's (the separate critic's pass: no vocabulary head). → [P] */
  valuesAt(ids: tf.Tensor2D, positions: Int32Array): tf.Tensor1D {
    return tf.reshape(linear(this.featuresAt(ids, positions), this.p("value_head.w"), this.p("value_head.b")), [positions.length]) as tf.Tensor1D;
  }

  /**
   * The trunk's final, layer-normed hidden state at `positions` (flat b·T + t into ids [B, T]; repeats
   * allowed) → [P, D]: the rows of `features` there. Each sequence's last layer runs over the window from
   * its first to its last read position (trunkAt); the full trunk runs where the windows would span the
   * whole batch anyway (or there is no layer to cut).
   */
  featuresAt(ids: tf.Tensor2D, positions: Int32Array): tf.Tensor2D {
    const [B, T] = ids.shape;
    const win = readWindows(positions, B, T);
    if (this.config.layers === 0 || win.Q === 0 || win.Q >= T) {
      const rows = Int32Array.from(positions, (i) => (i % T) * B + Math.floor(i / T)); // b·T + t → t·B + b
      return gatherRows(this.trunk(ids), tf.tensor1d(rows, "int32"));
    }
    return gatherRows(this.trunkAt(ids, win), tf.tensor1d(win.slotOf, "int32"));
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
   * One pre-LN transformer block on time-major rows x [T·B, D]; `attend` maps the layer-normed input and
   * the q|k|v projection's weights to the attention output [R, D] (training: causal attention; decoding:
   * over a cache too; the last layer of trunkAt: at some rows only, R of them). `atRows` picks the same R
   * rows of the residual stream (all of them by default), and the rest of the block runs on those.
   */
  private block(
    x: tf.Tensor2D,
    l: number,
    attend: (normed: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor) => tf.Tensor2D,
    inference = false,
    atRows: (x: tf.Tensor2D) => tf.Tensor2D = (t) => t,
  ): tf.Tensor2D {
    const layerNorm = inference ? layerNormValue : layerNormOp;
    const linear = inference ? linearValue : linearOp;
    const normed = layerNorm(x, this.p(`h${l}.ln1.g`), this.p(`h${l}.ln1.b`));
    const attended = attend(normed, this.p(`h${l}.attn.w_qkv`), this.p(`h${l}.attn.b_qkv`)); // [R, D]
    const x1 = tf.add(atRows(x), linear(attended, this.p(`h${l}.attn.w_o`), this.p(`h${l}.attn.b_o`))) as tf.Tensor2D;
    const hidden = linear(layerNorm(x1, this.p(`h${l}.ln2.g`), this.p(`h${l}.ln2.b`)), this.p(`h${l}.mlp.w_in`), this.p(`h${l}.mlp.b_in`), "relu"); // [R, 4D]
    return tf.add(x1, linear(hidden, this.p(`h${l}.mlp.w_out`), this.p(`h${l}.mlp.b_out`))) as tf.Tensor2D;
  }

  /**
   * Incremental decoding with a key/value cache. Contexts are left-padded so every row's newest token
   * sits in the last column; padded keys are masked and positions count from each row's first real
   * token, so logits equal those of `forward` on the unpadded sequence.
   */
  decoder(contexts: Int32Array[]): Decoder {
    return new KvDecoder(this, contexts);
  }

  /**
   * @internal used by KvDecoder: T new time-major positions of B rows (ids and positions [T·B]) through the
   * trunk, attending over `past` (one cache per layer) and themselves under `mask` ([T, B, 1, Tk]); returns
   * the logits of the last position of every row [B, V] and the grown caches. Without `past` the T positions
   * are a prompt; with it, T is 1 (one token per row, attentionStep).
   */
  decodeStep(
    ids: tf.Tensor1D,
    positions: tf.Tensor1D,
    T: number,
    B: number,
    mask: tf.Tensor,
    past: KeyValues[] | undefined,
  ): { logits: tf.Tensor2D; cache: KeyValues[] } {
    const d = this.config.dModel;
    let x = tf.add(gatherRowsValue(this.p("tok_emb"), ids), gatherRowsValue(this.p("pos_emb"), positions)) as tf.Tensor2D; // [T·B, D]
    const shape = this.attentionShape(T, B);
    const cache: KeyValues[] = [];
    for (let l = 0; l < this.config.layers; l++) {
      x = this.block(
        x,
        l,
        (normed, w, b) => {
          const { out, kv } = past ? attentionStep(normed, w, b, mask, shape, past[l]) : attentionPrompt(normed, w, b, mask, shape);
          cache.push(kv);
          return out;
        },
        true,
      );
    }
    const last = tf.slice(x, [(T - 1) * B, 0], [B, d]); // the last position of every row
    const logits = tf.matMul(layerNormValue(last, this.p("ln_f.g"), this.p("ln_f.b")), this.p("lm_head")) as tf.Tensor2D;
    return { logits, cache };
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
  /** Additive key mask over the columns so far, [1, B, 1, Tk]. */
  private keyMask: tf.Tensor4D;
  /** The logits and each layer's keys and values, [B·H, Tk, dh]. */
  private state: DecodeState<tf.Tensor3D>;

  constructor(
    private readonly model: PolicyModel,
    contexts: Int32Array[],
  ) {
    const B = contexts.length;
    this.B = B;
    this.lengths = contexts.map((c) => c.length);
    const Tc = Math.max(...this.lengths);
    if (Tc > model.config.contextLength) throw new Error(`model: context of ${Tc} tokens exceeds contextLength ${model.config.contextLength}`);
    // Time-major: position j of row b at j·B + b.
    const ids = new Int32Array(Tc * B);
    const pos = new Int32Array(Tc * B);
    const keyMask = new Float32Array(B * Tc);
    contexts.forEach((c, b) => {
      const pad = Tc - c.length;
      for (let j = 0; j < Tc; j++) {
        if (j >= pad) ids[j * B + b] = c[j - pad];
        pos[j * B + b] = Math.max(0, j - pad);
        if (j < pad) keyMask[b * Tc + j] = MASKED;
      }
    });
    this.keyMask = tf.tensor4d(keyMask, [1, B, 1, Tc]);
    this.state = keepDecodeStep(() => {
      const mask = tf.add(tf.reshape(causalMask(Tc), [Tc, 1, 1, Tc]), this.keyMask); // [Tc, B, 1, Tc]
      return model.decodeStep(tf.tensor1d(ids, "int32"), tf.tensor1d(pos, "int32"), Tc, B, mask, undefined);
    });
  }

  logits(): Float32Array {
    return this.state.next.dataSync() as Float32Array;
  }

  push(tokens: Int32Array): void {
    const positions = Int32Array.from(this.lengths, (len) => Math.min(len, this.model.config.contextLength - 1));
    for (let b = 0; b < this.B; b++) this.lengths[b]++;
    const old = this.state;
    const oldMask = this.keyMask;
    this.keyMask = tf.tidy(() => tf.concat([oldMask, tf.zeros([1, this.B, 1, 1])], 3) as tf.Tensor4D);
    this.state = keepDecodeStep(() => this.model.decodeStep(tf.tensor1d(tokens, "int32"), tf.tensor1d(positions, "int32"), 1, this.B, this.keyMask, old.cache));
    oldMask.dispose();
    disposeDecodeState(old);
  }

  dispose(): void {
    this.keyMask.dispose();
    disposeDecodeState(this.state);
    this.state = { next: this.state.next, cache: [] };
  }
}

/**
 * table[idx] for table [N, D] and idx [P] → [P, D], differentiable in `table`: the gradient scatters dy back
 * onto the rows, summing where an index repeats (a token that occurs twice). On wasm both directions run as
 * plain copies in JS, ~5× faster than its Gather and ScatterNd kernels (which check and stride per element).
 */
export function gatherRows(table: tf.Tensor, idx: tf.Tensor1D): tf.Tensor2D {
  const shape = table.shape;
  const inJs = tf.getBackend() === "wasm";
  // idx is an input (with a zero "gradient") so that the tape keeps it alive until the backward pass.
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [t, i, save] = args as [tf.Tensor, tf.Tensor1D, tf.GradSaveFunc];
    save([i]);
    return {
      value: inJs ? gatherInJs(t, i) : tf.gather(t, i),
      gradFunc: (dy, [si]) => [
        inJs ? scatterAddInJs(dy as tf.Tensor, si, shape) : tf.scatterND(tf.reshape(si, [si.size, 1]), dy as tf.Tensor, shape),
        tf.zerosLike(si),
      ],
    };
  });
  return f(table, idx) as tf.Tensor2D;
}

/** table[idx] without a gradient (decoding). */
function gatherRowsValue(table: tf.Tensor, idx: tf.Tensor1D): tf.Tensor2D {
  return tf.getBackend() === "wasm" ? gatherInJs(table, idx) : (tf.gather(table, idx) as tf.Tensor2D);
}

/** table[idx] copied row by row on the wasm heap (wasm-heap.ts). table [N, D], idx [P] int32 → [P, D] */
function gatherInJs(table: tf.Tensor, idx: tf.Tensor): tf.Tensor2D {
  const [N, D] = table.shape;
  const bad = (idx.dataSync() as Int32Array).find((row) => row < 0 || row >= N);
  if (bad !== undefined) throw new Error(`gatherRows: index ${bad} is not in [0, ${N - 1}]`);
  return onHeap([idx.size, D], [table, idx], (out, data, ids) => {
    for (let p = 0; p < ids.length; p++) out.set(data.subarray(ids[p] * D, ids[p] * D + D), p * D);
  }) as tf.Tensor2D;
}

/** The gradient of gatherInJs: dy [P, D] summed onto rows idx [P] of zeros [N, D], on the wasm heap. */
function scatterAddInJs(dy: tf.Tensor, idx: tf.Tensor, shape: number[]): tf.Tensor {
  const D = shape[1];
  return onHeap(shape, [dy, idx], (out, g, ids) => {
    out.fill(0);
    for (let p = 0; p < ids.length; p++) {
      const o = ids[p] * D;
      const s = p * D;
      for (let j = 0; j < D; j++) out[o + j] += g[s + j];
    }
  });
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

/**
 * The query slots of the last layer when only `positions` (flat b·T + t into [B, T]) are read: sequence b's
 * window runs from its first to its last read position (a step's action-predicting positions are one
 * contiguous run, its value positions within it), Q = the longest window, and slot j of sequence b sits at
 * position start_b + j (clamped to T − 1: the slots past a shorter window are computed and never read).
 */
export interface ReadWindows {
  /** Slots per sequence. */
  Q: number;
  /** Time-major trunk row t·B + b of slot j of sequence b, at j·B + b. [Q·B] */
  slotRows: Int32Array;
  /** The slot row j·B + b of each read position, in the order given. [P] */
  slotOf: Int32Array;
  /** Additive mask [Q, B, 1, T]: the causal mask's row of each slot's position. */
  mask: Float32Array;
}

export function readWindows(positions: Int32Array, B: number, T: number): ReadWindows {
  const first = new Int32Array(B).fill(T);
  const lastRead = new Int32Array(B).fill(-1);
  for (const i of positions) {
    const b = Math.floor(i / T);
    const t = i % T;
    if (b < 0 || b >= B) throw new Error(`readWindows: position ${i} is outside [0, ${B * T - 1}]`);
    first[b] = Math.min(first[b], t);
    lastRead[b] = Math.max(lastRead[b], t);
  }
  let Q = 0;
  for (let b = 0; b < B; b++) {
    if (lastRead[b] < 0)
      first[b] = 0; // nothing read: any valid slots
    else Q = Math.max(Q, lastRead[b] - first[b] + 1);
  }
  const slotRows = new Int32Array(Q * B);
  const mask = new Float32Array(Q * B * T);
  for (let j = 0; j < Q; j++) {
    for (let b = 0; b < B; b++) {
      const t = Math.min(first[b] + j, T - 1);
      slotRows[j * B + b] = t * B + b;
      mask.fill(MASKED, (j * B + b) * T + t + 1, (j * B + b + 1) * T);
    }
  }
  const slotOf = Int32Array.from(positions, (i) => (i % T) - first[Math.floor(i / T)]).map((j, k) => j * B + Math.floor(positions[k] / T));
  return { Q, slotRows, mask, slotOf };
}

/** Additive causal mask: 0 on and below the diagonal, a large negative number above. [T, T] */
function causalMask(T: number): tf.Tensor2D {
  const m = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) m[i * T + j] = MASKED;
  return tf.tensor2d(m, [T, T]);
}

/** Right-pads ragged sequences with <pad> (id 0) into a [B, T] int32 tensor. */
export function padBatch(sequences: Int32Array[], T: number): tf.Tensor2D {
  const buf = new Int32Array(sequences.length * T);
  sequences.forEach((s, i) => {
    buf.set(s.subarray(0, T), i * T);
  });
  return tf.tensor2d(buf, [sequences.length, T], "int32");
}
