// The layer rule (docs/architecture.md): source folders are layers in the order data flows, and a file may
// import from its own layer or a lower one, never a higher one. Read from the files themselves, static and
// dynamic imports alike, so a new upward import fails here (as the CRD drift test fails on a stale CRD).
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** Lowest first. bench/ and test/ sit above all of them and may import anything. */
export const LAYERS = ["crds", "core", "policy", "envs", "workers", "learner", "runtime", "operator", "cli"] as const;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === "static" ? [] : sources(p);
    return /\.(ts|mts)$/.test(name) ? [p] : [];
  });
}

/** Relative specifiers of `import … from`, `export … from` and `import(…)`. */
function importsOf(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g)) out.push(m[1]);
  return out;
}

function layerOf(path: string): number {
  const top = relative(ROOT, path).split("/")[0];
  return LAYERS.indexOf(top as (typeof LAYERS)[number]);
}

export function upwardImports(): string[] {
  const problems: string[] = [];
  for (const layer of LAYERS) {
    for (const file of sources(join(ROOT, layer))) {
      const from = layerOf(file);
      for (const spec of importsOf(readFileSync(file, "utf8"))) {
        const target = resolve(dirname(file), spec);
        const to = layerOf(target);
        const where = `${relative(ROOT, file)} imports ${relative(ROOT, target)}`;
        if (to === -1) problems.push(`${where}, which is in no layer (bench/ and test/ are above every layer)`);
        else if (to > from) problems.push(`${where}: ${LAYERS[from]} is below ${LAYERS[to]}`);
      }
    }
  }
  return problems;
}

test("no source file imports from a higher layer", () => {
  assert.deepEqual(upwardImports(), []);
});

test("every top-level source folder is a layer", () => {
  const ignored = new Set(["bench", "test", "bin", "charts", "docs", "examples", "node_modules", "runs", "shared", "dist"]);
  const folders = readdirSync(ROOT).filter((n) => !n.startsWith(".") && statSync(join(ROOT, n)).isDirectory() && !ignored.has(n));
  assert.deepEqual(folders.sort(), [...LAYERS].sort(), "a new top-level folder needs its place in LAYERS (and docs/architecture.md)");
});

test("the check sees an upward import", () => {
  // What the rule reads, on a line that breaks it: a policy file importing the run loop.
  const specs = importsOf(`import { runJob } from "../runtime/run-job.ts";\nconst m = await import("../operator/cli.ts");`);
  assert.deepEqual(specs, ["../runtime/run-job.ts", "../operator/cli.ts"]);
  const file = join(ROOT, "policy/model.ts");
  assert.ok(specs.every((s) => layerOf(resolve(dirname(file), s)) > layerOf(file)));
});
