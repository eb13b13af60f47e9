// The safetensors reader and writer (policy/hf/): the byte layout of the format as its specification
// writes it, the three float dtypes, sharded checkpoints with their index, and an error naming the file
// and tensor for every corrupt or truncated file.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "../../policy/hf/float-formats.ts";
import { readSafetensors, readSafetensorsHeader, SafetensorsError, type StoredTensor, writeSafetensors } from "../../policy/hf/safetensors.ts";
import { INDEX_FILE, readTensorsDir, SINGLE_FILE, writeTensorsDir } from "../../policy/hf/safetensors-dir.ts";

const root = mkdtempSync(join(tmpdir(), "steppo-safetensors-"));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => mkdtempSync(join(root, `d${++dirs}-`));

/** A file in the format's own terms: u64 LE header length, the header JSON, the data bytes. */
function rawFile(header: unknown, data: Uint8Array): Buffer {
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, Buffer.from(data)]);
}

function refused(run: () => Promise<unknown>, ...parts: (string | RegExp)[]) {
  return assert.rejects(run, (err: unknown) => {
    assert.ok(err instanceof Error, String(err));
    for (const p of parts) assert.match(err.message, typeof p === "string" ? new RegExp(p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")) : p);
    return true;
  });
}

function tensor(name: string, shape: number[], dtype: StoredTensor["dtype"], seed: number): StoredTensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const data = Float32Array.from({ length: size }, (_, i) => Math.sin(seed * 7.3 + i * 1.7) * (1 + i));
  // Stored values are what the dtype can hold: round them as the writer will, so a round trip is exact.
  const held = dtype === "BF16" ? data.map((x) => bf16ToF32(f32ToBf16(x))) : dtype === "F16" ? data.map((x) => f16ToF32(f32ToF16(x))) : data;
  return { name, shape, dtype, data: held };
}

describe("16-bit float formats", () => {
  it("convert known values as PyTorch does", () => {
    assert.equal(f32ToF16(1), 0x3c00);
    assert.equal(f32ToF16(-2), 0xc000);
    assert.equal(f32ToF16(65504), 0x7bff); // largest finite half
    assert.equal(f32ToF16(65520), 0x7c00); // rounds past it: +Infinity
    assert.equal(f32ToF16(2 ** -24), 0x0001); // smallest subnormal
    assert.equal(f32ToF16(1 + 2 ** -11), 0x3c00); // a tie rounds to the even mantissa
    assert.equal(f32ToF16(1 + 3 * 2 ** -11), 0x3c02);
    assert.equal(f16ToF32(0x3555), 0.333251953125);
    assert.equal(f32ToBf16(1), 0x3f80);
    assert.equal(f32ToBf16(Math.fround(1 + 2 ** -8)), 0x3f80); // tie → even
    assert.equal(f32ToBf16(Math.fround(1 + 3 * 2 ** -8)), 0x3f82);
    assert.equal(bf16ToF32(0xc0a0), -5);
    assert.ok(Number.isNaN(bf16ToF32(f32ToBf16(Number.NaN))));
    assert.ok(Number.isNaN(f16ToF32(f32ToF16(Number.NaN))));
  });

  it("every non-NaN 16-bit pattern survives a round trip through float32", () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const h = f16ToF32(bits);
      if (!Number.isNaN(h)) assert.equal(f32ToF16(h), bits, `f16 0x${bits.toString(16)}`);
      const b = bf16ToF32(bits);
      if (!Number.isNaN(b)) assert.equal(f32ToBf16(b), bits, `bf16 0x${bits.toString(16)}`);
    }
  });
});

