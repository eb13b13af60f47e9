// An independent reference forward pass of a Llama-family causal LM, in plain JS numbers (float64), one
// sequence at a time, written from the transformers modeling code's definitions rather than from
// policy/hf/: loops over nn.Linear's [out, in] weights, RMSNorm, rotate_half rotary embeddings, each query
// head reading kv head ⌊h / group⌋, causal softmax, SwiGLU, tied or untied head, TRL's value head.
// Slow and obvious on purpose: the tfjs model is checked against it.

export interface ReferenceConfig {
  hiddenSize: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediateSize: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  tie: boolean;
}

type Tensors = Map<string, { data: Float32Array; shape: number[] }>;

/** y = W·x (+ b) for W [out, in] row-major. */
function linear(w: Float32Array, out: number, x: number[], b?: Float32Array): number[] {
  const inp = x.length;
  const y: number[] = [];
  for (let o = 0; o < out; o++) {
    let s = b ? b[o] : 0;
    for (let i = 0; i < inp; i++) s += w[o * inp + i] * x[i];
    y.push(s);
  }
  return y;
}

function rmsNorm(x: number[], w: Float32Array, eps: number): number[] {
  const ms = x.reduce((s, v) => s + v * v, 0) / x.length;
  const r = 1 / Math.sqrt(ms + eps);
  return x.map((v, i) => v * r * w[i]);
}

/** rotate_half rotary embedding of one head vector at position t: pairs (i, i + dh/2). */
function rope(x: number[], t: number, theta: number): number[] {
  const dh = x.length;
  const half = dh / 2;
  const out = new Array<number>(dh);
  for (let i = 0; i < half; i++) {
    const angle = t / theta ** ((2 * i) / dh);
    const c = Math.cos(angle);
    const s = Math.sin(angle);
    out[i] = x[i] * c - x[i + half] * s;
    out[i + half] = x[i + half] * c + x[i] * s;
  }
  return out;
}

const silu = (v: number) => v / (1 + Math.exp(-v));

/** Logits [T][V] and values [T] of the sequence `ids`. */
export function referenceLlama(c: ReferenceConfig, tensors: Tensors, ids: number[]): { logits: number[][]; values: number[] } {
  const get = (name: string) => {
    const t = tensors.get(name);
    if (!t) throw new Error(`reference: no tensor ${name}`);
    return t.data;
  };
  const has = (name: string) => tensors.has(name);
  const d = c.hiddenSize;
  const dh = d / c.heads;
  const group = c.heads / c.kvHeads;
  const emb = get("model.embed_tokens.weight");
  let xs = ids.map((id) => Array.from(emb.subarray(id * d, id * d + d)));
  for (let l = 0; l < c.layers; l++) {
    const p = `model.layers.${l}`;
    const bias = (name: string) => (has(name) ? get(name) : undefined);
    const normed = xs.map((x) => rmsNorm(x, get(`${p}.input_layernorm.weight`), c.rmsNormEps));
    const q = normed.map((x) => linear(get(`${p}.self_attn.q_proj.weight`), c.heads * dh, x, bias(`${p}.self_attn.q_proj.bias`)));
    const k = normed.map((x) => linear(get(`${p}.self_attn.k_proj.weight`), c.kvHeads * dh, x, bias(`${p}.self_attn.k_proj.bias`)));
    const v = normed.map((x) => linear(get(`${p}.self_attn.v_proj.weight`), c.kvHeads * dh, x, bias(`${p}.self_attn.v_proj.bias`)));
    const head = (vec: number[], h: number) => vec.slice(h * dh, (h + 1) * dh);
    const attended = xs.map((_, t) => {
      const out: number[] = [];
      for (let h = 0; h < c.heads; h++) {
        const kvh = Math.floor(h / group);
        const qh = rope(head(q[t], h), t, c.ropeTheta);
        const scores: number[] = [];
        for (let j = 0; j <= t; j++) {
          const kj = rope(head(k[j], kvh), j, c.ropeTheta);
          scores.push(qh.reduce((s, qi, i) => s + qi * kj[i], 0) / Math.sqrt(dh));
        }
        const max = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - max));
        const z = e.reduce((a, b) => a + b, 0);
        for (let i = 0; i < dh; i++) out.push(e.reduce((s, ej, j) => s + (ej / z) * head(v[j], kvh)[i], 0));
      }
      return out;
    });
    xs = xs.map((x, t) => {
      const o = linear(get(`${p}.self_attn.o_proj.weight`), d, attended[t], bias(`${p}.self_attn.o_proj.bias`));
      const x1 = x.map((xi, i) => xi + o[i]);
      const n2 = rmsNorm(x1, get(`${p}.post_attention_layernorm.weight`), c.rmsNormEps);
      const gate = linear(get(`${p}.mlp.gate_proj.weight`), c.intermediateSize, n2);
      const up = linear(get(`${p}.mlp.up_proj.weight`), c.intermediateSize, n2);
      const mlp = linear(
        get(`${p}.mlp.down_proj.weight`),
        d,
        gate.map((g, i) => silu(g) * up[i]),
      );
      return x1.map((xi, i) => xi + mlp[i]);
    });
  }
  const hs = xs.map((x) => rmsNorm(x, get("model.norm.weight"), c.rmsNormEps));
  const head = get(c.tie ? "model.embed_tokens.weight" : "lm_head.weight");
  const logits = hs.map((h) => linear(head, c.vocabSize, h));
  const values = hs.map((h) => (has("v_head.summary.weight") ? linear(get("v_head.summary.weight"), 1, h, get("v_head.summary.bias"))[0] : 0));
  return { logits, values };
}
