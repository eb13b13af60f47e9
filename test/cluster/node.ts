// A REAL node for the test cluster: kubelet (built like the control plane, binaries.ts) with containerd as its
// container runtime (CRI), runc, and CNI (bridge + host-local from the Debian package containernetworking-plugins).
//   const node = await startNode(cluster);   // cluster from startTestCluster({ address: hostAddress() })
//   ... pods run as containers; node.importImage(archive) makes a locally built image available ...
//   await node.stop();                       // also run by the exit hooks, and by a later startNode after a crash
// Everything lives in a temp dir (containerd's root, state and socket, runc's root, kubelet's root and certs,
// CNI config and IPAM data, the pods' logs) except what the components fix, which stop() removes:
//   /var/lib/kubelet/device-plugins  kubelet's device-plugin socket dir (not configurable)
//   /var/log/containers              kubelet's symlinks to the containers' logs (not configurable)
//   /run/containerd/s                containerd 1.6's shim sockets (not configurable)
//   /run/netns/cni-*                 the pods' network namespaces (containerd CRI)
//   /var/lib/cni                     libcni's result cache
//   the bridge steppo0, net.ipv4.ip_forward (the bridge plugin sets it; restored), the node's cgroups
// One node per machine: those paths are shared. What this VM needs, and why, is in docs/kubernetes.md.
// Needs root, and the Debian packages containerd, runc and containernetworking-plugins (ensureNodePackages
// installs them with apt-get).
import { aptInstall, pidAlive } from "../support/system.ts";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import yaml from "js-yaml";
import { freePort } from "../support/free-port.ts";
import { defaultLogger, ensureKubelet, type Logger } from "./binaries.ts";
import type { TestCluster } from "./cluster.ts";

export const NODE_NAME = "steppo-node";
export const BRIDGE = "steppo0";
/** The pods' subnet (host-local IPAM on the bridge); the bridge itself is .1. */
export const POD_SUBNET = "10.244.77.0/24";
/** The sandbox ("pause") image every pod runs first; built by images.ts, imported by startNode. */
export const PAUSE_IMAGE = "steppo.local/pause:busybox";

const CGROUP_ROOT = "/sys/fs/cgroup";
const FIXED_DIRS = ["/var/lib/kubelet/device-plugins", "/var/log/containers", "/run/containerd/s", "/var/lib/cni"];
/** Where startNode records what it must undo, so that a later run cleans up after a SIGKILLed one. */
const MARKER = "/run/steppo-node.json";

export interface NodeOptions {
  /** The sandbox image archive (docker-archive) to import; images.ts ensurePauseImage() builds it. */
  pauseImage: string;
  /** More image archives to import before kubelet starts. */
  images?: string[];
  /** nvidia.com/gpu the node advertises as an extended resource (default 0; no device is attached). */
  gpus?: number;
  /** How long to wait for the node to be Ready (default 90 s). */
  readyTimeoutMs?: number;
  log?: Logger;
}

export interface TestNode {
  name: string;
  dir: string;
  /** The node's InternalIP (the machine's interface address). */
  address: string;
  containerdSocket: string;
  logs: { containerd: string; kubelet: string };
  /** Milliseconds from start to the node reporting Ready. */
  readyMs: number;
  /** `ctr -n k8s.io` against this node's containerd. */
  ctr(args: string[]): { code: number; stdout: string; stderr: string };
  /** Imports a docker-archive (or OCI archive) into containerd's k8s.io namespace. */
  importImage(archive: string): void;
  /** The host pid of a container's main process (its CRI id: containerStatuses[].containerID without the scheme). */
  containerPid(containerId: string): number;
  /** Kills every component, pod and shim, unmounts, removes the fixed paths and the directory (unless `keepDir`). */
  stop(opts?: { keepDir?: boolean }): Promise<void>;
}

interface Marker {
  /** The process that started the node: while it lives, the node is its own, and no other may start. */
  pid: number;
  dir: string;
  cgroupName: string;
  ipForward: string;
  createdFixed: string[];
  netnsBefore: string[];
}

