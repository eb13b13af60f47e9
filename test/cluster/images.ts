// The container images a test node runs, built on this machine (no registry can be pulled from) and cached as
// docker-archive tarballs in $STEPPO_CACHE_DIR/images (default ~/.cache/steppo/images), which node.ts imports
// into containerd's k8s.io namespace:
//   steppo.local/pause:busybox   the pods' sandbox image: Debian's busybox-static running `sleep` (buildah,
//                                from scratch: one file)
//   ghcr.io/steppo/steppo:0.1.0  the steppo image (the chart's default, so `helm install` needs no image
//                                values): a Debian bookworm minbase root filesystem (mmdebstrap, Debian packages
//                                only: the nodesource apt source is not reachable from this VM), this
//                                machine's node binary, and what the Dockerfile's cpu stage holds in /app —
//                                package.json, bin/, the JavaScript build dist/ (`npm run build`) and the
//                                production node_modules (the lockfile's non-dev entries, copied from this
//                                checkout's node_modules: `npm ci` in a build needs the npm registry); the
//                                non-root user 65532, `steppo` on PATH, ENTRYPOINT steppo, CMD operator.
// It is assembled with buildah (from scratch, add, copy, config, commit: no RUN, so no container runtime is
// needed to build) instead of `buildah bud` on the Dockerfile, whose stages start from the public node images
// and run `npm ci`, neither possible without network. Each image is rebuilt only when its inputs change.
// Needs root and the Debian packages buildah, busybox-static and mmdebstrap (installed with apt-get if missing).
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { cacheDir, defaultLogger, type Logger } from "./binaries.ts";
import { PAUSE_IMAGE } from "./node.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const STEPPO_IMAGE = `ghcr.io/steppo/steppo:${(JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version}`;
export const STEPPO_UID = 65532;
const BASE_SUITE = "bookworm";
const BASE_MIRROR = "deb http://deb.debian.org/debian bookworm main";

function imagesDir(): string {
  const d = join(cacheDir(), "images");
  mkdirSync(d, { recursive: true });
  return d;
}

function sh(cmd: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", cwd: opts.cwd, timeout: opts.timeoutMs ?? 600_000, maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0)
    throw new Error(
      `${cmd} ${args.join(" ")} failed (exit ${r.status ?? r.signal}): ${(r.stderr || r.stdout || r.error?.message || "").trim().split("\n").slice(-10).join("\n")}`,
    );
  return r.stdout.trim();
}

