// Adam with global-norm gradient clipping. Hand-written (rather than tf.train.adam) so that its
// moments and step count are plain named state the checkpoint saves and restores bit-for-bit.
import { tf } from "../policy/backend.ts";

export interface AdamConfig {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  maxGradNorm: number;
}

export class Adam {
  step = 0;
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();

  constructor(
    readonly params: Map<string, tf.Variable>,
    public config: AdamConfig,
  ) {
    // tidy frees the initial tensors (the variables keep their data); tidy never disposes variables.
    tf.tidy(() => {
      for (const [name, p] of params) {
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
    this.step += 1;
    const { learningRate: lr, beta1, beta2, epsilon, maxGradNorm } = this.config;
    const norm = tf.tidy(() => tf.sqrt(tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g))))).dataSync()[0]);
    const scale = Number.isFinite(norm) && norm > maxGradNorm ? maxGradNorm / norm : 1;
    if (!Number.isFinite(norm)) throw new Error(`optimizer: gradient norm is ${norm} at step ${this.step}; refusing to apply a non-finite update`);
    const bc1 = 1 - beta1 ** this.step;
    const bc2 = 1 - beta2 ** this.step;
    tf.tidy(() => {
      for (const [name, p] of this.params) {
        const g0 = grads[name];
        if (!g0) continue;
        const g = scale === 1 ? g0 : tf.mul(g0, scale);
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)));
        v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2)));
        const update = tf.div(tf.mul(m, lr / bc1), tf.add(tf.sqrt(tf.div(v, bc2)), epsilon));
        p.assign(tf.sub(p, update));
      }
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