/** The machine's own (non-loopback) IPv4 address: kubelet refuses loopback as a node IP. */
export function hostAddress(): string {
  if (process.env.STEPPO_NODE_IP) return process.env.STEPPO_NODE_IP;
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (name === BRIDGE || name.startsWith("veth")) continue;
    const a = addrs?.find((x) => x.family === "IPv4" && !x.internal);
    if (a) return a.address;
  }
  throw new Error("no non-loopback IPv4 address on this machine for the node (set STEPPO_NODE_IP)");
}

function onPath(bin: string): string | undefined {
  for (const d of ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/bin", "/sbin"]) if (existsSync(join(d, bin))) return join(d, bin);
  return undefined;
}

/** containerd, runc and the CNI plugins from Debian, installed with apt-get (as root) when missing. */
export function ensureNodePackages(log: Logger = defaultLogger): void {
  const need: string[] = [];
  if (!onPath("containerd") || !onPath("ctr")) need.push("containerd");
  if (!onPath("runc")) need.push("runc");
  if (!existsSync("/usr/lib/cni/bridge")) need.push("containernetworking-plugins");
  if (!onPath("iptables")) need.push("iptables"); // kubelet probes it at start
  aptInstall(need, "a test node", log);
}

function tailOf(path: string, lines = 30): string {
  try {
    return readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

function run(cmd: string, args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 120_000 });
  return { code: r.status ?? 1, stdout: r.stdout ?? "", stderr: r.stderr || r.error?.message || "" };
}

/** Every cgroup v1 hierarchy (and the unified one) mounted under /sys/fs/cgroup. */
function cgroupHierarchies(): string[] {
  try {
    return readdirSync(CGROUP_ROOT)
      .map((d) => join(CGROUP_ROOT, d))
      .filter((d) => {
        try {
          return statSync(d).isDirectory() && existsSync(join(d, "cgroup.procs"));
        } catch {
          return false;
        }
      });
  } catch {
    return [];
  }
}

function cgroupPids(dir: string): number[] {
  const pids: number[] = [];
  const walk = (d: string) => {
    try {
      for (const p of readFileSync(join(d, "cgroup.procs"), "utf8").split("\n")) if (p.trim()) pids.push(Number(p));
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
    } catch {
      // gone meanwhile
    }
  };
  walk(dir);
  return pids;
}

function rmCgroupTree(d: string): void {
  try {
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) rmCgroupTree(join(d, e.name));
    rmdirSync(d);
  } catch {
    // not there, or still busy (reported by the caller's check)
  }
}

/** Processes whose command line mentions `needle` (the node's dir: its shims name their containerd socket). */
function pidsMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, "utf8").includes(needle)) out.push(Number(e));
    } catch {
      // exited
    }
  }
  return out;
}

function mountsUnder(prefixes: string[]): string[] {
  const mounts: string[] = [];
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const mp = line.split(" ")[4];
    if (!mp) continue;
    const path = mp.replace(/\\040/g, " ");
    if (prefixes.some((p) => path === p || path.startsWith(`${p}/`))) mounts.push(path);
  }
  return mounts.reverse(); // innermost (mounted last) first
}

function killAll(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
}

/**
 * Undoes everything a node did (its marker says what), whether it stopped cleanly or its processes were
 * SIGKILLed: kills the components, shims and every process in the node's cgroups, unmounts, deletes the
 * network namespaces it created, the bridge, the fixed paths it created and its dir; restores ip_forward.
 */
