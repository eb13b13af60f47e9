// What a checkpoint records of the model directory it was trained from: a sha256 over config.json and the
// weight files (every .safetensors file and the shard index). A LoRA checkpoint holds the adapters alone, so
// resuming it on other base weights under the same path would train the adapters on a model they were not
// trained for; the hash tells. The learner reads the files once more for it, at its first checkpoint or resume (a 1 GB
// model: a few seconds); the rollout workers never do.
import { createHash } from "node:crypto";
import { createReadStream, existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { CONFIG_FILE } from "./hf-checkpoint.ts";
import { INDEX_FILE } from "./safetensors-dir.ts";

export async function modelIdentity(dir: string): Promise<string[]> {
  const names = [
    CONFIG_FILE,
    INDEX_FILE,
    ...readdirSync(dir)
      .filter((f) => f.endsWith(".safetensors"))
      .sort(),
  ].filter((f) => existsSync(join(dir, f)));
  const h = createHash("sha256");
  for (const name of names) {
    h.update(`${name}\u0000`);
    for await (const chunk of createReadStream(join(dir, name))) h.update(chunk as Buffer);
    h.update("\u0000");
  }
  return ["hf-model", `sha256:${h.digest("hex")}`];
}
