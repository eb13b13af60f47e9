// Adam with global-norm gradient clipping. Hand-written (rather than tf.train.adam) so that its
// moments and step count are plain named state the checkpoint saves and restores bit-for-bit.
//
// On the wasm backend the update runs in plain JS over the parameters' data: as tensor ops it is ~14
// kernels per parameter (~450 for the tiny model, ~20 ms at wasm's ~0.04 ms per launch) for ~150 000
// numbers, arithmetic JS does in a millisecond or two, and reading and writing wasm's tensors is a copy.
// Other backends (tfjs-node, tfjs-node-gpu: parameters on the device) keep the tensor ops.
import { tf } from "../policy/backend.ts";

export interface AdamConfig {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  maxGradNorm: number;
  /** Per parameter name, a multiple of learningRate (absent: 1): the critic's own learning rate. */
  learningRateScales?: ReadonlyMap<string, number>;
}

export class Adam {
  step = 0;
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();

  constructor(
    readonly params: Map<string, tf.Variable>,
    public config: AdamConfig,
  ) {
    // Moments for the trainable parameters only: with LoRA the loaded weights are frozen (trainable false)
    // and would otherwise cost two copies each for nothing. tidy frees the initial tensors (the variables
    // keep their data); tidy never disposes variables.
    tf.tidy(() => {
      for (const [name, p] of params) {
        if (!p.trainable) continue;
        this.m.set(name, tf.variable(tf.zerosLike(p), false));
        this.v.set(name, tf.variable(tf.zerosLike(p), false));
      }
    });
  }

  /** Forgets moments and step count (a new phase of training, e.g. RL after warm-up). */
  reset(): void {
    this.step = 0;
    tf.tidy(() => {
      for (const t of [...this.m.values(), ...this.v.values()]) t.assign(tf.zerosLike(t));
    });
  }

  /** Applies one update from named gradients; returns the pre-clipping global gradient norm. */
  apply(grads: Record<string, tf.Tensor>): number {
    return this.applyWith(grads, tf.getBackend() === "wasm" ? "js" : "tensors");
  }

  /** `apply` computed one given way (the tests compare the two on one backend). */
  applyWith(grads: Record<string, tf.Tensor>, how: "js" | "tensors"): number {
    for (const name of Object.keys(grads)) if (!this.m.has(name)) throw new Error(`optimizer: a gradient for ${name}, which is not a trainable parameter`);
    this.step += 1;
    return how === "js" ? this.applyInJs(grads) : this.applyAsTensors(grads);
  }

  private lrScale(name: string): number {
    return this.config.learningRateScales?.get(name) ?? 1;
  }

  /** The clipping factor for a global gradient norm; refuses a non-finite norm. */
  private clipScale(norm: number): number {
    if (!Number.isFinite(norm)) throw new Error(`optimizer: gradient norm is ${norm} at step ${this.step}; refusing to apply a non-finite update`);
    return norm > this.config.maxGradNorm ? this.config.maxGradNorm / norm : 1;
  }

  private applyAsTensors(grads: Record<string, tf.Tensor>): number {
    const { learningRate: lr, beta1, beta2, epsilon } = this.config;
    const norm = tf.tidy(() => tf.sqrt(tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g))))).dataSync()[0]);
    const scale = this.clipScale(norm);
    const bc1 = 1 - beta1 ** this.step;
    const bc2 = 1 - beta2 ** this.step;
    tf.tidy(() => {
      for (const name of this.m.keys()) {
        const g0 = grads[name];
        if (!g0) continue;
        const p = this.params.get(name)!;
        const g = scale === 1 ? g0 : tf.mul(g0, scale);
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)));
        v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2)));
        const update = tf.div(tf.mul(m, (lr * this.lrScale(name)) / bc1), tf.add(tf.sqrt(tf.div(v, bc2)), epsilon));
        p.assign(tf.sub(p, update));
      }
    });
    return norm;
  }

  /** The same update as applyAsTensors, element by element in JS (float64 arithmetic, float32 state). */
  private applyInJs(grads: Record<string, tf.Tensor>): number {
    const { learningRate: lr, beta1, beta2, epsilon } = this.config;
    const names = [...this.m.keys()].filter((name) => grads[name]);
    const gs = names.map((name) => grads[name].dataSync() as Float32Array);
    const norm = Math.sqrt(gs.reduce((sum, g) => sum + sumOfSquares(g), 0));
    const scale = this.clipScale(norm);
    const step1 = lr / (1 - beta1 ** this.step);
    const bc2 = 1 - beta2 ** this.step;
    names.forEach((name, k) => {
      const p = this.params.get(name)!;
      const m = this.m.get(name)!;
      const v = this.v.get(name)!;
      const g = gs[k];
      // dataSync's arrays are copies: updated in place, then written back.
      const pd = p.dataSync() as Float32Array;
      const md = m.dataSync() as Float32Array;
      const vd = v.dataSync() as Float32Array;
      adamStep(g, scale, pd, md, vd, beta1, beta2, step1 * this.lrScale(name), bc2, epsilon);
      tf.tidy(() => {
        m.assign(tf.tensor(md, m.shape));
        v.assign(tf.tensor(vd, v.shape));
        p.assign(tf.tensor(pd, p.shape));
      });
    });
    return norm;
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
  }

  async exportState(): Promise<{ name: string; shape: number[]; data: Float32Array }[]> {
    const out: { name: string; shape: number[]; data: Float32Array }[] = [];
    for (const [name, t] of this.m) out.push({ name: `adam.m.${name}`, shape: [...t.shape], data: (await t.data()) as Float32Array });
    for (const [name, t] of this.v) out.push({ name: `adam.v.${name}`, shape: [...t.shape], data: (await t.data()) as Float32Array });
    return out;
  }

  importState(step: number, tensors: { name: string; shape: number[]; data: Float32Array }[]): void {
    const byName = new Map(tensors.map((t) => [t.name, t]));
    for (const [kind, store] of [
      ["m", this.m],
      ["v", this.v],
    ] as const) {
      for (const [name, variable] of store) {
        const t = byName.get(`adam.${kind}.${name}`);
        if (!t) throw new Error(`checkpoint: missing optimiser state adam.${kind}.${name}`);
        tf.tidy(() => variable.assign(tf.tensor(t.data, t.shape)));
      }
    }
    this.step = step;
  }
}

/** Σ g², in float64. */
function sumOfSquares(g: Float32Array): number {
  let s = 0;
  for (let i = 0; i < g.length; i++) s += g[i] * g[i];
  return s;
}

/**
 * One Adam step of one parameter in place: p, m, v updated from g · scale. step1 = lr / (1 − β1^t),
 * bc2 = 1 − β2^t. (A function of its own, not a closure, so that V8 optimises the loop.)
 */
function adamStep(
  g: Float32Array,
  scale: number,
  p: Float32Array,
  m: Float32Array,
  v: Float32Array,
  beta1: number,
  beta2: number,
  step1: number,
  bc2: number,
  epsilon: number,
): void {
  for (let i = 0; i < g.length; i++) {
    const gi = g[i] * scale;
    m[i] = m[i] * beta1 + gi * (1 - beta1);
    v[i] = v[i] * beta2 + gi * gi * (1 - beta2);
    p[i] -= (m[i] * step1) / (Math.sqrt(v[i] / bc2) + epsilon);
  }
}