function teardown(m: Marker, keepDir: boolean): string[] {
  const problems: string[] = [];
  // 1. Processes: kubelet, containerd and the shims name the dir on their command lines; the containers
  //    are in the node's cgroups. Repeat: a shim may start a process while we kill.
  for (let round = 0; round < 5; round++) {
    const pids = [...new Set([...pidsMentioning(m.dir), ...cgroupHierarchies().flatMap((h) => cgroupPids(join(h, m.cgroupName)))])];
    if (pids.length === 0) break;
    killAll(pids);
    spawnSync("sleep", ["0.2"]);
  }
  // 2. Mounts: rootfs overlays, shm, projected volumes under the dir; the pods' netns bind mounts.
  const netnsNew = existsSync("/run/netns") ? readdirSync("/run/netns").filter((n) => n.startsWith("cni-") && !m.netnsBefore.includes(n)) : [];
  const targets = mountsUnder([m.dir, ...netnsNew.map((n) => join("/run/netns", n)), ...FIXED_DIRS]);
  for (const t of targets) {
    const r = run("umount", ["-l", t]);
    if (r.code !== 0 && !/not mounted|no mount point/.test(r.stderr)) problems.push(`umount ${t}: ${r.stderr.trim()}`);
  }
  for (const n of netnsNew) rmSync(join("/run/netns", n), { force: true });
  // 3. Network: the bridge (veths went with their namespaces), ip_forward.
  if (existsSync(`/sys/class/net/${BRIDGE}`)) {
    const r = run("ip", ["link", "delete", BRIDGE]);
    if (r.code !== 0) problems.push(`ip link delete ${BRIDGE}: ${r.stderr.trim()}`);
  }
  try {
    writeFileSync("/proc/sys/net/ipv4/ip_forward", m.ipForward);
  } catch (err) {
    problems.push(`restoring net.ipv4.ip_forward=${m.ipForward}: ${(err as Error).message}`);
  }
  // 4. Cgroups (empty now), fixed paths, the dir.
  for (const h of cgroupHierarchies()) {
    const d = join(h, m.cgroupName);
    if (!existsSync(d)) continue;
    rmCgroupTree(d);
    if (existsSync(d)) problems.push(`cgroup ${d} is still there (pids ${cgroupPids(d).join(",")})`);
  }
  for (const f of m.createdFixed) rmSync(f, { recursive: true, force: true });
  if (!keepDir) rmSync(m.dir, { recursive: true, force: true });
  rmSync(MARKER, { force: true });
  return problems;
}

/** Cleans up after a node whose process died without stop() (its marker is still there). */
export function cleanupStaleNode(log: Logger = defaultLogger): void {
  if (!existsSync(MARKER)) return;
  let m: Marker;
  try {
    m = JSON.parse(readFileSync(MARKER, "utf8")) as Marker;
  } catch {
    rmSync(MARKER, { force: true });
    return;
  }
  if (m.pid !== process.pid && pidAlive(m.pid))
    throw new Error(`a test node is already running on this machine (process ${m.pid}, ${m.dir}; ${MARKER}): one node per machine`);
  log(`cleaning up a test node that was not stopped (${m.dir}, process ${m.pid} is gone)`);
  const problems = teardown(m, false);
  if (problems.length > 0) log(`cleanup problems: ${problems.join("; ")}`);
}

const live = new Set<() => void>();
let hooksInstalled = false;
function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on("exit", () => {
    for (const f of live) f();
  });
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    const handler = () => {
      for (const f of live) f();
      live.clear();
      if (process.listenerCount(sig) === 1) {
        process.removeListener(sig, handler);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, handler);
  }
}

function containerdConfig(dir: string): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return [
    "version = 2",
    `root = ${JSON.stringify(join(dir, "containerd", "root"))}`,
    `state = ${JSON.stringify(join(dir, "containerd", "state"))}`,
    'disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.opt", "io.containerd.tracing.processor.v1.otlp"]',
    "[grpc]",
    `  address = ${JSON.stringify(join(dir, "containerd.sock"))}`,
    "[ttrpc]",
    `  address = ${JSON.stringify(join(dir, "containerd.ttrpc.sock"))}`,
    "[debug]",
    '  level = "info"',
    "[metrics]",
    '  address = ""',
    `[${cri}]`,
    `  sandbox_image = ${JSON.stringify(PAUSE_IMAGE)}`,
    // runc's init cannot write /proc/self/oom_score_adj below its parent's here (no CAP_SYS_RESOURCE):
    // every sandbox failed with "can't get final child's PID from pipe: EOF" until this was set.
    "  restrict_oom_score_adj = true",
    "  enable_selinux = false",
    "  max_container_log_line_size = 16384",
    `[${cri}.containerd]`,
    '  snapshotter = "overlayfs"',
    '  default_runtime_name = "runc"',
    "  discard_unpacked_layers = false",
    `[${cri}.containerd.runtimes.runc]`,
    '  runtime_type = "io.containerd.runc.v2"',
    `[${cri}.containerd.runtimes.runc.options]`,
    "  SystemdCgroup = false",
    '  BinaryName = "/usr/sbin/runc"',
    `  Root = ${JSON.stringify(join(dir, "runc"))}`,
    `[${cri}.cni]`,
    '  bin_dir = "/usr/lib/cni"',
    `  conf_dir = ${JSON.stringify(join(dir, "cni", "net.d"))}`,
    "  max_conf_num = 1",
    `[${cri}.registry]`,
    `  config_path = ${JSON.stringify(join(dir, "containerd", "certs.d"))}`,
    "",
  ].join("\n");
}

