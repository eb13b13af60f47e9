// The Dockerfiles cannot be built here (no Docker engine), so they are checked by reading them:
//   - every COPY from the build context names something that exists and that .dockerignore lets through;
//   - the runtime stage copies every file `steppo` loads (the import graph from bin/steppo.mjs), and every
//     package the sources import is a production dependency (what `npm ci --omit=dev` installs);
//   - the runtime stage runs as a non-root uid with `steppo` on PATH as the ENTRYPOINT, as the operator's
//     pods call it (command: ["steppo", "learner" | "worker"]);
//   - that layout, rebuilt in a temporary directory from the Dockerfile's own COPY and `ln -s` lines, runs
//     `steppo --help` and `steppo validate` through the ENTRYPOINT's command line.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from "node:fs";
import { builtinModules } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, posix, relative, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("../../", import.meta.url));

/** The Dockerfiles and the subcommand each image runs by default (CMD; the operator's pods set their own). */
const DEFAULT_CMD: Record<string, string> = { "operator/Dockerfile": "operator", "workers/Dockerfile": "worker", "learner/Dockerfile": "learner" };

interface Instruction {
  cmd: string;
  args: string;
  line: number;
}

interface Stage {
  image: string;
  name?: string;
  instructions: Instruction[];
}

interface Dockerfile {
  args: Record<string, string>;
  stages: Stage[];
}

