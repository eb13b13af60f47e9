// `npm run build` (bin/build.mjs) and which code `steppo` runs (bin/build-id.mjs): the build is run in a copy of
// this checkout's build inputs (node_modules linked), so the checkout's own dist/ is left alone.
//   - the build: every module compiled, no import of a .ts file left, the assets copied, dist/BUILD_ID the
//     hash of the sources; `steppo` runs it (the operator's modules come from dist/, and no TypeScript loader
//     is loaded), the dashboard serves its page and uPlot from it;
//   - the choice: the build when its BUILD_ID matches the sources, tsx when a source changed (or
//     STEPPO_RUNTIME=tsx), an error when STEPPO_RUNTIME=dist cannot be honoured; the build when no sources
//     are next to bin/ (an image).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { appendFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { BUILD_INPUTS, buildId, chooseRuntime, SOURCE_DIRS, sourceFiles } from "../../bin/build-id.mjs";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const temporary: string[] = [];
after(() => {
  for (const d of temporary) rmSync(d, { recursive: true, force: true });
});

/** A fresh copy of the build inputs (source folders, bin/, package.json, tsconfig.json), node_modules linked. */
function checkoutCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), "steppo-build-"));
  temporary.push(dir);
  for (const p of [...SOURCE_DIRS, "bin", ...BUILD_INPUTS]) cpSync(join(REPO, p), join(dir, p), { recursive: true });
  symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"));
  return dir;
}

function run(cwd: string, args: string[], env: Record<string, string> = {}) {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== "STEPPO_RUNTIME"));
  return spawnSync(process.execPath, args, { cwd, env: { ...base, ...env }, encoding: "utf8", timeout: 60_000 });
}

function built(): string {
  const dir = checkoutCopy();
  const b = run(dir, ["bin/build.mjs"]);
  assert.equal(b.status, 0, b.stderr);
  return dir;
}

test("bin/build-id.mjs SOURCE_DIRS: tsconfig.json's include less bin, test, bench and examples", () => {
  const ts = JSON.parse(readFileSync(join(REPO, "tsconfig.json"), "utf8")) as { include: string[] };
  assert.deepEqual([...SOURCE_DIRS].sort(), ts.include.filter((d) => !["bin", "test", "bench", "examples"].includes(d)).sort());
});

describe("npm run build", () => {
  test("compiles every module to dist/ with its imports rewritten, copies the assets, records the build id", () => {
    const dir = built();
    const files = sourceFiles(dir);
    for (const f of files) {
      const out = join(dir, "dist", f.endsWith(".ts") ? f.replace(/\.ts$/, ".js") : f);
      assert.ok(existsSync(out), `dist/ lacks the build of ${f}`);
      if (!f.endsWith(".ts")) continue;
      const js = readFileSync(out, "utf8");
      assert.doesNotMatch(js, /(?:from|import)\s*\(?\s*["']\.\.?\/[^"']*\.ts["']/, `${out} still imports a .ts file`);
    }
    assert.ok(files.includes("runtime/dashboard/static/index.html"));
    assert.equal(readFileSync(join(dir, "dist", "BUILD_ID"), "utf8").trim(), buildId(dir));
    assert.deepEqual(chooseRuntime(dir, {}), { runtime: "dist", reason: "dist/BUILD_ID matches the sources" });
    const pkg = JSON.parse(readFileSync(join(dir, "dist", "package.json"), "utf8")) as { type: string; version: string };
    assert.equal(pkg.type, "module");
    assert.equal(pkg.version, (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string }).version);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.startsWith("dist.tmp-")),
      [],
      "no temporary folder left",
    );
  });

  test("steppo runs the build: the operator's modules from dist/, no TypeScript loader, no tfjs", () => {
    const dir = built();
    const trace = join(dir, "imports.txt");
    const r = run(dir, ["--import", join(REPO, "test/support/trace-imports.mjs"), "bin/steppo.mjs", "operator", "--no-such-flag"], {
      STEPPO_TRACE_IMPORTS: trace,
    });
    assert.equal(r.status, 2, r.stderr);
    const urls = readFileSync(trace, "utf8").trim().split("\n");
    assert.ok(
      urls.some((u) => u.endsWith("/dist/operator/controller.js")),
      urls.filter((u) => u.includes("/operator/")).join("\n"),
    );
    assert.deepEqual(
      urls.filter((u) => /\.ts$|\/node_modules\/(tsx|esbuild)\/|@tensorflow|tfjs/.test(u)),
      [],
    );
    for (const launcher of ["bin/steppo.mjs", "dist/bin/steppo.mjs"]) {
      const v = run(dir, [launcher, "validate", join(REPO, "examples", "quickstart.yaml")], { STEPPO_RUNTIME: "dist" });
      assert.equal(v.status, 0, `${launcher}: ${v.stderr}`);
      assert.equal((JSON.parse(v.stdout) as { metadata: { name: string } }).metadata.name, "quickstart");
    }
  });

  test("the built dashboard serves its page, its files and uPlot", () => {
    const dir = built();
    const script = `
      const { startDashboard } = await import("./dist/runtime/dashboard/server.js");
      const d = await startDashboard({ sources: [], port: 0 });
      const out = {};
      for (const p of ["", "dashboard/app.js", "dashboard/vendor/uplot/uPlot.esm.js"]) out[p] = (await fetch(d.url + p)).status;
      await d.close();
      console.log(JSON.stringify(out));`;
    const r = run(dir, ["--input-type=module", "-e", script]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { "": 200, "dashboard/app.js": 200, "dashboard/vendor/uplot/uPlot.esm.js": 200 });
  });
});

