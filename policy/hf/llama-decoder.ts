// Incremental decoding of a LlamaPolicy with a key/value cache, for a batch of contexts of different
// lengths. Contexts are left-padded so that every row's newest token sits in the last column; padded keys
// are masked and each row's rotary positions count from its first real token, so the logits equal those of
// the full forward pass on the unpadded sequence. The cache holds each layer's rotated keys and values,
// [B, KVH, Tk, dh], grown by one column per pushed token.
import { tf } from "../backend.ts";
import { type DecodeState, disposeDecodeState, keepDecodeStep } from "../decode-state.ts";
import type { Decoder } from "../model.ts";
import { rotaryTables } from "./llama-layers.ts";
import { paddedCausalMask } from "./llama-masks.ts";
import type { LlamaPolicy, Pass } from "./llama-model.ts";

export class LlamaDecoder implements Decoder {
  private readonly B: number;
  /** Left-padding columns of each row. */
  private readonly pads: number[];
  /** Tokens of each row so far: the rotary position of its next token. */
  private readonly lengths: number[];
  /** Key columns so far: the longest context, plus one per pushed token. */
  private columns: number;
  /** The logits and each layer's cache. */
  private state: DecodeState<tf.Tensor4D>;

  constructor(
    private readonly model: LlamaPolicy,
    contexts: Int32Array[],
  ) {
    const B = contexts.length;
    if (B === 0) throw new Error("llama decoder: no contexts");
    this.B = B;
    this.lengths = contexts.map((c) => c.length);
    const Tc = Math.max(...this.lengths);
    if (Math.min(...this.lengths) === 0) throw new Error("llama decoder: an empty context has no token to predict from");
    this.checkPositions(Tc);
    this.pads = this.lengths.map((len) => Tc - len);
    this.columns = Tc;
    const ids = new Int32Array(B * Tc); // padding reads token 0: masked, so any id would do
    const positions = new Int32Array(B * Tc);
    contexts.forEach((c, b) => {
      ids.set(c, b * Tc + this.pads[b]);
      for (let j = 0; j < Tc; j++) positions[b * Tc + j] = Math.max(0, j - this.pads[b]);
    });
    this.state = keepDecodeStep(() => this.model.decodeStep(tf.tensor2d(ids, [B, Tc], "int32"), this.pass(positions, Tc, Tc), undefined));
  }

  logits(): Float32Array {
    return this.state.next.dataSync() as Float32Array;
  }

  push(tokens: Int32Array): void {
    if (tokens.length !== this.B) throw new Error(`llama decoder: ${tokens.length} tokens pushed for ${this.B} rows`);
    const positions = Int32Array.from(this.lengths);
    this.checkPositions(Math.max(...positions) + 1);
    for (let b = 0; b < this.B; b++) this.lengths[b]++;
    const Tk = ++this.columns;
    const old = this.state;
    this.state = keepDecodeStep(() => this.model.decodeStep(tf.tensor2d(tokens, [this.B, 1], "int32"), this.pass(positions, 1, Tk), old.cache));
    disposeDecodeState(old);
  }

  dispose(): void {
    disposeDecodeState(this.state);
    this.state = { next: this.state.next, cache: [] };
  }

  /** Rotary tables for `positions` [B · T] and the mask of T new columns over Tk keys. */
  private pass(positions: Int32Array, T: number, Tk: number): Pass {
    const c = this.model.config;
    return { ...rotaryTables(positions, this.B, T, c.headDim, c.ropeTheta), mask: paddedCausalMask(this.pads, T, Tk) };
  }

  /** Positions beyond max_position_embeddings are outside what the model was trained on: refused, not extrapolated. */
  private checkPositions(length: number): void {
    const max = this.model.config.maxPositions;
    if (length > max) throw new Error(`llama decoder: a sequence of ${length} tokens exceeds max_position_embeddings ${max}`);
  }
}