/** Parses instructions (continuation lines joined, comments dropped) into stages, with global ARGs substituted. */
function parseDockerfile(text: string): Dockerfile {
  const instructions: Instruction[] = [];
  let buf = "";
  let start = 0;
  text.split("\n").forEach((raw, i) => {
    const line = raw.trimEnd();
    if (buf === "" && /^\s*(#|$)/.test(line)) return;
    if (buf !== "" && /^\s*#/.test(line)) return; // comment inside a continuation
    if (buf === "") start = i + 1;
    if (line.endsWith("\\")) {
      buf += `${line.slice(0, -1)} `;
      return;
    }
    buf += line;
    const m = /^\s*([A-Za-z]+)\s+([\s\S]*)$/.exec(buf);
    assert.ok(m, `line ${start}: cannot parse ${JSON.stringify(buf)}`);
    instructions.push({ cmd: m[1].toUpperCase(), args: m[2].trim().replace(/\s+/g, " "), line: start });
    buf = "";
  });
  assert.equal(buf, "", "a continuation line ends the file");
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  const subst = (s: string) =>
    s.replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a, b) => {
      const v = args[a ?? b];
      assert.ok(v !== undefined, `ARG ${a ?? b} has no default`);
      return v;
    });
  for (const ins of instructions) {
    if (ins.cmd === "ARG" && stages.length === 0) {
      const [k, v] = ins.args.split("=");
      args[k] = v ?? "";
    } else if (ins.cmd === "FROM") {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      assert.ok(m, `line ${ins.line}: FROM ${ins.args}`);
      stages.push({ image: subst(m[1]), name: m[2], instructions: [] });
    } else {
      assert.ok(stages.length > 0, `line ${ins.line}: ${ins.cmd} before FROM`);
      stages[stages.length - 1].instructions.push(ins);
    }
  }
  return { args, stages };
}

interface Copy {
  from?: string;
  sources: string[];
  dest: string;
  line: number;
}

function copies(stage: Stage): Copy[] {
  return stage.instructions
    .filter((i) => i.cmd === "COPY" || i.cmd === "ADD")
    .map((i) => {
      assert.equal(i.cmd, "COPY", `line ${i.line}: use COPY, not ADD`);
      const words = i.args.split(" ");
      let from: string | undefined;
      while (words[0].startsWith("--")) {
        const flag = words.shift() as string;
        if (flag.startsWith("--from=")) from = flag.slice("--from=".length);
      }
      assert.ok(!words[0].startsWith("["), `line ${i.line}: COPY in JSON form is not handled by this check`);
      const dest = words.pop() as string;
      return { from, sources: words, dest, line: i.line };
    });
}

/** The one JSON-array ENTRYPOINT of a stage. */
function entrypoint(stage: Stage): string[] {
  const e = stage.instructions.filter((i) => i.cmd === "ENTRYPOINT");
  assert.equal(e.length, 1, "one ENTRYPOINT");
  const v = JSON.parse(e[0].args) as unknown;
  assert.ok(Array.isArray(v) && v.every((x) => typeof x === "string"), "ENTRYPOINT in exec (JSON) form");
  return v as string[];
}

function workdir(stage: Stage): string {
  const w = stage.instructions.filter((i) => i.cmd === "WORKDIR").pop();
  assert.ok(w, "a WORKDIR");
  return w.args;
}

// .dockerignore: Go filepath.Match patterns plus `**`, relative to the context root.
function ignorePatterns(): RegExp[] {
  const lines = readFileSync(join(REPO, ".dockerignore"), "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  assert.ok(!lines.some((l) => l.startsWith("!")), "negated patterns are not handled by this check");
  return lines.map((p) => {
    const glob = p.replace(/^\/+/, "").replace(/\/+$/, "");
    let re = "";
    for (let i = 0; i < glob.length; i++) {
      const c = glob[i];
      if (c === "*" && glob[i + 1] === "*") {
        re += glob[i + 2] === "/" ? "(?:.*/)?" : ".*";
        i += glob[i + 2] === "/" ? 2 : 1;
      } else if (c === "*") re += "[^/]*";
      else if (c === "?") re += "[^/]";
      else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
    }
    return new RegExp(`^${re}$`);
  });
}

/** True if .dockerignore keeps `path` (or one of its parent directories) out of the build context. */
function ignored(path: string, patterns: RegExp[]): boolean {
  const parts = path.split("/");
  for (let i = 1; i <= parts.length; i++) {
    const prefix = parts.slice(0, i).join("/");
    if (patterns.some((p) => p.test(prefix))) return true;
  }
  return false;
}

/** Every source file `steppo` can load: relative imports (static and dynamic) followed from bin/steppo.mjs. */
function importGraph(): { files: string[]; packages: Set<string> } {
  const seen = new Set<string>();
  const packages = new Set<string>();
  const todo = [join(REPO, "bin", "steppo.mjs")];
  while (todo.length > 0) {
    const file = todo.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    const src = readFileSync(file, "utf8")
      .replace(/\/\*[\s\S]*?\*\//g, "")
      .replace(/^\s*\/\/.*$/gm, "");
    const specs: string[] = [];
    for (const m of src.matchAll(/^\s*(?:import|export)\s+(?!type\s)[^;]*?\sfrom\s+["']([^"']+)["']/gm)) specs.push(m[1]);
    for (const m of src.matchAll(/^\s*import\s+["']([^"']+)["']/gm)) specs.push(m[1]);
    for (const m of src.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) specs.push(m[1]);
    for (const spec of specs) {
      if (spec.startsWith(".")) {
        const target = resolve(dirname(file), spec);
        assert.ok(existsSync(target), `${relative(REPO, file)} imports ${spec}, which does not exist`);
        todo.push(target);
      } else if (!spec.startsWith("node:") && !builtinModules.includes(spec)) {
        packages.add(spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]);
      }
    }
  }
  return { files: [...seen].map((f) => relative(REPO, f)).sort(), packages };
}

const DOCKERFILES = Object.keys(DEFAULT_CMD);

for (const file of DOCKERFILES) {
  test(`${file}: multi-stage, COPY sources exist and pass .dockerignore, non-root, ENTRYPOINT steppo`, () => {
    const df = parseDockerfile(readFileSync(join(REPO, file), "utf8"));
    assert.ok(df.stages.length >= 2, "multi-stage");
    const names = new Set<string>();
    const patterns = ignorePatterns();
    for (const [i, stage] of df.stages.entries()) {
      assert.ok(!stage.image.includes("$"), `stage ${i}: FROM ${stage.image} resolved`);
      assert.match(stage.image, /^[\w./-]+:[\w.-]+$/, `stage ${i}: FROM ${stage.image} is pinned to a tag`);
      for (const c of copies(stage)) {
        if (c.from !== undefined) {
          assert.ok(names.has(c.from), `line ${c.line}: COPY --from=${c.from} names an earlier stage`);
          continue;
        }
        for (const s of c.sources) {
          assert.ok(!s.includes("*") && !s.startsWith("/") && !s.includes(".."), `line ${c.line}: plain relative source ${s}`);
          assert.ok(existsSync(join(REPO, s)), `line ${c.line}: COPY ${s}: no such file in the build context (the repository root)`);
          assert.ok(!ignored(s, patterns), `line ${c.line}: COPY ${s} is excluded by .dockerignore`);
        }
      }
      if (stage.name) {
        assert.ok(!names.has(stage.name), `stage name ${stage.name} is unique`);
        names.add(stage.name);
      }
    }
    const last = df.stages[df.stages.length - 1];
    const user = last.instructions.filter((i) => i.cmd === "USER").pop();
    assert.ok(user, "the runtime stage sets USER");
    assert.match(user.args, /^[1-9]\d*:[1-9]\d*$/, "a numeric non-root uid:gid (runAsNonRoot can verify it)");
    assert.equal(user.args, "65532:65532");
    assert.deepEqual(entrypoint(last), ["steppo"]);
    assert.equal(workdir(last), "/app");
    const cmd = last.instructions.filter((i) => i.cmd === "CMD").pop();
    assert.deepEqual(JSON.parse(cmd?.args ?? "null"), [DEFAULT_CMD[file]]);
    assert.ok(
      last.instructions.some((i) => i.cmd === "RUN" && i.args.includes("ln -s /app/bin/steppo.mjs /usr/local/bin/steppo")),
      "steppo on PATH in the runtime stage",
    );
    assert.ok(
      last.instructions.some((i) => i.cmd === "RUN" && /useradd --uid 65532 --gid 65532/.test(i.args)),
      "the user exists in /etc/passwd (node and tools that look up the uid)",
    );
    // Production dependencies only.
    const deps = df.stages.find((s) => s.name === "deps");
    assert.ok(deps, "a deps stage");
    assert.ok(deps.instructions.some((i) => i.cmd === "RUN" && i.args.includes("npm ci --omit=dev")));
    assert.ok(copies(last).some((c) => c.from === "deps" && c.sources.join() === "/app/node_modules"));
  });
}

test("each image copies every file steppo loads, and the sources import production dependencies only", () => {
  const { files, packages } = importGraph();
  assert.ok(files.includes("operator/cli.ts") && files.includes("runtime/learner-process.ts") && files.includes("runtime/worker-process.ts"), files.join(" "));
  const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as {
    dependencies: Record<string, string>;
    optionalDependencies?: Record<string, string>;
  };
  const production = new Set([...Object.keys(pkg.dependencies), ...Object.keys(pkg.optionalDependencies ?? {})]);
  for (const p of packages) assert.ok(production.has(p), `the sources import ${p}, which npm ci --omit=dev does not install`);
  const patterns = ignorePatterns();
  for (const file of DOCKERFILES) {
    const df = parseDockerfile(readFileSync(join(REPO, file), "utf8"));
    const last = df.stages[df.stages.length - 1];
    const copied = copies(last)
      .filter((c) => c.from === undefined)
      .flatMap((c) => c.sources);
    for (const f of [...files, "package.json", "tsconfig.json"]) {
      assert.ok(
        copied.some((s) => f === s || f.startsWith(`${s}/`)),
        `${file}: ${f} is loaded by steppo but not copied into the image`,
      );
      assert.ok(!ignored(f, patterns), `${f} is excluded by .dockerignore`);
    }
  }
  // The GPU learner adds the binding the learner's backend selection tries first.
  const learner = readFileSync(join(REPO, "learner", "Dockerfile"), "utf8");
  const tfjs = JSON.parse(readFileSync(join(REPO, "node_modules", "@tensorflow", "tfjs", "package.json"), "utf8")) as { version: string };
  assert.match(learner, new RegExp(`@tensorflow/tfjs-node-gpu@${tfjs.version.replace(/\./g, "\\.")}\\b`), "tfjs-node-gpu at the installed tfjs version");
  assert.match(learner, /nvidia\/cuda:11\.2\.\d+-cudnn8-runtime-ubuntu20\.04/, "CUDA 11.2 + cuDNN 8 (libtensorflow 2.9.1)");
  assert.match(readFileSync(join(REPO, "learner", "backend.ts"), "utf8"), /"@tensorflow\/tfjs-node-gpu"/);
});

for (const file of DOCKERFILES) {
  test(`${file}: the runtime layout, rebuilt from its COPY and ln -s lines, runs steppo through the ENTRYPOINT`, () => {
    const df = parseDockerfile(readFileSync(join(REPO, file), "utf8"));
    const last = df.stages[df.stages.length - 1];
    const root = mkdtempSync(join(tmpdir(), "steppo-image-"));
    try {
      const wd = workdir(last);
      const inImage = (p: string) => join(root, posix.isAbsolute(p) ? p : posix.join(wd, p));
      mkdirSync(inImage(wd), { recursive: true });
      for (const c of copies(last)) {
        if (c.from === "deps") {
          // Stands in for the deps stage's `npm ci --omit=dev` (this checkout's node_modules, dev tools included;
          // the test above checks that the sources import production dependencies only).
          symlinkSync(join(REPO, "node_modules"), inImage(c.dest));
          continue;
        }
        if (c.from !== undefined) continue; // the node binary from the official image: this process's node
        const multi = c.sources.length > 1 || c.dest.endsWith("/");
        for (const s of c.sources) {
          const to = multi ? join(inImage(c.dest), posix.basename(s)) : inImage(c.dest);
          mkdirSync(dirname(to), { recursive: true });
          cpSync(join(REPO, s), to, { recursive: true, filter: (src) => !ignored(relative(REPO, src), ignorePatterns()) });
        }
      }
      // The RUN line's `ln -s /app/bin/steppo.mjs /usr/local/bin/steppo`, under the temporary root.
      const run = last.instructions.find((i) => i.cmd === "RUN" && i.args.includes("ln -s "));
      const ln = / ln -s (\S+) (\S+)/.exec(` ${run?.args ?? ""}`);
      assert.ok(ln, "an ln -s line");
      mkdirSync(dirname(inImage(ln[2])), { recursive: true });
      symlinkSync(inImage(ln[1]), inImage(ln[2]));
      assert.ok(statSync(inImage(ln[1])).mode & 0o111, `${ln[1]} is executable (the shebang runs it)`);
      const env = { PATH: `${dirname(inImage(ln[2]))}:${dirname(process.execPath)}:/usr/bin:/bin`, HOME: root, TMPDIR: tmpdir() };
      const [cmd, ...rest] = entrypoint(last);
      const help = spawnSync(cmd, [...rest, "--help"], { cwd: inImage(wd), env, encoding: "utf8", timeout: 60_000 });
      assert.equal(help.status, 0, `${cmd} --help: ${help.stderr}${help.error ?? ""}`);
      assert.match(help.stdout, /usage: steppo <command>/);
      for (const sub of ["operator", "learner", "worker"]) assert.match(help.stdout, new RegExp(`^ {2}${sub}\\b`, "m"), sub);
      const job = join(root, "job.yaml");
      cpSync(join(REPO, "examples", "quickstart.yaml"), job);
      const validate = spawnSync(cmd, [...rest, "validate", job], { cwd: inImage(wd), env, encoding: "utf8", timeout: 60_000 });
      assert.equal(validate.status, 0, `${cmd} validate: ${validate.stderr}`);
      assert.equal((JSON.parse(validate.stdout) as { metadata: { name: string } }).metadata.name, "quickstart");
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
}