function cniConfig(dir: string): string {
  return JSON.stringify(
    {
      cniVersion: "1.0.0",
      name: "steppo-test",
      plugins: [
        {
          type: "bridge",
          bridge: BRIDGE,
          isGateway: true, // the bridge holds .1: the pods' route to the host (API server, nats-server)
          ipMasq: false, // nothing is routed off this machine
          hairpinMode: true,
          ipam: { type: "host-local", ranges: [[{ subnet: POD_SUBNET }]], routes: [{ dst: "0.0.0.0/0" }], dataDir: join(dir, "cni", "ipam") },
        },
      ],
    },
    null,
    2,
  );
}

function kubeletConfig(o: { address: string; port: number; healthzPort: number; clientCA: string; socket: string; cgroupName: string; dir: string }) {
  return yaml.dump({
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    address: o.address,
    port: o.port,
    readOnlyPort: 0,
    healthzBindAddress: "127.0.0.1",
    healthzPort: o.healthzPort,
    // Only the API server (its client certificate, cluster.ts) may call this kubelet.
    authentication: { anonymous: { enabled: false }, webhook: { enabled: false }, x509: { clientCAFile: o.clientCA } },
    authorization: { mode: "AlwaysAllow" },
    containerRuntimeEndpoint: `unix://${o.socket}`,
    cgroupDriver: "cgroupfs", // no systemd here
    cgroupRoot: `/${o.cgroupName}`, // the node's pods under a cgroup of their own, removed at teardown
    cgroupsPerQOS: true,
    failCgroupV1: false, // kubelet 1.35 refuses cgroup v1 otherwise; this VM has v1 (hybrid)
    failSwapOn: false,
    makeIPTablesUtilChains: false, // else kubelet installs a global DROP rule (KUBE-FIREWALL)
    // The images cannot be pulled again (no registry): never garbage-collect them, never evict for disk.
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    evictionHard: { "memory.available": "1Mi", "nodefs.available": "1%", "nodefs.inodesFree": "1%", "imagefs.available": "1%" },
    podLogsDir: join(o.dir, "pod-logs"),
    resolvConf: "/etc/resolv.conf",
    serializeImagePulls: false,
    registerNode: true,
    nodeStatusUpdateFrequency: "4s",
    nodeStatusReportFrequency: "10s",
    syncFrequency: "5s",
    fileCheckFrequency: "5s",
    shutdownGracePeriod: "0s",
    enableControllerAttachDetach: true,
    localStorageCapacityIsolation: true,
    containerLogMaxSize: "10Mi",
    protectKernelDefaults: false,
    enableServer: true,
  });
}

