#!/usr/bin/env node
// The `steppo` command. It runs the JavaScript build in dist/ (`npm run build`, which the images ship) when
// that is the build of the sources next to it, else the TypeScript sources through tsx's loader, so a checkout
// needs no build step and never runs stale code (bin/build-id.mjs; STEPPO_RUNTIME=dist|tsx overrides).
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { chooseRuntime } from "./build-id.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
let choice;
try {
  choice = chooseRuntime(root);
} catch (err) {
  process.stderr.write(`steppo: ${err.message}\n`);
  process.exit(2);
}
let main;
if (choice.runtime === "dist") {
  ({ main } = await import(pathToFileURL(join(root, "dist", "cli", "main.js")).href));
} else {
  const { register } = await import("tsx/esm/api");
  register();
  ({ main } = await import("../cli/main.ts"));
}
process.exitCode = await main(process.argv.slice(2));
