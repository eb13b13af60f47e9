// Weights from the bus are not trusted: every malformed blob is refused with one error class naming the
// cause, and a rollout worker that is handed one keeps the weights it has.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { decodeWeights, encodeWeights, type NamedTensor, WeightsFormatError } from "../../core/weights-codec.ts";
import { selectBackend } from "../../policy/backend.ts";
import { PolicyModel } from "../../policy/model.ts";
import { loadPolicyWeights } from "../../policy/policy-weights.ts";

/** A blob with the given header JSON and `floats` data values (layout as encodeWeights writes it). */
function blobWith(headerJson: string, floats: number, extraBytes = 0): Uint8Array {
  const header = new TextEncoder().encode(headerJson);
  const dataStart = Math.ceil((8 + header.byteLength) / 4) * 4;
  const out = new Uint8Array(dataStart + floats * 4 + extraBytes);
  out.set([0x53, 0x50, 0x57, 1]);
  new DataView(out.buffer).setUint32(4, header.byteLength, true);
  out.set(header, 8);
  return out;
}

function refused(bytes: Uint8Array, cause: RegExp): void {
  assert.throws(
    () => decodeWeights(bytes),
    (err: unknown) => err instanceof WeightsFormatError && cause.test(err.message),
  );
}

/** Small deterministic PRNG (mulberry32) so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("decodeWeights refuses malformed blobs with WeightsFormatError", () => {
  it("accepts a well-formed blob built by hand (the test's layout matches the codec's)", () => {
    const back = decodeWeights(blobWith('[{"name":"a","shape":[2]}]', 2));
    assert.deepEqual(
      back.map((t) => [t.name, t.shape, t.data.length]),
      [["a", [2], 2]],
    );
  });

  it("a shape that is not a list of non-negative integers", () => {
    refused(blobWith('[{"name":"a","shape":["a"]}]', 0), /tensor a has shape \["a"\]/);
    refused(blobWith('[{"name":"a","shape":[-1]}]', 0), /tensor a has shape \[-1\]/);
    refused(blobWith('[{"name":"a","shape":[1.5]}]', 2), /tensor a has shape \[1.5\]/);
    refused(blobWith('[{"name":"a","shape":3}]', 3), /tensor a has shape 3/);
    refused(blobWith('[{"name":"a"}]', 0), /tensor a has shape undefined/);
    refused(blobWith('[{"name":"a","shape":[65536,65536,65536]}]', 0), /too large/);
  });

  it("a missing or repeated name, an entry that is no object, a header that is no list", () => {
    refused(blobWith('[{"shape":[1]}]', 1), /header entry 0 has no name/);
    refused(blobWith('[{"name":"","shape":[1]}]', 1), /header entry 0 has no name/);
    refused(blobWith('[{"name":"a","shape":[1]},{"name":"a","shape":[1]}]', 2), /tensor a appears twice/);
    refused(blobWith("[null]", 0), /header entry 0 is not an object/);
    refused(blobWith('{"name":"a"}', 0), /header is not a list/);
  });

  it("a header that is not JSON (or not UTF-8)", () => {
    refused(blobWith("[{name:", 0), /header is not JSON/);
    const bad = blobWith("[1]", 0);
    bad[9] = 0xff;
    refused(bad, /header is not JSON/);
  });

  it("data length not matching the shapes: trailing bytes, truncated data, a truncated header", () => {
    refused(blobWith('[{"name":"a","shape":[2]}]', 2, 4), /4 trailing bytes after the last tensor/);
    refused(blobWith('[{"name":"a","shape":[2,3]}]', 5), /truncated data at a/);
    const blob = encodeWeights([{ name: "a", shape: [4], data: new Float32Array(4) }]);
    refused(blob.subarray(0, 12), /truncated header/);
    refused(blob.subarray(0, blob.byteLength - 2), /truncated data at a/);
  });

  it("bad magic, unknown version, too short, not bytes", () => {
    refused(new TextEncoder().encode("{json}"), /bad magic/);
    refused(new Uint8Array(0), /bad magic/);
    const v9 = encodeWeights([]).slice();
    v9[3] = 9;
    refused(v9, /unknown weights format version 9/);
    refused("SPW" as unknown as Uint8Array, /not a Uint8Array/);
  });

  it("fuzz: random bytes, and random corruptions of a valid blob, only ever throw WeightsFormatError", () => {
    const r = rng(1234);
    const valid = encodeWeights([
      { name: "w", shape: [3, 2], data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
      { name: "b", shape: [2], data: Float32Array.from([7, 8]) },
    ]);
    const inputs: Uint8Array[] = [];
    for (let i = 0; i < 300; i++) inputs.push(Uint8Array.from({ length: Math.floor(r() * 64) }, () => Math.floor(r() * 256)));
    for (let i = 0; i < 300; i++) {
      // Keep the magic and version so the corruption reaches the header and data checks.
      const b = Uint8Array.from({ length: 8 + Math.floor(r() * 64) }, () => Math.floor(r() * 256));
      b.set([0x53, 0x50, 0x57, 1]);
      new DataView(b.buffer).setUint32(4, Math.floor(r() * (b.byteLength - 6)), true);
      inputs.push(b);
    }
    for (let i = 0; i < 300; i++) {
      const b = valid.slice(0, Math.max(4, valid.byteLength - Math.floor(r() * 8)));
      for (let k = 0; k < 3; k++) b[4 + Math.floor(r() * (b.byteLength - 4))] = Math.floor(r() * 256);
      inputs.push(b);
    }
    for (const input of inputs) {
      try {
        decodeWeights(input);
      } catch (err) {
        assert.ok(err instanceof WeightsFormatError, `${(err as Error).name}: ${(err as Error).message} for ${Buffer.from(input).toString("hex")}`);
      }
    }
  });
});

describe("a rollout worker handed malformed weights keeps its policy", () => {
  const config = { vocabSize: 11, dModel: 8, layers: 1, heads: 2, contextLength: 16 };
  before(async () => {
    await selectBackend("wasm", () => {});
  });

  async function snapshot(model: PolicyModel): Promise<NamedTensor[]> {
    return model.exportWeights();
  }

  it("loads a good blob, refuses bad ones (malformed, wrong shape, missing tensor, NaN) without touching the weights", async () => {
    const model = new PolicyModel(config, 1);
    const next = new PolicyModel(config, 2);
    const nextWeights = await snapshot(next);
    assert.equal(loadPolicyWeights(model, encodeWeights(nextWeights)), undefined);
    const loaded = await snapshot(model);
    assert.deepEqual(
      loaded.map((t) => Array.from(t.data)),
      nextWeights.map((t) => Array.from(t.data)),
    );

    const good = encodeWeights(nextWeights);
    const wrongShape = nextWeights.map((t, i) => (i === 0 ? { ...t, shape: [t.data.length] } : t));
    const withNaN = nextWeights.map((t, i) => (i === nextWeights.length - 1 ? { ...t, data: t.data.map((x, k) => (k === 0 ? Number.NaN : x)) } : t));
    const bad: [Uint8Array, RegExp][] = [
      [good.subarray(0, good.byteLength - 4), /weights blob: truncated data/],
      [Uint8Array.from([...good, 0, 0, 0, 0]), /weights blob: 4 trailing bytes/],
      [encodeWeights(wrongShape), /has shape/],
      [encodeWeights(nextWeights.slice(1)), /missing parameter/],
      [encodeWeights(withNaN), /non-finite value/],
    ];
    for (const [blob, cause] of bad) {
      const refusedBecause = loadPolicyWeights(model, blob);
      assert.match(refusedBecause ?? "(loaded)", cause);
      const after = await snapshot(model);
      assert.deepEqual(
        after.map((t) => Array.from(t.data)),
        loaded.map((t) => Array.from(t.data)),
        `weights unchanged after refusing (${refusedBecause})`,
      );
    }
    model.dispose();
    next.dispose();
  });
});