/** Starts containerd and kubelet as a node of `cluster` and waits until it is Ready. */
export async function startNode(cluster: TestCluster, opts: NodeOptions): Promise<TestNode> {
  const log = opts.log ?? defaultLogger;
  if (process.getuid?.() !== 0) throw new Error("a test node (kubelet + containerd) needs root");
  if (!cluster.kubeletClientCA) throw new Error("the test cluster was started without controllers: a node needs them (startTestCluster default)");
  ensureNodePackages(log);
  const kubelet = await ensureKubelet(log);
  cleanupStaleNode(log);
  const t0 = Date.now();
  const address = cluster.address.startsWith("127.") ? hostAddress() : cluster.address;
  const dir = mkdtempSync(join(tmpdir(), "steppo-node-"));
  const cgroupName = `steppo-node-${randomBytes(4).toString("hex")}`;
  const marker: Marker = {
    pid: process.pid,
    dir,
    cgroupName,
    ipForward: readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim(),
    createdFixed: FIXED_DIRS.filter((f) => !existsSync(f)),
    netnsBefore: existsSync("/run/netns") ? readdirSync("/run/netns") : [],
  };
  for (const d of ["/run/netns", "/var/lib/kubelet", "/run/containerd"]) if (!existsSync(d)) marker.createdFixed.push(d);
  writeFileSync(MARKER, JSON.stringify(marker));
  let stopped = false;
  const hardStop = () => {
    if (stopped) return;
    stopped = true;
    teardown(marker, false);
  };
  installExitHooks();
  live.add(hardStop);

  const logs = { containerd: join(dir, "containerd.log"), kubelet: join(dir, "kubelet.log") };
  const socket = join(dir, "containerd.sock");
  const children: ChildProcess[] = [];
  const exits = new Map<ChildProcess, string>();
  const launch = (name: string, bin: string, args: string[], logPath: string) => {
    const fd = openSync(logPath, "a");
    const child = spawn(bin, args, { cwd: dir, stdio: ["ignore", fd, fd] });
    closeSync(fd);
    child.on("exit", (code, signal) => exits.set(child, `${name} exited (code ${code}, signal ${signal})`));
    child.on("error", (err) => exits.set(child, `${name} failed to start: ${err.message}`));
    children.push(child);
    return child;
  };
  const fail = (what: string): never => {
    live.delete(hardStop);
    stopped = true;
    const problems = teardown(marker, true);
    throw new Error(
      `${what}\n--- ${logs.containerd} (tail)\n${tailOf(logs.containerd)}\n--- ${logs.kubelet} (tail)\n${tailOf(logs.kubelet)}${problems.length ? `\nteardown: ${problems.join("; ")}` : ""}\n(logs kept in ${dir})`,
    );
  };
  const ctr = (args: string[]) => run("ctr", ["--address", socket, "--namespace", "k8s.io", ...args]);

  try {
    // kubelet wants its cgroup root to exist in every hierarchy; cpuset needs its cpus and mems set first.
    for (const h of cgroupHierarchies()) {
      const d = join(h, cgroupName);
      mkdirSync(d, { recursive: true });
      for (const f of ["cpuset.cpus", "cpuset.mems"]) {
        if (existsSync(join(d, f)) && readFileSync(join(d, f), "utf8").trim() === "") writeFileSync(join(d, f), readFileSync(join(h, f), "utf8"));
      }
    }
    for (const d of ["containerd", "runc", "cni/net.d", "cni/ipam", "kubelet", "pod-logs"]) mkdirSync(join(dir, d), { recursive: true });
    writeFileSync(join(dir, "containerd.toml"), containerdConfig(dir));
    writeFileSync(join(dir, "cni", "net.d", "10-steppo.conflist"), cniConfig(dir));
    const containerd = launch("containerd", "containerd", ["--config", join(dir, "containerd.toml")], logs.containerd);
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 90_000);
    while (ctr(["version"]).code !== 0) {
      if (exits.has(containerd)) fail(exits.get(containerd) ?? "containerd exited");
      if (Date.now() > deadline) fail("containerd did not answer on its socket");
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const image of [opts.pauseImage, ...(opts.images ?? [])]) {
      const r = ctr(["images", "import", "--no-unpack=false", image]);
      if (r.code !== 0) fail(`ctr images import ${image}: ${r.stderr}`);
    }

    const used = new Set<number>();
    const port = await freePort(used);
    used.add(port);
    const healthzPort = await freePort(used);
    const config = join(dir, "kubelet.yaml");
    writeFileSync(config, kubeletConfig({ address, port, healthzPort, clientCA: cluster.kubeletClientCA, socket, cgroupName, dir }));
    const kubeletProc = launch(
      "kubelet",
      kubelet,
      [
        `--config=${config}`,
        `--kubeconfig=${cluster.nodeKubeconfig(NODE_NAME)}`,
        `--root-dir=${join(dir, "kubelet")}`,
        `--cert-dir=${join(dir, "kubelet", "pki")}`,
        `--hostname-override=${NODE_NAME}`,
        `--node-ip=${address}`,
        "--v=1",
      ],
      logs.kubelet,
    );
    for (;;) {
      if (exits.has(kubeletProc)) fail(exits.get(kubeletProc) ?? "kubelet exited");
      if (exits.has(containerd)) fail(exits.get(containerd) ?? "containerd exited");
      const r = await cluster.kubectl(["get", "node", NODE_NAME, "-o", 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']);
      if (r.code === 0 && r.stdout.trim() === "True") break;
      if (Date.now() > deadline) fail(`node ${NODE_NAME} not Ready within ${opts.readyTimeoutMs ?? 90_000} ms (${r.stdout || r.stderr})`);
      await new Promise((r) => setTimeout(r, 250));
    }
    if (opts.gpus) {
      // An extended resource advertised through the node's status (as the Kubernetes docs do for a dongle):
      // lets a learner that asks for nvidia.com/gpu be scheduled here; no device is attached to its container.
      const patch = JSON.stringify([{ op: "add", path: "/status/capacity/nvidia.com~1gpu", value: String(opts.gpus) }]);
      const r = await cluster.kubectl(["patch", "node", NODE_NAME, "--subresource=status", "--type=json", "-p", patch]);
      if (r.code !== 0) fail(`advertising nvidia.com/gpu on the node: ${r.stderr}`);
    }
    const readyMs = Date.now() - t0;
    log(`node ${NODE_NAME} (${address}) Ready in ${(readyMs / 1000).toFixed(1)} s; logs in ${dir}`);
    return {
      name: NODE_NAME,
      dir,
      address,
      containerdSocket: socket,
      logs,
      readyMs,
      ctr,
      importImage(archive) {
        const r = ctr(["images", "import", archive]);
        if (r.code !== 0) throw new Error(`ctr images import ${archive}: ${r.stderr}`);
      },
      containerPid(containerId) {
        const id = containerId.replace(/^\w+:\/\//, "");
        const r = ctr(["task", "ls"]);
        const line = r.stdout.split("\n").find((l) => l.startsWith(id));
        const pid = Number(line?.trim().split(/\s+/)[1]);
        if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no running task ${id} in containerd (ctr task ls: ${r.stdout || r.stderr})`);
        return pid;
      },
      async stop(o = {}) {
        if (stopped) return;
        stopped = true;
        live.delete(hardStop);
        // kubelet first (it would restart what dies), then the runtime; every pod is killed by teardown.
        const waitExit = (c: ChildProcess) =>
          c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => c.once("exit", () => r()));
        for (const c of [kubeletProc, containerd]) {
          if (c.exitCode === null && c.signalCode === null) c.kill("SIGTERM");
          const timer = setTimeout(() => c.kill("SIGKILL"), 5000);
          await waitExit(c);
          clearTimeout(timer);
        }
        const problems = teardown(marker, o.keepDir ?? false);
        await cluster.kubectl(["delete", "node", NODE_NAME, "--wait=false"]);
        if (problems.length > 0) throw new Error(`node teardown left: ${problems.join("; ")}`);
      },
    };
  } catch (err) {
    if (!stopped) {
      live.delete(hardStop);
      stopped = true;
      teardown(marker, true);
    }
    throw err;
  }
}

/** For diagnostics: where a pod's container logs are on this node. */
export function podLogDir(node: TestNode, namespace: string, pod: string): string | undefined {
  const base = join(node.dir, "pod-logs");
  const d = existsSync(base) ? readdirSync(base).find((e) => e.startsWith(`${namespace}_${pod}_`)) : undefined;
  return d ? join(base, d) : undefined;
}
