// One .safetensors file (https://github.com/huggingface/safetensors): u64 LE header length N | N bytes of
// header JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {string: string}} | the
// tensors' bytes, little-endian, data_offsets relative to the end of the header, back to back.
//
// Tensors are read into float32 (what tfjs computes in) from F32, F16 or BF16, each remembering the dtype it
// was stored in so an export can write it back alike. A file is read tensor by tensor (a shard of a real
// model is gigabytes), and every way a file can be wrong is a SafetensorsError naming the file and tensor.
import { open, rename } from "node:fs/promises";
import type { NamedTensor } from "../../core/weights-codec.ts";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "./float-formats.ts";

export type FloatDtype = "F32" | "F16" | "BF16";

const BYTES: Record<FloatDtype, number> = { F32: 4, F16: 2, BF16: 2 };

/** A tensor as float32 values, with the dtype it is (or is to be) stored in. */
export interface StoredTensor extends NamedTensor {
  dtype: FloatDtype;
}

/** A header entry, validated: where the tensor's bytes lie in the data section. */
export interface HeaderEntry {
  name: string;
  dtype: FloatDtype;
  shape: number[];
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  entries: HeaderEntry[];
  metadata: Record<string, string>;
  /** Where the data section starts in the file: 8 + the header's length. */
  dataStart: number;
}

/** A malformed, truncated or unsupported safetensors file; the message starts with the file's path. */
export class SafetensorsError extends Error {
  constructor(path: string, message: string) {
    super(`${path}: ${message}`);
    this.name = "SafetensorsError";
  }
}

/** The reference implementation refuses headers above 100 MB; so do we, before allocating one. */
const MAX_HEADER_BYTES = 100_000_000;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Reads and validates the header of the file at `path` (its size is checked against every entry). */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  const file = await open(path, "r");
  try {
    const { size } = await file.stat();
    return await readHeader(file, size, path);
  } finally {
    await file.close();
  }
}

/** Every tensor of the file at `path`, as float32, in header order; the header's metadata. */
export async function readSafetensors(path: string): Promise<{ tensors: StoredTensor[]; metadata: Record<string, string> }> {
  if (!LITTLE_ENDIAN) throw new SafetensorsError(path, "big-endian platforms are not supported");
  const file = await open(path, "r");
  try {
    const { size } = await file.stat();
    const header = await readHeader(file, size, path);
    const tensors: StoredTensor[] = [];
    for (const e of header.entries) {
      const raw = new Uint8Array(e.end - e.begin);
      const { bytesRead } = await file.read(raw, 0, raw.byteLength, header.dataStart + e.begin);
      if (bytesRead !== raw.byteLength)
        throw new SafetensorsError(path, `tensor ${e.name}: read ${bytesRead} of ${raw.byteLength} bytes (file changed while reading?)`);
      tensors.push({ name: e.name, shape: e.shape, dtype: e.dtype, data: toFloat32(raw, e.dtype) });
    }
    return { tensors, metadata: header.metadata };
  } finally {
    await file.close();
  }
}

async function readHeader(file: Awaited<ReturnType<typeof open>>, fileSize: number, path: string): Promise<SafetensorsHeader> {
  if (fileSize < 8) throw new SafetensorsError(path, `${fileSize} bytes, too short for a safetensors header length`);
  const lengthBytes = new Uint8Array(8);
  await file.read(lengthBytes, 0, 8, 0);
  const declared = new DataView(lengthBytes.buffer).getBigUint64(0, true);
  if (declared > BigInt(MAX_HEADER_BYTES))
    throw new SafetensorsError(path, `header length ${declared} exceeds ${MAX_HEADER_BYTES} bytes (not a safetensors file?)`);
  const headerLength = Number(declared);
  if (8 + headerLength > fileSize) throw new SafetensorsError(path, `truncated header: ${headerLength} bytes declared, ${fileSize - 8} present`);
  const raw = new Uint8Array(headerLength);
  await file.read(raw, 0, headerLength, 8);
  const dataStart = 8 + headerLength;
  const { entries, metadata } = parseHeader(raw, path);
  checkLayout(entries, fileSize - dataStart, path);
  return { entries, metadata, dataStart };
}

/** The header JSON's entries, each checked on its own (dtype, shape, offsets agreeing with the shape). */
function parseHeader(raw: Uint8Array, path: string): { entries: HeaderEntry[]; metadata: Record<string, string> } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(raw));
  } catch (err) {
    throw new SafetensorsError(path, `header is not JSON (${(err as Error).message})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new SafetensorsError(path, "header is not a JSON object");
  const metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof value !== "object" || value === null) throw new SafetensorsError(path, "__metadata__ is not an object");
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== "string") throw new SafetensorsError(path, `__metadata__.${k} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    entries.push(parseEntry(name, value, path));
  }
  return { entries, metadata };
}