/** buildah, busybox-static and mmdebstrap from Debian (apt-get as root) when missing. */
export function ensureImageTools(log: Logger = defaultLogger): void {
  const need = [
    ["buildah", "/usr/bin/buildah"],
    ["busybox-static", "/bin/busybox"],
    ["mmdebstrap", "/usr/bin/mmdebstrap"],
  ]
    .filter(([, path]) => !existsSync(path))
    .map(([pkg]) => pkg);
  if (need.length === 0) return;
  if (process.getuid?.() !== 0)
    throw new Error(`building the test images needs the Debian packages ${need.join(", ")} (apt-get install -y ${need.join(" ")}, as root)`);
  log(`apt-get install -y ${need.join(" ")}`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  let r = spawnSync("apt-get", ["install", "-y", "--no-install-recommends", ...need], { encoding: "utf8", env, timeout: 600_000 });
  if (r.status !== 0) {
    spawnSync("apt-get", ["update"], { encoding: "utf8", env, timeout: 600_000 });
    r = spawnSync("apt-get", ["install", "-y", "--no-install-recommends", ...need], { encoding: "utf8", env, timeout: 600_000 });
  }
  if (r.status !== 0) throw new Error(`apt-get install -y ${need.join(" ")} failed: ${(r.stderr || r.stdout).trim().split("\n").slice(-5).join(" | ")}`);
}

/** Runs `fn` with a buildah whose storage (vfs: no mounts) lives in a temp dir, removed afterwards. */
function withBuildah<T>(fn: (buildah: (args: string[]) => string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), "steppo-buildah-"));
  const base = ["--root", join(dir, "root"), "--runroot", join(dir, "run"), "--storage-driver", "vfs"];
  try {
    return fn((args) => sh("buildah", [...base, ...args]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function commitArchive(buildah: (args: string[]) => string, container: string, name: string, out: string): void {
  buildah(["commit", "--quiet", "--format", "docker", container, name]);
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { force: true });
  buildah(["push", "--quiet", name, `docker-archive:${tmp}:${name}`]);
  renameSync(tmp, out);
}

/** The sandbox image (PAUSE_IMAGE) as a docker-archive, built once. */
export function ensurePauseImage(log: Logger = defaultLogger): string {
  ensureImageTools(log);
  const busybox = readFileSync("/bin/busybox");
  const key = createHash("sha256").update(busybox).digest("hex").slice(0, 16);
  const out = join(imagesDir(), `pause-${key}.tar`);
  if (existsSync(out)) return out;
  log(`building ${PAUSE_IMAGE} (busybox-static, buildah)`);
  withBuildah((buildah) => {
    const c = buildah(["from", "scratch"]);
    buildah(["copy", c, "/bin/busybox", "/bin/busybox"]);
    // The sandbox only holds the pod's namespaces; as PID 1 it ignores SIGTERM and is SIGKILLed at stop.
    buildah(["config", "--entrypoint", '["/bin/busybox","sleep","2147483647"]', "--user", "65535:65535", c]);
    commitArchive(buildah, c, PAUSE_IMAGE, out);
  });
  return out;
}

/** Debian bookworm minbase (mmdebstrap) with the steppo user, as a tarball; built once per machine. */
function ensureBaseRootfs(log: Logger): string {
  const packages = ["ca-certificates", "libstdc++6"];
  const hook = [
    `echo 'steppo:x:${STEPPO_UID}:' >> "$1/etc/group"`,
    `echo 'steppo:x:${STEPPO_UID}:${STEPPO_UID}::/nonexistent:/usr/sbin/nologin' >> "$1/etc/passwd"`,
    'rm -rf "$1/var/cache/apt/"* "$1/var/lib/apt/lists/"* "$1/usr/share/doc" "$1/usr/share/man"',
  ];
  const key = createHash("sha256")
    .update(JSON.stringify([BASE_SUITE, BASE_MIRROR, packages, hook]))
    .digest("hex")
    .slice(0, 16);
  const out = join(imagesDir(), `base-${BASE_SUITE}-${key}.tar`);
  if (existsSync(out)) return out;
  const t0 = Date.now();
  log(`mmdebstrap: Debian ${BASE_SUITE} minbase + ${packages.join(", ")} (the steppo image's base; once per machine)`);
  const tmp = `${out}.tmp-${process.pid}`;
  sh(
    "nice",
    [
      "-n",
      "19",
      "mmdebstrap",
      "--quiet",
      "--format=tar", // the temp name does not end in .tar
      "--variant=minbase",
      `--include=${packages.join(",")}`,
      ...hook.map((h) => `--customize-hook=${h}`),
      BASE_SUITE,
      tmp,
      BASE_MIRROR,
    ],
    {
      timeoutMs: 900_000,
    },
  );
  renameSync(tmp, out);
  log(`base root filesystem ready in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${out}`);
  return out;
}

/** `npm run build` when dist/ is missing or not the build of these sources (its BUILD_ID). */
function ensureDist(log: Logger): string {
  const id = sh(process.execPath, ["-e", "import('./bin/build-id.mjs').then(m => console.log(m.buildId(process.cwd())))"], { cwd: ROOT });
  const current = existsSync(join(ROOT, "dist", "BUILD_ID")) ? readFileSync(join(ROOT, "dist", "BUILD_ID"), "utf8").trim() : "";
  if (current !== id) {
    log("npm run build (dist/ is not the build of these sources)");
    sh(process.execPath, [join(ROOT, "bin", "build.mjs")], { cwd: ROOT });
  }
  return id;
}

/** The production dependencies: the lockfile's node_modules entries not marked dev, that this checkout has. */
function productionModules(): string[] {
  const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as { packages: Record<string, { dev?: boolean }> };
  return Object.entries(lock.packages)
    .filter(([path, p]) => path.startsWith("node_modules/") && !p.dev)
    .map(([path]) => path)
    .filter((path) => existsSync(join(ROOT, path)))
    .sort();
}

/** The steppo image (STEPPO_IMAGE) as a docker-archive, rebuilt when the sources, lockfile or node change. */
export function ensureSteppoImage(log: Logger = defaultLogger): string {
  ensureImageTools(log);
  const base = ensureBaseRootfs(log);
  const buildId = ensureDist(log);
  const node = realpathSync(process.execPath);
  const modules = productionModules();
  const key = createHash("sha256")
    .update(JSON.stringify([base, buildId, readFileSync(join(ROOT, "package-lock.json"), "utf8"), node, process.version, modules]))
    .digest("hex")
    .slice(0, 16);
  const out = join(imagesDir(), `steppo-${key}.tar`);
  if (existsSync(out)) return out;
  const t0 = Date.now();
  log(`building ${STEPPO_IMAGE} (buildah: ${base}, node ${process.version}, dist/, ${modules.length} production packages)`);
  const stage = mkdtempSync(join(tmpdir(), "steppo-image-"));
  try {
    const app = join(stage, "app");
    mkdirSync(app);
    for (const f of ["package.json", "package-lock.json"]) cpSync(join(ROOT, f), join(app, f));
    cpSync(join(ROOT, "bin"), join(app, "bin"), { recursive: true });
    cpSync(join(ROOT, "dist"), join(app, "dist"), { recursive: true });
    // Outer packages first: a nested entry is copied with its parent.
    const copied: string[] = [];
    for (const m of modules) {
      if (copied.some((c) => m.startsWith(`${c}/`))) continue;
      mkdirSync(dirname(join(app, m)), { recursive: true });
      cpSync(join(ROOT, m), join(app, m), { recursive: true, dereference: false });
      copied.push(m);
    }
    // node, and `steppo` on PATH (the operator's pods run command ["steppo", "learner"|"worker"]).
    const extra = join(stage, "extra");
    mkdirSync(join(extra, "usr", "local", "bin"), { recursive: true });
    cpSync(node, join(extra, "usr", "local", "bin", "node"));
    symlinkSync("/app/bin/steppo.mjs", join(extra, "usr", "local", "bin", "steppo"));
    chmodSync(join(app, "bin", "steppo.mjs"), 0o755);
    withBuildah((buildah) => {
      const c = buildah(["from", "scratch"]);
      buildah(["add", c, base, "/"]);
      buildah(["copy", "--chown", "0:0", c, app, "/app"]);
      buildah(["copy", "--chown", "0:0", c, extra, "/"]);
      buildah([
        "config",
        "--env",
        "NODE_ENV=production",
        "--env",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "--workingdir",
        "/app",
        "--user",
        `${STEPPO_UID}:${STEPPO_UID}`,
        "--port",
        "8080",
        "--port",
        "9464",
        "--entrypoint",
        '["steppo"]',
        "--cmd",
        "operator",
        c,
      ]);
      commitArchive(buildah, c, STEPPO_IMAGE, out);
    });
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
  log(`${STEPPO_IMAGE} built in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${out}`);
  return out;
}
