// The checkpoint file format and directory, independent of tfjs.
//
// Layout of `ckpt-<update, 8 digits>.steppo` (all integers little-endian):
//   0   "STEPPOCK"                 magic, 8 bytes
//   8   u32 format version         (CHECKPOINT_FORMAT_VERSION)
//   12  u32 header length H
//   16  UTF-8 JSON header          { meta, dataBytes, tensors: [{ name, shape, byteOffset, byteLength }] },
//                                  space-padded so the data starts 8-byte aligned
//   16+H raw float32 data           tensors back to back; byteOffset is relative to the data start
//   end−32 SHA-256 of every byte before it
// Files are written to `*.tmp`, fsynced, renamed and the directory fsynced, so a crash leaves either the
// old set of checkpoints or the new one; a torn or bit-flipped file fails its checksum and the loader
// falls back to the previous checkpoint.
import { createHash } from "node:crypto";
import { endianness } from "node:os";
import type { Dirent } from "node:fs";
import { type FileHandle, lstat, mkdir, open, readdir, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";

export const CHECKPOINT_MAGIC = "STEPPOCK";
export const CHECKPOINT_FORMAT_VERSION = 1;
const PREFIX_BYTES = 16; // magic + version + header length
const DIGEST_BYTES = 32; // SHA-256
const FILE_PATTERN = /^ckpt-(\d{8,})\.steppo$/;

export interface CheckpointTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export interface CheckpointPayload {
  meta: Record<string, unknown>;
  tensors: CheckpointTensor[];
}

export interface LoadedCheckpoint extends CheckpointPayload {
  path: string;
  update: number;
}

interface TensorIndexEntry {
  name: string;
  shape: number[];
  byteOffset: number;
  byteLength: number;
}

interface Header {
  meta: Record<string, unknown>;
  dataBytes: number;
  tensors: TensorIndexEntry[];
}

export type CorruptCause = "bad-magic" | "unknown-version" | "truncated" | "checksum" | "bad-header";

/** A checkpoint file that cannot be trusted; names the file and why. */
export class CorruptCheckpointError extends Error {
  constructor(
    readonly path: string,
    readonly reason: CorruptCause,
    detail: string,
  ) {
    super(`corrupt checkpoint ${path}: ${detail}`);
    this.name = "CorruptCheckpointError";
  }
}

export function checkpointFileName(update: number): string {
  return `ckpt-${String(update).padStart(8, "0")}.steppo`;
}

/** Writes `dir/ckpt-<update>.steppo` atomically, then keeps only the newest `keep` checkpoints. */
export async function writeCheckpoint(dir: string, update: number, payload: CheckpointPayload, keep: number): Promise<string> {
  if (!Number.isInteger(update) || update < 0) throw new Error(`writeCheckpoint: update must be a non-negative integer (got ${update})`);
  if (!Number.isInteger(keep) || keep < 1) throw new Error(`writeCheckpoint: keep must be a positive integer (got ${keep})`);
  await mkdir(dir, { recursive: true });
  const path = join(dir, checkpointFileName(update));
  const tmp = `${path}.tmp`;

  const { prefix, header } = encodeHeader(payload); // validates shapes before anything touches the disk
  const hash = createHash("sha256");
  const fh = await open(tmp, "w");
  try {
    // Hash and write the same bytes, tensor by tensor, so a large model is never copied into one buffer.
    const put = async (bytes: Uint8Array) => {
      hash.update(bytes);
      await writeAll(fh, bytes);
    };
    await put(prefix);
    await put(header);
    for (const t of payload.tensors) await put(littleEndianBytes(t.data));
    await writeAll(fh, hash.digest());
    await fh.sync();
    await fh.close();
    await moveAsideIfNotFile(path);
    await rename(tmp, path);
  } catch (err) {
    await fh.close().catch(() => {}); // already closed on the rename path
    await rm(tmp, { force: true });
    throw err;
  }
  await syncDirectory(dir);
  await prune(dir, keep, path);
  return path;
}

/** FileHandle.write may write less than asked (a single write(2) stops near 2 GiB); loop until done. */
async function writeAll(fh: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done);
    done += bytesWritten;
  }
}

/** Reads and verifies one checkpoint file; throws CorruptCheckpointError if it cannot be trusted. */
export async function readCheckpoint(path: string): Promise<CheckpointPayload> {
  return decodeCheckpoint(path, await readFile(path));
}

/** Checkpoints in `dir`, oldest first (by update number); `.tmp` leftovers and other files are ignored. */
export async function listCheckpoints(dir: string): Promise<{ path: string; update: number }[]> {
  return (await scanCheckpoints(dir)).files;
}

