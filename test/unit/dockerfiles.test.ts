// The Dockerfile cannot be built here (no Docker engine), so it is checked by reading it. It holds one target
// per image (`docker build --target <name> .`), and each target is checked as what it builds: its stage chain
// (the FROM chain of its stage, plus the stages it copies from with COPY --from, and theirs):
//   - every stage of the chain resolves its base image to a pinned tag, every COPY from the build context
//     names something that exists and that .dockerignore lets through, and every COPY --from an earlier stage;
//   - the image config the target ends with (along its FROM chain, as docker inherits it): a non-root
//     numeric USER, `steppo` on PATH as the ENTRYPOINT, as the operator's pods call it (command:
//     ["steppo", "learner" | "worker"]), its own CMD and EXPOSE; node_modules from `npm ci --omit=dev`;
//   - the filesystem the target ends with, rebuilt in a temporary directory by replaying the chain's WORKDIR,
//     COPY (context and --from) and RUN `chmod`/`ln -s`/`node bin/build.mjs` lines (the build stage's
//     `npm run build` runs for real): it holds the JavaScript build of every source folder and of every file
//     `steppo` loads (the import graph from bin/steppo.mjs) and no TypeScript sources, and runs `steppo --help`,
//     `steppo <CMD> --help` and `steppo validate` through the ENTRYPOINT's command line;
//   - every package the sources and the build script import is a production dependency (what
//     `npm ci --omit=dev` installs).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from "node:fs";
import { builtinModules } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, posix, relative, resolve } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const DOCKERFILE = "Dockerfile";

/** The targets: the image each is pushed as, the subcommand it runs by default (CMD; the operator's pods set their own) and the port it exposes. */
const TARGETS: Record<string, { image: string; cmd: string; port: string }> = {
  operator: { image: "ghcr.io/steppo/steppo", cmd: "operator", port: "8080" },
  worker: { image: "ghcr.io/steppo/steppo-worker", cmd: "worker", port: "9464" },
  "learner-gpu": { image: "ghcr.io/steppo/steppo-learner-gpu", cmd: "learner", port: "9464" },
};

interface Instruction {
  cmd: string;
  args: string;
  line: number;
}

interface Stage {
  index: number;
  /** The base: an image reference, or the name of an earlier stage (then `parent` is set). */
  image: string;
  parent?: Stage;
  name?: string;
  line: number;
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
      // A global ARG's default may use the ARGs before it (ARG NODE_IMAGE=node:${NODE_VERSION}-bullseye).
      const eq = ins.args.indexOf("=");
      args[eq < 0 ? ins.args : ins.args.slice(0, eq)] = eq < 0 ? "" : subst(ins.args.slice(eq + 1));
    } else if (ins.cmd === "FROM") {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      assert.ok(m, `line ${ins.line}: FROM ${ins.args}`);
      const image = subst(m[1]);
      const name = m[2]?.toLowerCase();
      assert.ok(name === undefined || !stages.some((s) => s.name === name), `line ${ins.line}: stage name ${name} is unique`);
      // As docker resolves a FROM: an earlier stage's name wins over an image of that name.
      const parent = stages.find((s) => s.name === image.toLowerCase());
      stages.push({ index: stages.length, image, parent, name, line: ins.line, instructions: [] });
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
  return stage.instructions.filter((i) => i.cmd === "COPY" || i.cmd === "ADD").map((i) => copyOf(i));
}

function copyOf(i: Instruction): Copy {
  assert.equal(i.cmd, "COPY", `line ${i.line}: use COPY, not ADD`);
  const words = i.args.split(" ");
  let from: string | undefined;
  while (words[0].startsWith("--")) {
    const flag = words.shift() as string;
    if (flag.startsWith("--from=")) from = flag.slice("--from=".length).toLowerCase();
  }
  assert.ok(!words[0].startsWith("["), `line ${i.line}: COPY in JSON form is not handled by this check`);
  assert.ok(!words[0].startsWith("<<"), `line ${i.line}: COPY of a heredoc is not handled by this check`);
  const dest = words.pop() as string;
  return { from, sources: words, dest, line: i.line };
}

/** The stage `--target name` builds. */
function stageNamed(df: Dockerfile, name: string): Stage {
  const s = df.stages.find((x) => x.name === name);
  assert.ok(s, `a stage named ${name} (docker build --target ${name})`);
  return s;
}