describe("which code steppo runs", () => {
  test("a checkout without a build, or with a stale one: tsx; STEPPO_RUNTIME=dist refuses", () => {
    const dir = checkoutCopy();
    assert.equal(chooseRuntime(dir, {}).runtime, "tsx");
    assert.throws(() => chooseRuntime(dir, { STEPPO_RUNTIME: "dist" }), /STEPPO_RUNTIME=dist: no build in dist\//);
    assert.equal(run(dir, ["bin/build.mjs"]).status, 0);
    assert.equal(chooseRuntime(dir, {}).runtime, "dist");
    assert.equal(chooseRuntime(dir, { STEPPO_RUNTIME: "tsx" }).runtime, "tsx");
    assert.throws(() => chooseRuntime(dir, { STEPPO_RUNTIME: "js" }), /must be "dist" or "tsx"/);
    // A changed source (as an edit after the build): the sources run, never the stale build.
    appendFileSync(join(dir, "core", "args.ts"), "\n// edited\n");
    assert.deepEqual(chooseRuntime(dir, {}), { runtime: "tsx", reason: "dist/ is not the build of these sources (they changed since `npm run build`)" });
    const stale = run(dir, ["bin/steppo.mjs", "--version"], { STEPPO_RUNTIME: "dist" });
    assert.equal(stale.status, 2);
    assert.match(stale.stderr, /STEPPO_RUNTIME=dist: dist\/ is not the build of these sources.*npm run build/);
    const fallback = run(dir, ["bin/steppo.mjs", "--version"]);
    assert.equal(fallback.status, 0, fallback.stderr);
    assert.match(fallback.stdout, /^steppo \d/);
  });

  test("no sources next to bin/ (an image): the build", () => {
    const dir = built();
    for (const d of SOURCE_DIRS) rmSync(join(dir, d), { recursive: true });
    assert.deepEqual(chooseRuntime(dir, {}), { runtime: "dist", reason: "no TypeScript sources next to the build" });
    const v = run(dir, ["bin/steppo.mjs", "--version"]);
    assert.equal(v.status, 0, v.stderr);
    rmSync(join(dir, "dist"), { recursive: true });
    assert.throws(() => chooseRuntime(dir, {}), /neither .*cli\/main\.ts nor .*dist\/cli\/main\.js exists/);
  });
});