/**
 * Checkpoint names in `dir`, split into files and other entries (a directory of that name): only files
 * count as checkpoints, so that pruning never tries to delete a directory and `keep` counts real ones.
 */
async function scanCheckpoints(dir: string): Promise<{ files: { path: string; update: number }[]; others: string[] }> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { files: [], others: [] };
    throw err;
  }
  const files: { path: string; update: number }[] = [];
  const others: string[] = [];
  for (const e of entries) {
    const m = FILE_PATTERN.exec(e.name);
    if (!m) continue;
    if (e.isFile() || e.isSymbolicLink()) files.push({ path: join(dir, e.name), update: Number(m[1]) });
    else others.push(join(dir, e.name));
  }
  return { files: files.sort((a, b) => a.update - b.update), others };
}

/**
 * A directory (or other non-file) where a checkpoint is about to be written cannot be replaced by rename(2):
 * it is renamed aside (`<name>.unusable-<ms>`, kept for inspection), so that a learner that fell back past
 * it can save that update again.
 */
async function moveAsideIfNotFile(path: string): Promise<void> {
  try {
    if ((await lstat(path)).isFile()) return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  await rename(path, `${path}.unusable-${Date.now()}`);
}

/**
 * The newest checkpoint that reads back intact, or undefined when there is none. Each unusable newer
 * file is reported through onCorrupt (default: a console warning naming the path) and skipped.
 */
export async function loadLatestCheckpoint(
  dir: string,
  onCorrupt: (path: string, err: Error) => void = (path, err) => console.warn(`steppo: skipping checkpoint ${path}: ${err.message}`),
): Promise<LoadedCheckpoint | undefined> {
  const { files: all, others } = await scanCheckpoints(dir);
  for (const path of others) onCorrupt(path, new Error("not a regular file; ignored"));
  for (let i = all.length - 1; i >= 0; i--) {
    const { path, update } = all[i];
    try {
      return { path, update, ...(await readCheckpoint(path)) };
    } catch (err) {
      onCorrupt(path, err instanceof Error ? err : new Error(String(err)));
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------
// Encoding

function encodeHeader(payload: CheckpointPayload): { prefix: Uint8Array; header: Uint8Array } {
  const tensors: TensorIndexEntry[] = [];
  let byteOffset = 0;
  for (const t of payload.tensors) {
    const elements = t.shape.reduce((a, b) => a * b, 1);
    if (!t.shape.every((d) => Number.isInteger(d) && d >= 0) || elements !== t.data.length) {
      throw new Error(`writeCheckpoint: tensor "${t.name}" has shape [${t.shape.join(", ")}] but ${t.data.length} elements`);
    }
    tensors.push({ name: t.name, shape: [...t.shape], byteOffset, byteLength: t.data.byteLength });
    byteOffset += t.data.byteLength;
  }
  const header: Header = { meta: payload.meta, dataBytes: byteOffset, tensors };
  const json = Buffer.from(JSON.stringify(header), "utf8");
  // Pad with JSON whitespace so the float data starts 8-byte aligned in the file.
  const padded = Buffer.alloc(json.length + ((8 - ((PREFIX_BYTES + json.length) % 8)) % 8), 0x20);
  json.copy(padded);
  const prefix = Buffer.alloc(PREFIX_BYTES);
  prefix.write(CHECKPOINT_MAGIC, 0, "latin1");
  prefix.writeUInt32LE(CHECKPOINT_FORMAT_VERSION, 8);
  prefix.writeUInt32LE(padded.length, 12);
  return { prefix, header: padded };
}

const HOST_LITTLE_ENDIAN = endianness() === "LE";

/**
 * The tensor's bytes in little-endian order. Raw bytes, never through JS numbers: reading a float32
 * NaN into a double and back may canonicalise its payload, and checkpoints must round-trip exactly.
 */
function littleEndianBytes(data: Float32Array): Uint8Array {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return HOST_LITTLE_ENDIAN ? bytes : swap32(bytes);
}

/** Reverses the byte order of each 4-byte word (a copy). */
function swap32(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i += 4) {
    out[i] = bytes[i + 3];
    out[i + 1] = bytes[i + 2];
    out[i + 2] = bytes[i + 1];
    out[i + 3] = bytes[i];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Decoding

function decodeCheckpoint(path: string, buf: Buffer): CheckpointPayload {
  const corrupt = (cause: CorruptCause, detail: string) => new CorruptCheckpointError(path, cause, detail);
  if (buf.length < CHECKPOINT_MAGIC.length || buf.toString("latin1", 0, CHECKPOINT_MAGIC.length) !== CHECKPOINT_MAGIC) {
    // A file shorter than the magic that matches so far is a torn write, not a foreign file.
    const head = buf.toString("latin1", 0, Math.min(buf.length, CHECKPOINT_MAGIC.length));
    if (buf.length < CHECKPOINT_MAGIC.length && CHECKPOINT_MAGIC.startsWith(head)) throw corrupt("truncated", `truncated: ${buf.length} bytes`);
    throw corrupt("bad-magic", `bad magic bytes (not a ${CHECKPOINT_MAGIC} file)`);
  }
  if (buf.length < PREFIX_BYTES) throw corrupt("truncated", `truncated: ${buf.length} bytes, shorter than the ${PREFIX_BYTES}-byte prefix`);
  const version = buf.readUInt32LE(8);
  if (version !== CHECKPOINT_FORMAT_VERSION)
    throw corrupt("unknown-version", `unknown format version ${version} (this build reads ${CHECKPOINT_FORMAT_VERSION})`);
  const headerBytes = buf.readUInt32LE(12);
  const dataStart = PREFIX_BYTES + headerBytes;
  if (dataStart + DIGEST_BYTES > buf.length) throw corrupt("truncated", `truncated: header of ${headerBytes} bytes does not fit in ${buf.length} bytes`);

  let header: Header;
  try {
    header = JSON.parse(buf.toString("utf8", PREFIX_BYTES, dataStart));
  } catch (err) {
    throw corrupt("bad-header", `bad header JSON (${(err as Error).message})`);
  }
  if (!isHeader(header)) throw corrupt("bad-header", "bad header: missing meta, dataBytes or tensor index");
  const expected = dataStart + header.dataBytes + DIGEST_BYTES;
  if (buf.length < expected) throw corrupt("truncated", `truncated: ${buf.length} of ${expected} bytes`);
  if (buf.length > expected) throw corrupt("truncated", `${buf.length - expected} unexpected trailing bytes (expected ${expected})`);

  const digestAt = buf.length - DIGEST_BYTES;
  const actual = createHash("sha256").update(buf.subarray(0, digestAt)).digest();
  if (!actual.equals(buf.subarray(digestAt))) throw corrupt("checksum", "checksum mismatch (SHA-256 of the contents differs from the stored one)");

  const tensors: CheckpointTensor[] = header.tensors.map((t) => {
    const elements = t.shape.reduce((a, b) => a * b, 1);
    if (t.byteLength !== elements * 4 || t.byteOffset % 4 !== 0 || t.byteOffset + t.byteLength > header.dataBytes) {
      throw corrupt("bad-header", `bad header: tensor "${t.name}" index is inconsistent with its shape or the data size`);
    }
    // A copy into a fresh, aligned buffer: the file buffer may be pooled and is unaligned in general.
    const bytes = new Uint8Array(t.byteLength);
    bytes.set(buf.subarray(dataStart + t.byteOffset, dataStart + t.byteOffset + t.byteLength));
    const native = HOST_LITTLE_ENDIAN ? bytes : swap32(bytes);
    return { name: t.name, shape: t.shape, data: new Float32Array(native.buffer, native.byteOffset, elements) };
  });
  return { meta: header.meta, tensors };
}

function isHeader(h: unknown): h is Header {
  if (typeof h !== "object" || h === null) return false;
  const x = h as Partial<Header>;
  const isCount = (n: unknown): n is number => typeof n === "number" && Number.isInteger(n) && n >= 0;
  return (
    typeof x.meta === "object" &&
    x.meta !== null &&
    !Array.isArray(x.meta) &&
    isCount(x.dataBytes) &&
    Array.isArray(x.tensors) &&
    x.tensors.every(
      (t) =>
        typeof t === "object" &&
        t !== null &&
        typeof t.name === "string" &&
        Array.isArray(t.shape) &&
        t.shape.every(isCount) &&
        isCount(t.byteOffset) &&
        isCount(t.byteLength),
    )
  );
}

// ---------------------------------------------------------------------------------------------------
// Directory management

/** fsync the directory so the rename itself survives a crash (a no-op where directories cannot be opened). */
async function syncDirectory(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, "r");
    await fh.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "EISDIR" && code !== "EPERM" && code !== "EINVAL" && code !== "EBADF") throw err;
  } finally {
    await fh?.close();
  }
}

/** Deletes checkpoints older than the newest `keep`; never the one just written. */
async function prune(dir: string, keep: number, justWritten: string): Promise<void> {
  const all = await listCheckpoints(dir);
  for (const { path } of all.slice(0, Math.max(0, all.length - keep))) {
    if (path !== justWritten) await rm(path, { force: true });
  }
}