/** The stage a COPY --from names: an earlier stage, by name or index (this Dockerfile copies from no image). */
function fromStage(df: Dockerfile, stage: Stage, c: Copy): Stage {
  const s = /^\d+$/.test(c.from ?? "") ? df.stages[Number(c.from)] : df.stages.find((x) => x.name === c.from);
  assert.ok(s && s.index < stage.index, `line ${c.line}: COPY --from=${c.from} names an earlier stage`);
  return s;
}

/** A stage's FROM chain, its root (the stage on an image) first. */
function fromChain(stage: Stage): Stage[] {
  const chain: Stage[] = [];
  for (let s: Stage | undefined = stage; s; s = s.parent) chain.unshift(s);
  return chain;
}

/** Every stage building `target` needs: its FROM chain and, recursively, the stages it copies from. In file order. */
function needed(df: Dockerfile, target: Stage): Stage[] {
  const seen = new Set<Stage>();
  const visit = (s: Stage) => {
    if (seen.has(s)) return;
    seen.add(s);
    if (s.parent) visit(s.parent);
    for (const c of copies(s)) if (c.from !== undefined) visit(fromStage(df, s, c));
    for (const i of s.instructions) assert.ok(!/--mount=\S*from=/.test(i.args), `line ${i.line}: RUN --mount=from is not handled by this check`);
  };
  visit(target);
  return [...seen].sort((a, b) => a.index - b.index);
}

interface ImageConfig {
  user?: string;
  workdir: string;
  entrypoint?: string[];
  cmd?: string[];
  expose: string[];
}

function jsonArray(i: Instruction): string[] {
  const v = JSON.parse(i.args) as unknown;
  assert.ok(Array.isArray(v) && v.every((x) => typeof x === "string"), `line ${i.line}: ${i.cmd} in exec (JSON) form`);
  return v as string[];
}

/** The image config a stage ends with, as docker inherits it along the FROM chain (from the base image: nothing checked). */
function imageConfig(stage: Stage): ImageConfig {
  const c: ImageConfig = { workdir: "/", expose: [] };
  for (const s of fromChain(stage)) {
    for (const i of s.instructions) {
      if (i.cmd === "USER") c.user = i.args;
      else if (i.cmd === "WORKDIR") c.workdir = posix.resolve(c.workdir, i.args);
      else if (i.cmd === "EXPOSE") c.expose.push(...i.args.split(" "));
      else if (i.cmd === "CMD") c.cmd = jsonArray(i);
      else if (i.cmd === "ENTRYPOINT") {
        c.entrypoint = jsonArray(i);
        c.cmd = undefined; // an ENTRYPOINT resets the CMD a stage inherits
      }
    }
  }
  return c;
}

