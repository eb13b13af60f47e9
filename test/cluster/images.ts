// The container images a test node runs, built on this machine (no registry can be pulled from) and cached as
// docker-archive tarballs in $STEPPO_CACHE_DIR/images (default ~/.cache/steppo/images), which node.ts imports
// into containerd's k8s.io namespace:
//   steppo.local/pause:busybox   the pods' sandbox image: Debian's busybox-static running `sleep` (buildah,
//                                from scratch: one file)
//   ghcr.io/steppo/steppo:0.1.0  the steppo image (the chart's default, so `helm install` needs no image
//                                values), built from the repository's Dockerfile (target operator) with
//                                `buildah bud --isolation chroot --network host`, its base images passed as
//                                build arguments: NODE_IMAGE and RUNTIME_IMAGE = a local Node 20 image, a
//                                Debian bookworm minbase root filesystem (mmdebstrap, Debian packages only: the
//                                nodesource apt source is not reachable from this VM) plus this machine's node
//                                binary and its npm. The Dockerfile's RUN steps (npm ci --omit=dev from the npm
//                                registry, node bin/build.mjs, groupadd/useradd) run in buildah's chroot
//                                isolation: runc cannot start a container here (it needs to write
//                                /proc/self/oom_score_adj, see node.ts).
// Each image is rebuilt only when its inputs change. Needs root, the npm registry (npm ci in the build) and
// the Debian packages buildah, busybox-static and mmdebstrap (installed with apt-get if missing).
import { aptInstall } from "../support/system.ts";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
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
  const r = spawnSync(cmd, args, { encoding: "utf8", cwd: opts.cwd, timeout: opts.timeoutMs ?? 600_000, maxBuffer: 256 * 1024 * 1024 });
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
  aptInstall(need, "building the test images", log);
}