describe("a safetensors file", () => {
  it("is read from the layout the specification gives (hand-built bytes)", async () => {
    const data = new Uint8Array(8 + 4 + 4);
    new DataView(data.buffer).setFloat32(0, 1.5, true);
    new DataView(data.buffer).setFloat32(4, -2, true);
    new DataView(data.buffer).setUint16(8, 0x3c00, true); // F16 1
    new DataView(data.buffer).setUint16(10, 0xc000, true); // F16 −2
    new DataView(data.buffer).setUint16(12, 0x3f80, true); // BF16 1
    new DataView(data.buffer).setUint16(14, 0x4040, true); // BF16 3
    const path = join(freshDir(), "hand.safetensors");
    const header = {
      // The data section's order need not follow the header's.
      b: { dtype: "F16", shape: [2], data_offsets: [8, 12] },
      a: { dtype: "F32", shape: [1, 2], data_offsets: [0, 8] },
      c: { dtype: "BF16", shape: [2, 1], data_offsets: [12, 16] },
      __metadata__: { format: "pt" },
    };
    writeFileSync(path, rawFile(header, data));
    const { tensors, metadata } = await readSafetensors(path);
    assert.deepEqual(metadata, { format: "pt" });
    assert.deepEqual(
      tensors.map((t) => [t.name, t.dtype, t.shape, [...t.data]]),
      [
        ["b", "F16", [2], [1, -2]],
        ["a", "F32", [1, 2], [1.5, -2]],
        ["c", "BF16", [2, 1], [1, 3]],
      ],
    );
  });

  it("is written in that layout and read back equal, dtype by dtype", async () => {
    const path = join(freshDir(), "round.safetensors");
    const tensors = [tensor("w.f32", [3, 4], "F32", 1), tensor("w.f16", [5], "F16", 2), tensor("w.bf16", [2, 3], "BF16", 3), tensor("empty", [0, 4], "F32", 4)];
    await writeSafetensors(path, tensors);
    const bytes = readFileSync(path);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    assert.equal(headerLength % 8, 0, "the header is padded to a multiple of 8");
    const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString("utf8"));
    assert.deepEqual(header["w.f16"], { dtype: "F16", shape: [5], data_offsets: [48, 58] });
    assert.deepEqual(header.__metadata__, { format: "pt" });
    assert.equal(bytes.length, 8 + headerLength + 48 + 10 + 12);
    const back = (await readSafetensors(path)).tensors;
    assert.deepEqual(
      back.map((t) => [t.name, t.dtype, t.shape, [...t.data]]),
      tensors.map((t) => [t.name, t.dtype, t.shape, [...t.data]]),
    );
    assert.deepEqual(readdirSync(join(path, "..")), ["round.safetensors"], "no temporary file is left behind");
  });

  it("that is truncated is refused naming the file and the tensor cut off", async () => {
    const path = join(freshDir(), "cut.safetensors");
    await writeSafetensors(path, [tensor("first", [4], "F32", 1), tensor("second", [4], "F32", 2)]);
    truncateSync(path, readFileSync(path).length - 3);
    await refused(() => readSafetensors(path), path, "truncated", "tensor second");
    truncateSync(path, 20);
    await refused(() => readSafetensors(path), path, "truncated header");
    truncateSync(path, 5);
    await refused(() => readSafetensors(path), path, "too short");
  });

  it("with a corrupt header is refused naming the file (and the tensor, where there is one)", async () => {
    const dir = freshDir();
    const cases: [string, Buffer, (string | RegExp)[]][] = [
      ["garbage", Buffer.concat([Buffer.from([12, 0, 0, 0, 0, 0, 0, 0]), Buffer.from("{not json!!!")]), ["header is not JSON"]],
      ["huge", Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 2]), ["header length"]],
      ["list", rawFile([1, 2], new Uint8Array(0)), ["not a JSON object"]],
      ["dtype", rawFile({ ids: { dtype: "I64", shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)), ["tensor ids", '"I64"']],
      ["size", rawFile({ w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)), ["tensor w", "needs 12"]],
      ["shape", rawFile({ w: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)), ["tensor w", "shape"]],
      [
        "overlap",
        rawFile({ a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [2], data_offsets: [4, 12] } }, new Uint8Array(12)),
        ["tensor b", "gap or an overlap"],
      ],
      ["trailing", rawFile({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, new Uint8Array(9)), ["5 bytes after the last tensor"]],
    ];
    for (const [name, bytes, parts] of cases) {
      const path = join(dir, `${name}.safetensors`);
      writeFileSync(path, bytes);
      await refused(() => readSafetensorsHeader(path), path, ...parts);
      await assert.rejects(() => readSafetensors(path), SafetensorsError);
    }
  });
});

