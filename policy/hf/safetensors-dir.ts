// A checkpoint directory's tensors in the Hugging Face layout: one model.safetensors, or shards
// (model-00001-of-00003.safetensors …) listed by model.safetensors.index.json, whose weight_map names the
// shard of every tensor. Reading checks the index against the shards' own headers, both ways.
import { existsSync } from "node:fs";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { readSafetensors, SafetensorsError, type StoredTensor, storedBytes, writeSafetensors } from "./safetensors.ts";

export const SINGLE_FILE = "model.safetensors";
export const INDEX_FILE = "model.safetensors.index.json";

/** The shard file names save_pretrained writes (and writeTensorsDir too). */
const SHARD_NAME = /^model-\d{5}-of-\d{5}\.safetensors$/;

/** transformers' default max_shard_size ("5GB"). */
const DEFAULT_SHARD_BYTES = 5_000_000_000;

/** Every tensor of the checkpoint in `dir`, by name. */
export async function readTensorsDir(dir: string): Promise<Map<string, StoredTensor>> {
  const single = join(dir, SINGLE_FILE);
  if (existsSync(single)) return byName((await readSafetensors(single)).tensors, single);
  const indexPath = join(dir, INDEX_FILE);
  if (!existsSync(indexPath)) throw new Error(`${dir}: neither ${SINGLE_FILE} nor ${INDEX_FILE} is there`);
  const weightMap = await readWeightMap(indexPath);
  const out = new Map<string, StoredTensor>();
  for (const shard of new Set(weightMap.values())) {
    const path = join(dir, shard);
    if (!existsSync(path)) throw new Error(`${indexPath}: shard ${shard} is missing`);
    for (const t of (await readSafetensors(path)).tensors) {
      const listed = weightMap.get(t.name);
      if (listed !== shard)
        throw new SafetensorsError(path, `tensor ${t.name} is here, but ${INDEX_FILE} ${listed ? `puts it in ${listed}` : "does not list it"}`);
      out.set(t.name, t);
    }
  }
  for (const [name, shard] of weightMap)
    if (!out.has(name)) throw new SafetensorsError(join(dir, shard), `tensor ${name}, listed in ${INDEX_FILE}, is not in the file`);
  return out;
}

/** The index's weight_map: tensor name → shard file name. */
async function readWeightMap(indexPath: string): Promise<Map<string, string>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(indexPath, "utf8"));
  } catch (err) {
    throw new Error(`${indexPath}: not JSON (${(err as Error).message})`);
  }
  const weightMap = (parsed as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== "object" || weightMap === null) throw new Error(`${indexPath}: no weight_map object`);
  const out = new Map<string, string>();
  for (const [name, shard] of Object.entries(weightMap)) {
    // A shard is a file beside the index, never a path elsewhere.
    if (typeof shard !== "string" || !/^[^/\\]+\.safetensors$/.test(shard) || shard.startsWith(".")) {
      throw new Error(`${indexPath}: weight_map.${name} is ${JSON.stringify(shard)}, not a .safetensors file name in the same directory`);
    }
    out.set(name, shard);
  }
  return out;
}

function byName(tensors: StoredTensor[], path: string): Map<string, StoredTensor> {
  const out = new Map<string, StoredTensor>();
  for (const t of tensors) {
    if (out.has(t.name)) throw new SafetensorsError(path, `tensor ${t.name} appears twice`);
    out.set(t.name, t);
  }
  return out;
}

/**
 * Writes `tensors` into `dir` as transformers' save_pretrained does: one model.safetensors when they fit in
 * `maxShardBytes`, else shards of at most that many bytes (a tensor larger than that gets a shard of its
 * own) and the index. The other layout's files (and shards of an earlier shard count) are removed, so a
 * reader never finds both.
 */
export async function writeTensorsDir(dir: string, tensors: StoredTensor[], maxShardBytes = DEFAULT_SHARD_BYTES): Promise<void> {
  const shards = shardTensors(tensors, maxShardBytes);
  if (shards.length === 1) {
    await writeSafetensors(join(dir, SINGLE_FILE), tensors);
    await rm(join(dir, INDEX_FILE), { force: true });
    await removeStaleShards(dir, new Set());
    return;
  }
  const weightMap: Record<string, string> = {};
  const n = shards.length;
  const pad = (k: number) => String(k).padStart(5, "0");
  const written = new Set<string>();
  for (let k = 0; k < n; k++) {
    const file = `model-${pad(k + 1)}-of-${pad(n)}.safetensors`;
    await writeSafetensors(join(dir, file), shards[k]);
    written.add(file);
    for (const t of shards[k]) weightMap[t.name] = file;
  }
  const totalSize = tensors.reduce((s, t) => s + storedBytes(t), 0);
  await writeFile(join(dir, INDEX_FILE), `${JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2)}\n`);
  await rm(join(dir, SINGLE_FILE), { force: true });
  await removeStaleShards(dir, written);
}

/** Shards an earlier write left (another shard count) that the new index does not list. */
async function removeStaleShards(dir: string, keep: Set<string>): Promise<void> {
  for (const name of await readdir(dir)) if (SHARD_NAME.test(name) && !keep.has(name)) await rm(join(dir, name), { force: true });
}

/** Tensors in order, cut into consecutive groups of at most `maxBytes` each. */
function shardTensors(tensors: StoredTensor[], maxBytes: number): StoredTensor[][] {
  const shards: StoredTensor[][] = [[]];
  let bytes = 0;
  for (const t of tensors) {
    const size = storedBytes(t);
    if (bytes > 0 && bytes + size > maxBytes) {
      shards.push([]);
      bytes = 0;
    }
    shards[shards.length - 1].push(t);
    bytes += size;
  }
  return shards;
}
