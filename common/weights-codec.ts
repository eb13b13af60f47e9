// Compact binary form of a policy's named weights (what the learner publishes to the weight store for
// every version), and the vocabulary hash learner and workers compare before exchanging token ids.
//
// Layout, version 1: "SPW" + version byte (1) | u32 LE header length | header JSON [{name, shape}] |
// zero padding to a multiple of 4 | every tensor's float32 data (little-endian), in header order.
import { createHash } from "node:crypto";

export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

const MAGIC = [0x53, 0x50, 0x57]; // "SPW"
const VERSION = 1;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

export function encodeWeights(tensors: NamedTensor[]): Uint8Array {
  if (!LITTLE_ENDIAN) throw new Error("encodeWeights: big-endian platforms are not supported");
  const header = new TextEncoder().encode(JSON.stringify(tensors.map((t) => ({ name: t.name, shape: t.shape }))));
  const dataStart = Math.ceil((8 + header.byteLength) / 4) * 4;
  const floats = tensors.reduce((n, t) => n + t.data.length, 0);
  const out = new Uint8Array(dataStart + floats * 4);
  out.set(MAGIC, 0);
  out[3] = VERSION;
  new DataView(out.buffer).setUint32(4, header.byteLength, true);
  out.set(header, 8);
  let off = dataStart;
  for (const t of tensors) {
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (size !== t.data.length) throw new Error(`encodeWeights: ${t.name} has ${t.data.length} values for shape [${t.shape}]`);
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), off);
    off += t.data.byteLength;
  }
  return out;
}

export function decodeWeights(bytes: Uint8Array): NamedTensor[] {
  if (bytes.byteLength < 8 || MAGIC.some((b, i) => bytes[i] !== b)) throw new Error("decodeWeights: not a steppo weights blob (bad magic)");
  if (bytes[3] !== VERSION) throw new Error(`decodeWeights: unknown weights format version ${bytes[3]} (this build reads ${VERSION})`);
  const headerLen = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4, true);
  if (8 + headerLen > bytes.byteLength) throw new Error("decodeWeights: truncated header");
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen))) as { name: string; shape: number[] }[];
  let off = Math.ceil((8 + headerLen) / 4) * 4;
  return header.map(({ name, shape }) => {
    const size = shape.reduce((a, b) => a * b, 1);
    if (off + size * 4 > bytes.byteLength) throw new Error(`decodeWeights: truncated data at ${name}`);
    // Copy: the blob's offset may not be 4-byte aligned, and the tensor must not alias the blob.
    const data = new Float32Array(size);
    new Uint8Array(data.buffer).set(bytes.subarray(off, off + size * 4));
    off += size * 4;
    return { name, shape, data };
  });
}

/** A short, stable fingerprint of the tokenizer's word list (ids are positions in it). */
export function vocabularyHash(words: readonly string[]): string {
  return createHash("sha256").update(words.join("\u0000")).digest("hex").slice(0, 16);
}
