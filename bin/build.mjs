#!/usr/bin/env node
// `npm run build`: compiles the TypeScript sources to JavaScript in dist/ (ignored by git), which bin/steppo.mjs
// then runs without a TypeScript loader in the process (tsx's loader, its source maps and caches cost the
// operator about 90 MB of resident memory; docs/operator.md, "Footprint"). dist/ mirrors the source folders:
//   dist/<dir>/…/x.js     each source file x.ts on its own (not bundled), types stripped by esbuild (as tsx does at
//                         run time), its relative imports of ./x.ts rewritten to ./x.js; a linked source map
//                         (used with NODE_OPTIONS=--enable-source-maps);
//   dist/<dir>/…          every other file of the source folders (the dashboard's static/ files, the CRD YAML);
//   dist/package.json     { type: module, version } (cli/main.ts reads the version from ../package.json);
//   dist/bin/steppo.mjs   the launcher of this build (cli/distributed-run.ts spawns ../bin/steppo.mjs);
//   dist/BUILD_ID         the hash of the build inputs (bin/build-id.mjs), written last.
// Types are not checked here (`npm run typecheck` does). Built into a temporary folder, then renamed over dist/.
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { buildId, DIST, sourceFiles } from "./build-id.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Relative imports stay imports of their own file (no bundling), with the .ts extension now .js. */
const rewriteRelativeImports = {
  name: "rewrite-relative-imports",
  setup(b) {
    b.onResolve({ filter: /^\.\.?\// }, (args) =>
      args.kind === "entry-point" ? undefined : { path: args.path.replace(/\.ts$/, ".js").replace(/\.mts$/, ".mjs"), external: true },
    );
  },
};

export async function buildDist(root = ROOT, log = (line) => process.stderr.write(`${line}\n`)) {
  const t0 = Date.now();
  const id = buildId(root);
  const files = sourceFiles(root);
  const sources = files.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"));
  const assets = files.filter((f) => !f.endsWith(".ts"));
  const out = join(root, `${DIST}.tmp-${process.pid}`);
  rmSync(out, { recursive: true, force: true });
  try {
    const result = await build({
      absWorkingDir: root,
      entryPoints: sources,
      outdir: out,
      outbase: ".",
      bundle: true,
      packages: "external",
      plugins: [rewriteRelativeImports],
      format: "esm",
      platform: "node",
      target: "node20",
      tsconfig: join(root, "tsconfig.json"),
      treeShaking: false,
      charset: "utf8",
      sourcemap: "linked",
      sourcesContent: false,
      logLevel: "warning",
    });
    if (result.errors.length > 0) throw new Error(`esbuild: ${result.errors.length} error(s)`);
    for (const f of assets) {
      mkdirSync(dirname(join(out, f)), { recursive: true });
      cpSync(join(root, f), join(out, f));
    }
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
    writeFileSync(join(out, "package.json"), `${JSON.stringify({ name: pkg.name, version: pkg.version, private: true, type: "module" }, null, 2)}\n`);
    mkdirSync(join(out, "bin"), { recursive: true });
    writeFileSync(
      join(out, "bin", "steppo.mjs"),
      [
        "#!/usr/bin/env node",
        "// Written by `npm run build` (bin/build.mjs): `steppo` from this build, with no TypeScript loader.",
        'const { main } = await import(new URL("../cli/main.js", import.meta.url).href);',
        "process.exitCode = await main(process.argv.slice(2));",
        "",
      ].join("\n"),
      { mode: 0o755 },
    );
    if (buildId(root) !== id) throw new Error("the sources changed during the build; run it again");
    writeFileSync(join(out, "BUILD_ID"), `${id}\n`);
    rmSync(join(root, DIST), { recursive: true, force: true });
    renameSync(out, join(root, DIST));
  } finally {
    if (existsSync(out)) rmSync(out, { recursive: true, force: true });
  }
  log(`build: ${sources.length} modules and ${assets.length} other files → ${DIST}/ in ${Date.now() - t0} ms (BUILD_ID ${id.slice(0, 12)})`);
  return id;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await buildDist();