function parseEntry(name: string, value: unknown, path: string): HeaderEntry {
  const e = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
  const where = `tensor ${name}`;
  if (typeof e !== "object" || e === null) throw new SafetensorsError(path, `${where}: header entry is not an object`);
  if (typeof e.dtype !== "string" || !(e.dtype in BYTES)) {
    throw new SafetensorsError(path, `${where}: dtype ${JSON.stringify(e.dtype)} is not one steppo reads (F32, F16, BF16)`);
  }
  const dtype = e.dtype as FloatDtype;
  if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new SafetensorsError(path, `${where}: shape ${JSON.stringify(e.shape)} is not a list of non-negative integers`);
  }
  const shape = e.shape as number[];
  const offsets = e.data_offsets;
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]) {
    throw new SafetensorsError(path, `${where}: data_offsets ${JSON.stringify(offsets)} is not [begin, end] with 0 ≤ begin ≤ end`);
  }
  const [begin, end] = offsets as [number, number];
  const expected = shape.reduce((a, b) => a * b, 1) * BYTES[dtype];
  if (end - begin !== expected) throw new SafetensorsError(path, `${where}: ${end - begin} bytes for ${dtype} [${shape}], which needs ${expected}`);
  return { name, dtype, shape, begin, end };
}

/** The entries must tile the data section exactly, back to back from 0: a gap or an overlap is corruption. */
function checkLayout(entries: HeaderEntry[], dataBytes: number, path: string): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const e of sorted) {
    if (e.end > dataBytes) throw new SafetensorsError(path, `truncated: tensor ${e.name} needs data bytes up to ${e.end}, the file holds ${dataBytes}`);
    if (e.begin !== at) throw new SafetensorsError(path, `tensor ${e.name} starts at data byte ${e.begin}, expected ${at} (a gap or an overlap)`);
    at = e.end;
  }
  if (at !== dataBytes) throw new SafetensorsError(path, `${dataBytes - at} bytes after the last tensor`);
}

function toFloat32(raw: Uint8Array, dtype: FloatDtype): Float32Array {
  if (dtype === "F32") return new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const halves = new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2);
  const convert = dtype === "BF16" ? bf16ToF32 : f16ToF32;
  const out = new Float32Array(halves.length);
  for (let i = 0; i < halves.length; i++) out[i] = convert(halves[i]);
  return out;
}

/** A tensor's values in `dtype`, little-endian. */
export function tensorBytes(t: NamedTensor, dtype: FloatDtype): Uint8Array {
  if (dtype === "F32") return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const convert = dtype === "BF16" ? f32ToBf16 : f32ToF16;
  const halves = Uint16Array.from(t.data, convert);
  return new Uint8Array(halves.buffer);
}

/** The header bytes for `tensors` in order, padded with spaces to a multiple of 8 (as the reference writer does). */
function encodeHeader(tensors: StoredTensor[], metadata: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let at = 0;
  for (const t of tensors) {
    if (t.name === "__metadata__" || t.name in header) throw new Error(`safetensors: tensor name ${t.name} is used twice or reserved`);
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (size !== t.data.length) throw new Error(`safetensors: tensor ${t.name} has ${t.data.length} values for shape [${t.shape}]`);
    const bytes = t.data.length * BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + bytes] };
    at += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = new Uint8Array(Math.ceil(json.byteLength / 8) * 8).fill(0x20);
  padded.set(json);
  return padded;
}

/**
 * Writes `tensors` (in order, each in its dtype) to `path`, through a temporary file renamed into place, so
 * that a crash never leaves a half-written file under the final name. Metadata `format: "pt"` is what
 * transformers' loader expects of a PyTorch checkpoint.
 */
export async function writeSafetensors(path: string, tensors: StoredTensor[], metadata: Record<string, string> = { format: "pt" }): Promise<void> {
  if (!LITTLE_ENDIAN) throw new Error("safetensors: big-endian platforms are not supported");
  const header = encodeHeader(tensors, metadata);
  const length = new Uint8Array(8);
  new DataView(length.buffer).setBigUint64(0, BigInt(header.byteLength), true);
  const tmp = `${path}.tmp-${process.pid}`;
  const file = await open(tmp, "w");
  try {
    await file.write(length);
    await file.write(header);
    for (const t of tensors) await file.write(tensorBytes(t, t.dtype));
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(tmp, path);
}

/** Bytes a tensor takes in its dtype (for sharding). */
export function storedBytes(t: StoredTensor): number {
  return t.data.length * BYTES[t.dtype];
}