function runs(stages: Stage[]): Instruction[] {
  return stages.flatMap((s) => s.instructions.filter((i) => i.cmd === "RUN"));
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

/** Every source file `steppo` can load: relative imports (static and dynamic) followed from bin/steppo.mjs (or another start). */
function importGraph(start = "bin/steppo.mjs"): { files: string[]; packages: Set<string> } {
  const seen = new Set<string>();
  const packages = new Set<string>();
  const todo = [join(REPO, start)];
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

/** The source folders: what tsconfig.json type-checks, less the tests, benchmarks and examples. */
function sourceFolders(): string[] {
  const ts = JSON.parse(readFileSync(join(REPO, "tsconfig.json"), "utf8")) as { include: string[] };
  return ts.include.filter((d) => !["test", "bench", "examples"].includes(d));
}

function dockerfile(): Dockerfile {
  return parseDockerfile(readFileSync(join(REPO, DOCKERFILE), "utf8"));
}

// ---------------------------------------------------------------------------------------------------------
// The filesystem a target ends with, rebuilt under a temporary directory.

interface Layout {
  root: string;
  config: ImageConfig;
  /** The root's path of an absolute path in the image. */
  at(p: string): string;
}

const temporary: string[] = [];
after(() => {
  for (const d of temporary) rmSync(d, { recursive: true, force: true });
});

/**
 * Replays the stage's FROM chain into a fresh directory: WORKDIR, COPY from the context (less what
 * .dockerignore keeps out), COPY --from another stage (replayed in its own directory) and, of the RUN lines,
 * `chmod MODE PATH`, `ln -s TARGET LINK` and `node bin/build.mjs` (run, in the stage's working directory).
 * What no replayed line makes stands in as follows: node_modules that a stage's `npm ci` installs is this
 * checkout's (dev tools included; a test below checks that the sources import production dependencies only),
 * and a file a stage's base image holds (the node binary) is this process's node, on PATH.
 */
function replay(df: Dockerfile, stage: Stage, cache = new Map<Stage, Layout>()): Layout {
  const done = cache.get(stage);
  if (done) return done;
  const root = mkdtempSync(join(tmpdir(), `steppo-image-${stage.name ?? stage.index}-`));
  temporary.push(root);
  const at = (p: string) => join(root, p);
  const patterns = ignorePatterns();
  const chain = fromChain(stage);
  let wd = "/";
  const copyInto = (from: string, sources: string[], dest: string, filter?: (src: string) => boolean) => {
    const to = posix.resolve(wd, dest);
    const intoDir = sources.length > 1 || dest.endsWith("/");
    for (const s of sources) {
      const src = join(from, s);
      assert.ok(existsSync(src), `COPY ${s} ${dest}: no such file`);
      // A directory's contents are copied, not the directory itself.
      const target = statSync(src).isDirectory() || !intoDir ? at(to) : at(posix.join(to, posix.basename(s)));
      mkdirSync(dirname(target), { recursive: true });
      cpSync(src, target, { recursive: true, verbatimSymlinks: true, filter });
    }
  };
  for (const s of chain) {
    for (const i of s.instructions) {
      if (i.cmd === "WORKDIR") {
        wd = posix.resolve(wd, i.args);
        mkdirSync(at(wd), { recursive: true });
      } else if (i.cmd === "COPY" || i.cmd === "ADD") {
        const c = copyOf(i);
        if (c.from === undefined) {
          const filter = (src: string) => !ignored(relative(REPO, src), patterns);
          copyInto(REPO, c.sources, c.dest, filter);
          continue;
        }
        const source = fromStage(df, s, c);
        const built = replay(df, source, cache);
        for (const p of c.sources) {
          if (existsSync(built.at(p))) {
            copyInto(built.root, [p], c.dest);
            continue;
          }
          const installs = runs(fromChain(source)).some((r) => r.args.includes("npm ci"));
          if (installs && p === posix.join(built.config.workdir, "node_modules")) {
            const to = at(posix.resolve(wd, c.dest));
            mkdirSync(dirname(to), { recursive: true });
            symlinkSync(join(REPO, "node_modules"), to);
          } else {
            assert.ok(
              source.parent === undefined && source.instructions.length === 0,
              `line ${c.line}: COPY --from=${c.from} ${p}: that stage makes no such file`,
            );
          }
        }
      } else if (i.cmd === "RUN") {
        for (const part of i.args.split("&&").map((x) => x.trim())) {
          const ln = /^ln -s (\S+) (\S+)$/.exec(part);
          if (ln) {
            mkdirSync(dirname(at(ln[2])), { recursive: true });
            symlinkSync(posix.isAbsolute(ln[1]) ? at(ln[1]) : ln[1], at(ln[2]));
          }
          const chmod = /^chmod ([0-7]{3,4}) (\S+)$/.exec(part);
          if (chmod) chmodSync(at(posix.resolve(wd, chmod[2])), Number.parseInt(chmod[1], 8));
          if (part === "node bin/build.mjs") {
            assert.ok(
              runs(chain).some((r) => r.args.includes("npm ci")),
              `line ${i.line}: the build runs on a stage with node_modules (npm ci)`,
            );
            if (!existsSync(at(posix.join(wd, "node_modules")))) symlinkSync(join(REPO, "node_modules"), at(posix.join(wd, "node_modules")));
            const b = spawnSync(process.execPath, ["bin/build.mjs"], { cwd: at(wd), encoding: "utf8", timeout: 120_000 });
            assert.equal(b.status, 0, `line ${i.line}: ${part}: ${b.stderr}${b.error ?? ""}`);
          }
        }
      }
    }
  }
  const layout = { root, config: imageConfig(stage), at };
  cache.set(stage, layout);
  return layout;
}

const layouts = new Map<string, Layout>();
function layoutOf(target: string): Layout {
  let l = layouts.get(target);
  if (!l) {
    const df = dockerfile();
    l = replay(df, stageNamed(df, target));
    layouts.set(target, l);
  }
  return l;
}

// ---------------------------------------------------------------------------------------------------------

test(`${DOCKERFILE}: one stage per target, each stage used by a target, operator the default (last) target; no Dockerfile elsewhere`, () => {
  const df = dockerfile();
  const targets = Object.keys(TARGETS).map((t) => stageNamed(df, t));
  const used = new Set(targets.flatMap((t) => needed(df, t)));
  for (const s of df.stages) assert.ok(used.has(s), `line ${s.line}: stage ${s.name ?? s.index} is built by no target`);
  for (const t of targets) {
    const others = targets.filter((x) => x !== t).flatMap((x) => needed(df, x));
    assert.ok(!others.includes(t), `target ${t.name} is not also a stage of another target`);
  }
  assert.equal(df.stages[df.stages.length - 1].name, "operator", "`docker build .` builds the operator image");
  for (const dir of sourceFolders())
    assert.ok(!existsSync(join(REPO, dir, "Dockerfile")), `${dir}/Dockerfile: the images are targets of the one ${DOCKERFILE}`);
});

for (const [target, want] of Object.entries(TARGETS)) {
  test(`${DOCKERFILE} --target ${target}: its stages resolve, COPY sources exist and pass .dockerignore, non-root, ENTRYPOINT steppo, CMD ${want.cmd}`, () => {
    const df = dockerfile();
    const stage = stageNamed(df, target);
    const stages = needed(df, stage);
    assert.ok(stages.length >= 2, "multi-stage");
    const patterns = ignorePatterns();
    for (const s of stages) {
      if (!s.parent) {
        assert.ok(!s.image.includes("$"), `line ${s.line}: FROM ${s.image} resolved`);
        assert.ok(s.image === "scratch" || /^[\w./-]+:[\w.-]+$/.test(s.image), `line ${s.line}: FROM ${s.image} is pinned to a tag`);
      }
      for (const c of copies(s)) {
        if (c.from !== undefined) {
          fromStage(df, s, c);
          continue;
        }
        for (const src of c.sources) {
          assert.ok(!src.includes("*") && !src.startsWith("/") && !src.includes(".."), `line ${c.line}: plain relative source ${src}`);
          assert.ok(existsSync(join(REPO, src)), `line ${c.line}: COPY ${src}: no such file in the build context (the repository root)`);
          assert.ok(!ignored(src, patterns), `line ${c.line}: COPY ${src} is excluded by .dockerignore`);
        }
      }
    }
    const config = imageConfig(stage);
    assert.ok(config.user, "the target sets USER");
    assert.match(config.user, /^[1-9]\d*:[1-9]\d*$/, "a numeric non-root uid:gid (runAsNonRoot can verify it)");
    assert.equal(config.user, "65532:65532");
    assert.deepEqual(config.entrypoint, ["steppo"]);
    assert.equal(config.workdir, "/app");
    assert.deepEqual(config.cmd, [want.cmd]);
    assert.deepEqual(config.expose, [want.port]);
    // On the target's own base (its FROM chain): /etc/passwd and /usr/local/bin are the base's.
    const chain = fromChain(stage);
    assert.ok(
      runs(chain).some((i) => i.args.includes("ln -s /app/bin/steppo.mjs /usr/local/bin/steppo")),
      "steppo on PATH, on the target's base",
    );
    assert.ok(
      runs(chain).some((i) => /useradd --uid 65532 --gid 65532/.test(i.args)),
      "the user exists in /etc/passwd (node and tools that look up the uid), on the target's base",
    );
    // Production dependencies only: node_modules from a stage on the deps stage, which runs npm ci --omit=dev.
    const deps = stageNamed(df, "deps");
    assert.ok(runs([deps]).some((i) => i.args.includes("npm ci --omit=dev")));
    const modules = chain.flatMap((s) => copies(s).map((c) => ({ s, c }))).filter(({ c }) => c.sources.join() === "/app/node_modules");
    assert.equal(modules.length, 1, "node_modules copied once");
    assert.ok(fromChain(fromStage(df, modules[0].s, modules[0].c)).includes(deps), "node_modules from the deps stage (or one on it)");
    // The build command the Dockerfile's header and docs/kubernetes.md give.
    const command = new RegExp(`docker build --target ${target} +-t ${want.image.replace(/\./g, "\\.")}:\\S+ \\.$`, "m");
    for (const doc of [DOCKERFILE, "docs/kubernetes.md"]) assert.ok(command.test(readFileSync(join(REPO, doc), "utf8")), `${doc} gives ${command.source}`);
  });
}

test(`${DOCKERFILE}: the base images are build arguments, the public node images by default; the test setup builds --target operator with its own`, () => {
  const df = dockerfile();
  // The global ARGs, their defaults resolved (as docker and buildah do): the public images, pinned to Node 20.
  assert.equal(df.args.NODE_VERSION, "20");
  assert.equal(df.args.NODE_IMAGE, "node:20-bullseye");
  assert.equal(df.args.NODE_SLIM_IMAGE, "node:20-bullseye-slim");
  assert.equal(df.args.RUNTIME_IMAGE, "node:20-bookworm-slim");
  // Every FROM on an image (not scratch, not an earlier stage) names its base by one of those ARGs.
  const raw = readFileSync(join(REPO, DOCKERFILE), "utf8");
  const froms = [...raw.matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?\s*$/gim)].map((m) => ({ image: m[1], name: m[2]?.toLowerCase() }));
  assert.equal(froms.length, df.stages.length);
  const stageNames = new Set(df.stages.map((s) => s.name).filter(Boolean));
  const argOf = new Map<string, string>();
  for (const f of froms) {
    if (f.image === "scratch" || stageNames.has(f.image.toLowerCase())) continue;
    const m = /^\$\{(\w+)\}$/.exec(f.image);
    assert.ok(m, `FROM ${f.image} AS ${f.name}: the base is a build argument (FROM \${NAME})`);
    assert.ok(m[1] in df.args, `ARG ${m[1]} is declared before the first FROM`);
    if (f.name) argOf.set(f.name, m[1]);
  }
  assert.deepEqual(Object.fromEntries(argOf), { deps: "NODE_IMAGE", node: "NODE_SLIM_IMAGE", cpu: "RUNTIME_IMAGE", "learner-gpu": "CUDA_IMAGE" });
  // The CPU targets are built on NODE_IMAGE and RUNTIME_IMAGE only: those two build arguments replace every base.
  for (const t of ["operator", "worker"]) {
    const roots = needed(df, stageNamed(df, t)).filter((s) => !s.parent && s.image !== "scratch");
    assert.deepEqual(roots.map((s) => s.name).sort(), ["cpu", "deps"], t);
  }
  // test/cluster/images.ts builds the steppo image from this Dockerfile, with buildah, on its local base.
  const images = readFileSync(join(REPO, "test", "cluster", "images.ts"), "utf8");
  for (const arg of [
    /"bud"/,
    /"--target",\s*"operator"/,
    /`NODE_IMAGE=\$\{LOCAL_NODE_IMAGE\}`/,
    /`RUNTIME_IMAGE=\$\{LOCAL_NODE_IMAGE\}`/,
    /join\(ROOT, "Dockerfile"\)/,
  ])
    assert.match(images, arg, "test/cluster/images.ts passes it");
});

test("the GPU learner: tfjs-node-gpu at the installed tfjs version on the CUDA 11.2 base; the CPU targets never pull it", () => {
  const df = dockerfile();
  const gpu = needed(df, stageNamed(df, "learner-gpu"));
  const base = fromChain(stageNamed(df, "learner-gpu"))[0].image;
  assert.match(base, /^nvidia\/cuda:11\.2\.\d+-cudnn8-runtime-ubuntu20\.04$/, "CUDA 11.2 + cuDNN 8 (libtensorflow 2.9.1)");
  const tfjs = JSON.parse(readFileSync(join(REPO, "node_modules", "@tensorflow", "tfjs", "package.json"), "utf8")) as { version: string };
  assert.ok(
    runs(gpu).some((i) => new RegExp(`@tensorflow/tfjs-node-gpu@${tfjs.version.replace(/\./g, "\\.")}\\b`).test(i.args)),
    "tfjs-node-gpu at the installed tfjs version",
  );
  // The learner's backend selection tries the GPU binding first.
  assert.match(readFileSync(join(REPO, "policy", "backend.ts"), "utf8"), /"@tensorflow\/tfjs-node-gpu"/);
  for (const t of ["operator", "worker"]) {
    const stages = needed(df, stageNamed(df, t));
    assert.ok(!stages.some((s) => s.image.startsWith("nvidia/")), `${t}: no CUDA base`);
    assert.ok(!runs(stages).some((i) => i.args.includes("tfjs-node-gpu")), `${t}: no tfjs-node-gpu`);
  }
});

test("the sources and the build script import production dependencies only", () => {
  const packages = new Set([...importGraph().packages, ...importGraph("bin/build.mjs").packages]);
  assert.ok(packages.has("esbuild") && packages.has("tsx"), [...packages].join(" "));
  const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as {
    dependencies: Record<string, string>;
    optionalDependencies?: Record<string, string>;
  };
  const production = new Set([...Object.keys(pkg.dependencies), ...Object.keys(pkg.optionalDependencies ?? {})]);
  for (const p of packages) assert.ok(production.has(p), `the sources import ${p}, which npm ci --omit=dev does not install`);
});

for (const [target, want] of Object.entries(TARGETS)) {
  test(`${DOCKERFILE} --target ${target}: holds the build of every source folder and of every file steppo loads, no TypeScript sources`, () => {
    const { files } = importGraph();
    assert.ok(
      files.includes("operator/cli.ts") && files.includes("runtime/learner-process.ts") && files.includes("runtime/worker-process.ts"),
      files.join(" "),
    );
    const layout = layoutOf(target);
    const app = layout.config.workdir;
    assert.ok(existsSync(layout.at(posix.join(app, "bin", "steppo.mjs"))), `${target}: the launcher bin/steppo.mjs`);
    for (const dir of sourceFolders().filter((d) => d !== "bin")) {
      assert.ok(existsSync(layout.at(posix.join(app, "dist", dir))), `${target}: the build of the source folder ${dir}/ is not in ${app}/dist`);
      assert.ok(!existsSync(layout.at(posix.join(app, dir))), `${target}: the TypeScript sources of ${dir}/ are in the image (it runs the build)`);
    }
    const patterns = ignorePatterns();
    for (const f of files) assert.ok(!ignored(f, patterns), `${f} is excluded by .dockerignore`);
    // The launcher as it is; each TypeScript module as its build; what the build adds (the launcher of the build,
    // the version cli/main reads, the dashboard's static files, the build id).
    const built = files.map((f) => (f.startsWith("bin/") ? f : posix.join("dist", f.replace(/\.ts$/, ".js"))));
    const extra = ["package.json", "dist/package.json", "dist/bin/steppo.mjs", "dist/BUILD_ID", "dist/runtime/dashboard/static/index.html"];
    for (const f of [...built, ...extra]) assert.ok(existsSync(layout.at(posix.join(app, f))), `${target}: ${f} is loaded by steppo but not in the image`);
  });

  test(`${DOCKERFILE} --target ${target}: the rebuilt filesystem runs steppo through the ENTRYPOINT`, () => {
    const layout = layoutOf(target);
    const { config, at, root } = layout;
    assert.ok(config.entrypoint);
    // No TypeScript sources next to bin/: the launcher runs the build (bin/build-id.mjs, chooseRuntime).
    assert.ok(!existsSync(at(posix.join(config.workdir, "cli", "main.ts"))) && existsSync(at(posix.join(config.workdir, "dist", "cli", "main.js"))));
    const link = "/usr/local/bin/steppo";
    assert.ok(existsSync(at(link)), `${link} (the ln -s line)`);
    assert.ok(statSync(at(link)).mode & 0o111, `${link} is executable (the shebang runs it)`);
    const env = { PATH: `${at("/usr/local/bin")}:${dirname(process.execPath)}:/usr/bin:/bin`, HOME: root, TMPDIR: tmpdir() };
    const cwd = at(config.workdir);
    const [cmd, ...rest] = config.entrypoint;
    const steppo = (...args: string[]) => spawnSync(cmd, [...rest, ...args], { cwd, env, encoding: "utf8", timeout: 60_000 });
    const help = steppo("--help");
    assert.equal(help.status, 0, `${cmd} --help: ${help.stderr}${help.error ?? ""}`);
    assert.match(help.stdout, /usage: steppo <command>/);
    for (const sub of ["operator", "learner", "worker"]) assert.match(help.stdout, new RegExp(`^ {2}${sub}\\b`, "m"), sub);
    // The default command (CMD) is one steppo knows.
    const own = steppo(...(config.cmd ?? []), "--help");
    assert.equal(own.status, 0, `${cmd} ${config.cmd?.join(" ")} --help: ${own.stderr}`);
    assert.match(own.stdout, new RegExp(`^ {2}${want.cmd}\\b`, "m"));
    const job = join(root, "job.yaml");
    cpSync(join(REPO, "examples", "quickstart.yaml"), job);
    const validate = steppo("validate", job);
    assert.equal(validate.status, 0, `${cmd} validate: ${validate.stderr}`);
    assert.equal((JSON.parse(validate.stdout) as { metadata: { name: string } }).metadata.name, "quickstart");
  });
}