/** Runs `fn` with a buildah whose storage (vfs: no mounts) lives in a temp dir, removed afterwards. */
function withBuildah<T>(fn: (buildah: (args: string[], opts?: { cwd?: string; timeoutMs?: number }) => string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), "steppo-buildah-"));
  const base = ["--root", join(dir, "root"), "--runroot", join(dir, "run"), "--storage-driver", "vfs"];
  try {
    return fn((args, opts) => sh("buildah", [...base, ...args], opts));
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

/**
 * Debian bookworm minbase (mmdebstrap) as a tarball, built once per machine: the root filesystem of the local
 * Node 20 base image (node's libstdc++, CA certificates for npm, passwd for the Dockerfile's useradd).
 */
function ensureBaseRootfs(log: Logger): string {
  const packages = ["ca-certificates", "libstdc++6", "passwd"];
  const hook = ['rm -rf "$1/var/cache/apt/"* "$1/var/lib/apt/lists/"* "$1/usr/share/doc" "$1/usr/share/man"'];
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

/** Every file under dir (relative paths, sorted), for the cache key. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

/** npm of this machine's node (a nodesource-style /usr/lib/node_modules/npm), copied into the local base image. */
function npmDir(node: string): string {
  for (const d of [join(dirname(dirname(node)), "lib", "node_modules", "npm"), "/usr/lib/node_modules/npm", "/usr/share/nodejs/npm"])
    if (existsSync(join(d, "bin", "npm-cli.js"))) return d;
  throw new Error(`no npm next to ${node} (the local base image needs npm for the Dockerfile's npm ci)`);
}

/** The hash of what the Dockerfile's operator target is built from: the Dockerfile, .dockerignore and the context files it copies. */
function contextKey(): string {
  const h = createHash("sha256");
  const files = ["Dockerfile", ".dockerignore", "package.json", "package-lock.json", "tsconfig.json", ...filesUnder(join(ROOT, "bin")).map((f) => `bin/${f}`)];
  for (const f of files)
    h.update(`${f}\0`)
      .update(readFileSync(join(ROOT, f)))
      .update("\0");
  // The source folders the build stage copies and compiles (the same hash as dist/BUILD_ID).
  h.update(sh(process.execPath, ["-e", "import('./bin/build-id.mjs').then(m => console.log(m.buildId(process.cwd())))"], { cwd: ROOT }));
  return h.digest("hex");
}

const HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

/** The local Node 20 image the Dockerfile is built on (its NODE_IMAGE and RUNTIME_IMAGE). */
export const LOCAL_NODE_IMAGE = "localhost/steppo-node:20-bookworm";

/**
 * The steppo image (STEPPO_IMAGE) as a docker-archive: `buildah bud --target operator` of the repository's
 * Dockerfile on the local Node 20 base; rebuilt when the Dockerfile, its context files, the base or node change.
 */
export function ensureSteppoImage(log: Logger = defaultLogger): string {
  ensureImageTools(log);
  const base = ensureBaseRootfs(log);
  const node = realpathSync(process.execPath);
  const npm = npmDir(node);
  const npmVersion = (JSON.parse(readFileSync(join(npm, "package.json"), "utf8")) as { version: string }).version;
  // This machine's CA bundle: the npm registry is reached through an egress proxy whose CA only the host's
  // bundle has (Debian's alone gives npm ci SELF_SIGNED_CERT_IN_CHAIN).
  const caBundle = readFileSync(HOST_CA_BUNDLE);
  const key = createHash("sha256")
    .update(JSON.stringify([base, node, process.version, npmVersion, contextKey()]))
    .update(caBundle)
    .digest("hex")
    .slice(0, 16);
  const out = join(imagesDir(), `steppo-${key}.tar`);
  if (existsSync(out)) return out;
  const t0 = Date.now();
  log(
    `building ${STEPPO_IMAGE} from the Dockerfile (buildah bud --target operator on ${LOCAL_NODE_IMAGE}: ${base}, node ${process.version}, npm ${npmVersion})`,
  );
  withBuildah((buildah) => {
    // The local base: Debian + node + npm where the official node images have them (/usr/local).
    const c = buildah(["from", "scratch"]);
    buildah(["add", c, base, "/"]);
    buildah(["copy", "--chown", "0:0", c, node, "/usr/local/bin/node"]);
    buildah(["copy", "--chown", "0:0", c, npm, "/usr/local/lib/node_modules/npm"]);
    // npm in the build trusts what this machine trusts (its global npmrc: /usr/local/etc/npmrc).
    buildah(["copy", "--chown", "0:0", c, HOST_CA_BUNDLE, "/etc/ssl/certs/ca-certificates.crt"]);
    const mnt = buildah(["mount", c]);
    try {
      for (const [name, target] of [
        ["npm", "../lib/node_modules/npm/bin/npm-cli.js"],
        ["npx", "../lib/node_modules/npm/bin/npx-cli.js"],
      ])
        sh("ln", ["-sf", target, join(mnt, "usr", "local", "bin", name)]);
      mkdirSync(join(mnt, "usr", "local", "etc"), { recursive: true });
      writeFileSync(join(mnt, "usr", "local", "etc", "npmrc"), "cafile=/etc/ssl/certs/ca-certificates.crt\n");
    } finally {
      buildah(["umount", c]);
    }
    buildah(["config", "--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "--cmd", "node", c]);
    buildah(["commit", "--quiet", "--format", "docker", c, LOCAL_NODE_IMAGE]);
    buildah(["rm", c]);
    const t1 = Date.now();
    buildah(
      [
        "bud",
        "--isolation",
        "chroot",
        "--network",
        "host",
        "--pull-never",
        "--layers=false",
        "--format",
        "docker",
        "--target",
        "operator",
        "--build-arg",
        `NODE_IMAGE=${LOCAL_NODE_IMAGE}`,
        "--build-arg",
        `RUNTIME_IMAGE=${LOCAL_NODE_IMAGE}`,
        "-t",
        STEPPO_IMAGE,
        "-f",
        join(ROOT, "Dockerfile"),
        ROOT,
      ],
      { timeoutMs: 1_800_000 },
    );
    log(`buildah bud --target operator: ${((Date.now() - t1) / 1000).toFixed(0)} s`);
    const tmp = `${out}.tmp-${process.pid}`;
    rmSync(tmp, { force: true });
    buildah(["push", "--quiet", STEPPO_IMAGE, `docker-archive:${tmp}:${STEPPO_IMAGE}`]);
    renameSync(tmp, out);
  });
  log(`${STEPPO_IMAGE} built in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${out}`);
  return out;
}
