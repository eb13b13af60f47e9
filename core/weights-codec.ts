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

/**
 * Any malformed weights blob: a bad magic or version, a truncated or unparsable header, a tensor entry
 * without a name or with a shape that is not a list of non-negative integers, data shorter or longer than
 * the shapes say. Weights arrive over the bus, so decodeWeights throws only this, never a raw
 * TypeError/RangeError/SyntaxError, and the message names the cause.
 */
export class WeightsFormatError extends Error {
  constructor(message: string) {
    super(`weights blob: ${message}`);
    this.name = "WeightsFormatError";
  }
}

/** Largest tensor (in floats) a header may declare: keeps size arithmetic exact and allocations sane. */
const MAX_TENSOR_FLOATS = 2 ** 31;

export function decodeWeights(bytes: Uint8Array): NamedTensor[] {
  if (!(bytes instanceof Uint8Array)) throw new WeightsFormatError("input is not a Uint8Array");
  if (bytes.byteLength < 8 || MAGIC.some((b, i) => bytes[i] !== b)) throw new WeightsFormatError("not a steppo weights blob (bad magic)");
  if (bytes[3] !== VERSION) throw new WeightsFormatError(`unknown weights format version ${bytes[3]} (this build reads ${VERSION})`);
  const headerLen = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4, true);
  if (8 + headerLen > bytes.byteLength) throw new WeightsFormatError(`truncated header (${headerLen} bytes declared, ${bytes.byteLength - 8} present)`);
  const header = parseHeader(bytes.subarray(8, 8 + headerLen));
  let off = Math.ceil((8 + headerLen) / 4) * 4;
  const tensors = header.map(({ name, shape, size }) => {
    if (off + size * 4 > bytes.byteLength)
      throw new WeightsFormatError(`truncated data at ${name} (needs ${size * 4} bytes at offset ${off}, blob has ${bytes.byteLength})`);
    // Copy: the blob's offset may not be 4-byte aligned, and the tensor must not alias the blob.
    const data = new Float32Array(size);
    new Uint8Array(data.buffer).set(bytes.subarray(off, off + size * 4));
    off += size * 4;
    return { name, shape, data };
  });
  // Bytes left over (or missing padding) mean the header and the data disagree: not what the learner encoded.
  if (bytes.byteLength > off) throw new WeightsFormatError(`${bytes.byteLength - off} trailing bytes after the last tensor`);
  if (bytes.byteLength < off) throw new WeightsFormatError(`truncated: ${off} bytes expected, ${bytes.byteLength} present`);
  return tensors;
}

/** The header's [{name, shape}] entries, validated, each with its element count. */
function parseHeader(raw: Uint8Array): { name: string; shape: number[]; size: number }[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(raw));
  } catch (err) {
    throw new WeightsFormatError(`header is not JSON (${(err as Error).message})`);
  }
  if (!Array.isArray(parsed)) throw new WeightsFormatError("header is not a list of tensors");
  const names = new Set<string>();
  return parsed.map((entry: unknown, i) => {
    const e = entry as { name?: unknown; shape?: unknown } | null;
    if (typeof e !== "object" || e === null) throw new WeightsFormatError(`header entry ${i} is not an object`);
    if (typeof e.name !== "string" || e.name.length === 0) throw new WeightsFormatError(`header entry ${i} has no name`);
    if (names.has(e.name)) throw new WeightsFormatError(`tensor ${e.name} appears twice`);
    names.add(e.name);
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new WeightsFormatError(`tensor ${e.name} has shape ${JSON.stringify(shape)}, not a list of non-negative integers`);
    }
    const size = (shape as number[]).reduce((a, b) => a * b, 1);
    if (size > MAX_TENSOR_FLOATS) throw new WeightsFormatError(`tensor ${e.name} has shape [${shape}], too large (${size} values)`);
    return { name: e.name, shape: shape as number[], size };
  });
}

/** A short, stable fingerprint of the tokenizer's word list (ids are positions in it). */
export function vocabularyHash(words: readonly string[]): string {
  return createHash("sha256").update(words.join("\u0000")).digest("hex").slice(0, 16);
}
