// Which code `steppo` runs: the TypeScript sources through tsx (a checkout), or the JavaScript build in dist/
// (`npm run build`; the images ship only the build). Plain JavaScript, as bin/steppo.mjs imports it before any
// TypeScript loader. The build is used only when it is the build of the sources next to it, so a checkout never
// runs stale code: dist/BUILD_ID holds a hash of every build input (the source folders, every file in them,
// and the files below), and bin/steppo.mjs compares it with the hash of what is on disk at each start.
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** The folders `npm run build` compiles (tsconfig.json's include less bin, test, bench and examples; a unit test checks it). */
export const SOURCE_DIRS = ["cli", "core", "crds", "policy", "envs", "workers", "learner", "runtime", "operator"];
/** Files outside the source folders that the build depends on. */
export const BUILD_INPUTS = ["package.json", "tsconfig.json", "bin/build.mjs", "bin/build-id.mjs"];
export const DIST = "dist";
/** The environment variable that overrides the choice: `dist` (fail unless the build is usable) or `tsx`. */
export const RUNTIME_ENV = "STEPPO_RUNTIME";

function walk(root, dir, out) {
  for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) walk(root, rel, out);
    else if (e.isFile()) out.push(rel);
  }
}

/** Every file of the source folders (sources and the assets the build copies), relative to root, sorted. */
export function sourceFiles(root) {
  const out = [];
  for (const d of SOURCE_DIRS) if (existsSync(join(root, d))) walk(root, d, out);
  return out.sort();
}

/** The hash of every build input under root: its path and content. */
export function buildId(root) {
  const h = createHash("sha256");
  for (const f of [...BUILD_INPUTS.filter((f) => existsSync(join(root, f))), ...sourceFiles(root)]) {
    h.update(`${f}\0`);
    h.update(readFileSync(join(root, f)));
    h.update("\0");
  }
  return h.digest("hex");
}

/**
 * What `steppo` runs from root (the folder holding bin/): { runtime: "dist" | "tsx", reason }, or throws when
 * STEPPO_RUNTIME=dist and the build is missing or stale.
 *   - no sources next to bin/ (an image, which ships dist/ only): the build;
 *   - a checkout: the build if dist/BUILD_ID is the hash of the sources on disk, else tsx;
 *   - STEPPO_RUNTIME=tsx: tsx; STEPPO_RUNTIME=dist: the build, or an error saying why not.
 */
export function chooseRuntime(root, env = process.env) {
  const forced = env[RUNTIME_ENV] || undefined;
  if (forced !== undefined && forced !== "dist" && forced !== "tsx") throw new Error(`${RUNTIME_ENV} must be "dist" or "tsx", got "${forced}"`);
  const built = existsSync(join(root, DIST, "cli", "main.js"));
  const sources = existsSync(join(root, "cli", "main.ts"));
  const refuse = (why) => {
    if (forced === "dist") throw new Error(`${RUNTIME_ENV}=dist: ${why}; run \`npm run build\``);
    return { runtime: "tsx", reason: why };
  };
  if (forced === "tsx") return { runtime: "tsx", reason: `${RUNTIME_ENV}=tsx` };
  if (!sources) {
    if (built) return { runtime: "dist", reason: "no TypeScript sources next to the build" };
    throw new Error(`neither ${join(root, "cli", "main.ts")} nor ${join(root, DIST, "cli", "main.js")} exists`);
  }
  if (!built) return refuse(`no build in ${DIST}/`);
  const idFile = join(root, DIST, "BUILD_ID");
  const have = existsSync(idFile) ? readFileSync(idFile, "utf8").trim() : "";
  if (have !== buildId(root)) return refuse(`${DIST}/ is not the build of these sources (they changed since \`npm run build\`)`);
  return { runtime: "dist", reason: `${DIST}/BUILD_ID matches the sources` };
}
