// The Llama-family policy on the path the native backends (tfjs-node, tfjs-node-gpu) take, run here on
// tfjs's plain-JS cpu backend: tf.gather and its scatterND gradient instead of the wasm-only JS copies,
// batched tf.matMul instead of depthwise convolutions (policy/matmul.ts). The same checks as
// hf-llama.test.ts's on wasm, fewer of them: logits against the float64 reference, the cached decoder
// against the full pass, a gradient against finite differences.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { selectBackend, tf } from "../../policy/backend.ts";
import { loadHfPolicy } from "../../policy/hf/hf-checkpoint.ts";
import { referenceLlama } from "../support/llama-reference.ts";
import { TINY_QWEN2, type TinyModelOptions, writeTinyModel } from "../support/tiny-hf-model.ts";

const root = mkdtempSync(join(tmpdir(), "steppo-hf-cpu-"));
after(() => rmSync(root, { recursive: true, force: true }));
before(async () => {
  assert.equal(await selectBackend("cpu", () => {}), "cpu");
});

const OPTIONS: TinyModelOptions = { ...TINY_QWEN2, seed: 41 };
const SEQ = [1, 17, 42, 5, 60, 33];

function close(got: ArrayLike<number>, want: ArrayLike<number>, what: string, tol: number): void {
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= tol * (1 + Math.abs(want[i])), `${what}[${i}]: ${got[i]} vs ${want[i]}`);
}

it("gives the reference's logits, the full pass's logits when decoding, and finite-difference gradients on the cpu backend", async () => {
  const dir = join(root, "m");
  const tensors = await writeTinyModel(dir, OPTIONS);
  const { model } = await loadHfPolicy(dir);
  try {
    const ids = tf.tensor2d(SEQ, [1, SEQ.length], "int32");
    const ref = referenceLlama({ ...OPTIONS, rmsNormEps: 1e-6, ropeTheta: 10000, tie: true }, new Map(tensors.map((t) => [t.name, t])), SEQ);
    const { logits, values } = model.forward(ids);
    close(logits.dataSync(), ref.logits.flat(), "logits", 2e-4);
    close(values.dataSync(), ref.values, "values", 2e-4);

    const V = OPTIONS.vocabSize;
    const decoder = model.decoder([Int32Array.from(SEQ.slice(0, 3)), Int32Array.from(SEQ.slice(0, 5))]);
    decoder.push(Int32Array.from([SEQ[3], SEQ[5]]));
    const got = decoder.logits();
    decoder.dispose();
    // Row 0 now holds SEQ[0 … 3], row 1 all of SEQ: the full pass's positions 3 and 5 (left padding and all).
    const full = logits.dataSync();
    close(got.subarray(0, V), full.subarray(3 * V, 4 * V), "decoded row 0", 1e-4);
    close(got.subarray(V, 2 * V), full.subarray(5 * V, 6 * V), "decoded row 1", 1e-4);

    const embed = model.params.get("model.embed_tokens.weight")!;
    const loss = () =>
      tf.tidy(() => tf.sum(tf.mul(model.forward(ids).logits, tf.sin(tf.range(1, SEQ.length * V + 1).reshape([1, SEQ.length, V])))) as tf.Scalar);
    const { grads } = tf.variableGrads(loss, [embed]);
    const g = grads[embed.name].dataSync();
    const j = SEQ[2] * OPTIONS.hiddenSize + 3; // an embedding row the sequence reads
    const orig = embed.dataSync().slice();
    const at = (delta: number) => {
      const x = orig.slice();
      x[j] += delta;
      embed.assign(tf.tensor(x, embed.shape));
      return loss().dataSync()[0];
    };
    const numeric = (at(1e-2) - at(-1e-2)) / 2e-2;
    embed.assign(tf.tensor(orig, embed.shape));
    assert.ok(Math.abs(g[j] - numeric) <= 2e-2 * (1 + Math.abs(numeric)), `gradient ${g[j]} vs ${numeric}`);
    tf.dispose(Object.values(grads));
  } finally {
    model.dispose();
  }
});