describe("a checkpoint directory", () => {
  const tensors = [tensor("a", [16, 8], "BF16", 1), tensor("b", [16], "F32", 2), tensor("c", [4, 16], "F16", 3), tensor("d", [100], "F32", 4)];

  it("fits in one model.safetensors, read back by name", async () => {
    const dir = freshDir();
    await writeTensorsDir(dir, tensors);
    assert.deepEqual(readdirSync(dir), [SINGLE_FILE]);
    const back = await readTensorsDir(dir);
    assert.deepEqual([...back.keys()], ["a", "b", "c", "d"]);
    for (const t of tensors) assert.deepEqual(back.get(t.name), t);
  });

  it("is sharded past the shard size, with an index that maps every tensor to its shard", async () => {
    const dir = freshDir();
    await writeTensorsDir(dir, tensors, 300); // a: 256 B, b: 64, c: 128, d: 400 bytes
    assert.deepEqual(readdirSync(dir).sort(), [
      "model-00001-of-00003.safetensors",
      "model-00002-of-00003.safetensors",
      "model-00003-of-00003.safetensors",
      INDEX_FILE,
    ]);
    const index = JSON.parse(readFileSync(join(dir, INDEX_FILE), "utf8"));
    assert.deepEqual(index, {
      metadata: { total_size: 848 },
      weight_map: {
        a: "model-00001-of-00003.safetensors",
        b: "model-00002-of-00003.safetensors",
        c: "model-00002-of-00003.safetensors",
        d: "model-00003-of-00003.safetensors",
      },
    });
    const back = await readTensorsDir(dir);
    for (const t of tensors) assert.deepEqual(back.get(t.name), t);
    // Written again in fewer shards, the third goes; unsharded, the index and every shard go.
    await writeTensorsDir(dir, tensors, 500);
    assert.deepEqual(readdirSync(dir).sort(), ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", INDEX_FILE]);
    await writeTensorsDir(dir, tensors);
    assert.deepEqual(readdirSync(dir), [SINGLE_FILE]);
  });

  it("whose index and shards disagree is refused naming the shard and tensor", async () => {
    const dir = freshDir();
    await writeTensorsDir(dir, tensors, 300);
    const indexPath = join(dir, INDEX_FILE);
    const index = JSON.parse(readFileSync(indexPath, "utf8"));
    index.weight_map.b = "model-00001-of-00003.safetensors";
    writeFileSync(indexPath, JSON.stringify(index));
    await refused(() => readTensorsDir(dir), "model-00002-of-00003.safetensors", "tensor b", "puts it in model-00001-of-00003.safetensors");
    index.weight_map.b = "model-00002-of-00003.safetensors";
    index.weight_map.e = "model-00003-of-00003.safetensors";
    writeFileSync(indexPath, JSON.stringify(index));
    await refused(() => readTensorsDir(dir), "model-00003-of-00003.safetensors", "tensor e", "is not in the file");
    delete index.weight_map.e;
    index.weight_map.d = "../elsewhere.safetensors";
    writeFileSync(indexPath, JSON.stringify(index));
    await refused(() => readTensorsDir(dir), "weight_map.d", "same directory");
    index.weight_map.d = "model-00009-of-00009.safetensors";
    writeFileSync(indexPath, JSON.stringify(index));
    await refused(() => readTensorsDir(dir), "shard model-00009-of-00009.safetensors is missing");
    rmSync(indexPath);
    await refused(() => readTensorsDir(dir), dir, "neither");
  });
});
