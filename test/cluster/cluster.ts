// A REAL Kubernetes control plane for tests: etcd + kube-apiserver (built from the Go modules pinned
// in test/cluster/go.mod, see binaries.ts) on free loopback ports, with temporary data dirs, a static
// admin token in group system:masters, and an admin kubeconfig. No kubelet, scheduler or controller
// manager: pods stay Pending unless a test patches their status, and no default ServiceAccount is
// created (the ServiceAccount admission plugin is off so pods can be created anyway).
//   const cluster = await startTestCluster();
//   ... kubectl --kubeconfig cluster.kubeconfigPath ..., or new KubeConfig().loadFromFile(...)
//   await cluster.stop();
import { type ChildProcess, spawn } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import yaml from "js-yaml";
import { freePort } from "../support/free-port.ts";
import { type BinaryResult, runBinary } from "../support/run-binary.ts";
import { type Binaries, defaultLogger, ensureBinaries, type Logger } from "./binaries.ts";

export interface StartOptions {
  /** Directory for data, certs, kubeconfig and logs (default: a fresh temp dir, removed by stop()). */
  dir?: string;
  /** Start the processes in their own session so they outlive this process (cluster:up). */
  detached?: boolean;
  /** How long to wait for /readyz (default 60 s). */
  readyTimeoutMs?: number;
  /** Extra kube-apiserver flags, e.g. `--watch-cache=false`; later flags override earlier ones. */
  apiserverArgs?: string[];
  /** Extra etcd flags, e.g. `--auto-compaction-retention=1s`. */
  etcdArgs?: string[];
  log?: Logger;
}

export type KubectlResult = BinaryResult;

export interface TestCluster {
  /** Admin kubeconfig (token auth, CA data inline). */
  kubeconfigPath: string;
  /** https://127.0.0.1:PORT */
  server: string;
  /** Bearer token of the admin user (group system:masters). */
  token: string;
  /** PEM bundle that verifies the API server's serving certificate. */
  caPem: string;
  etcdUrl: string;
  dir: string;
  logs: { etcd: string; apiserver: string };
  pids: { etcd: number; apiserver: number };
  binaries: Binaries;
  /** Milliseconds from start (binaries ready) to /readyz answering ok. */
  startupMs: number;
  /** Runs the real kubectl against this cluster. Never throws on a non-zero exit. */
  kubectl(args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<KubectlResult>;
  /** Kills kube-apiserver, waits `downMs`, and starts it again on the same port (etcd keeps running). */
  restartApiserver(opts?: { downMs?: number }): Promise<void>;
  /** Kills both processes and removes the directory (unless `keepDir`). */
  stop(opts?: { keepDir?: boolean }): Promise<void>;
}

function tailOf(path: string, lines = 25): string {
  try {
    return readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** GET over HTTPS; resolves with the status code and body, or undefined when the server is not up. */
function httpsGet(url: string, token: string, ca?: string): Promise<{ status: number; body: string } | undefined> {
  return new Promise((resolve) => {
    const req = request(
      url,
      { method: "GET", headers: { authorization: `Bearer ${token}` }, timeout: 2000, ...(ca ? { ca } : { rejectUnauthorized: false }) },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d) => {
          body += d;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(undefined));
    req.end();
  });
}

async function etcdHealthy(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
    return res.ok && ((await res.json()) as { health?: string }).health === "true";
  } catch {
    return false;
  }
}

// Clusters started by this process and not detached: killed (dirs removed) if it exits without stop().
const live = new Set<{ kill: () => void }>();
let hooksInstalled = false;
function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on("exit", () => {
    for (const c of live) c.kill();
  });
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    const handler = () => {
      for (const c of live) c.kill();
      live.clear();
      // Only ours: restore the default action so the signal still terminates the process.
      if (process.listenerCount(sig) === 1) {
        process.removeListener(sig, handler);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, handler);
  }
}

export function runKubectl(kubectl: string, kubeconfig: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<KubectlResult> {
  return runBinary(kubectl, ["--kubeconfig", kubeconfig, ...args], { ...opts, env: { ...process.env, KUBECONFIG: kubeconfig } });
}

function kubeconfigYaml(server: string, caPem: string, token: string): string {
  return yaml.dump({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "steppo-test", cluster: { server, "certificate-authority-data": Buffer.from(caPem).toString("base64") } }],
    users: [{ name: "steppo-admin", user: { token } }],
    contexts: [{ name: "steppo-test", context: { cluster: "steppo-test", user: "steppo-admin", namespace: "default" } }],
    "current-context": "steppo-test",
    preferences: {},
  });
}

/** Starts etcd and kube-apiserver (building them first if this machine has never done so). */
export async function startTestCluster(opts: StartOptions = {}): Promise<TestCluster> {
  const log = opts.log ?? defaultLogger;
  const binaries = await ensureBinaries(log);
  const t0 = Date.now();
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "steppo-cluster-"));
  mkdirSync(dir, { recursive: true });
  const pki = join(dir, "pki");
  mkdirSync(pki, { recursive: true });
  const logs = { etcd: join(dir, "etcd.log"), apiserver: join(dir, "kube-apiserver.log") };

  // Credentials: a static admin token, and the service-account token signing key (EC P-256).
  const token = randomBytes(24).toString("hex");
  const tokenFile = join(dir, "tokens.csv");
  writeFileSync(tokenFile, `${token},steppo-admin,steppo-admin,"system:masters"\n`, { mode: 0o600 });
  const saKey = join(pki, "service-account.key");
  const { privateKey } = generateKeyPairSync("ec", {
    namedCurve: "prime256v1",
    privateKeyEncoding: { type: "sec1", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
  writeFileSync(saKey, privateKey, { mode: 0o600 });

  const used = new Set<number>();
  const port = async () => {
    const p = await freePort(used);
    used.add(p);
    return p;
  };
  const [etcdPort, peerPort, apiPort] = [await port(), await port(), await port()];
  const etcdUrl = `http://127.0.0.1:${etcdPort}`;
  const server = `https://127.0.0.1:${apiPort}`;

  const children: ChildProcess[] = [];
  const exits = new Map<ChildProcess, string>();
  const kill = (signal: NodeJS.Signals = "SIGKILL") => {
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null) c.kill(signal);
    }
  };
  const cleanup = {
    kill: () => {
      kill("SIGKILL");
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
  };
  if (!opts.detached) {
    installExitHooks();
    live.add(cleanup);
  }
  const launch = (name: string, bin: string, args: string[], logPath: string): ChildProcess => {
    const fd = openSync(logPath, "a");
    const child = spawn(bin, args, { cwd: dir, stdio: ["ignore", fd, fd], detached: opts.detached ?? false });
    closeSync(fd);
    child.on("exit", (code, signal) => exits.set(child, `${name} exited (code ${code}, signal ${signal})`));
    child.on("error", (err) => exits.set(child, `${name} failed to start: ${err.message}`));
    if (opts.detached) child.unref();
    children.push(child);
    return child;
  };
  const fail = async (what: string): Promise<never> => {
    kill("SIGKILL");
    await new Promise((r) => setTimeout(r, 200));
    live.delete(cleanup);
    const detail = `${what}\n--- ${logs.etcd} (tail)\n${tailOf(logs.etcd)}\n--- ${logs.apiserver} (tail)\n${tailOf(logs.apiserver)}\n(logs kept in ${dir})`;
    throw new Error(detail);
  };

  const etcd = launch(
    "etcd",
    binaries.etcd,
    [
      "--name=steppo-test",
      `--data-dir=${join(dir, "etcd")}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-cluster=steppo-test=http://127.0.0.1:${peerPort}`,
      "--unsafe-no-fsync=true", // throwaway data: skip fsync, as envtest does
      "--log-level=warn",
      ...(opts.etcdArgs ?? []),
    ],
    logs.etcd,
  );
  const readyTimeout = opts.readyTimeoutMs ?? 60_000;
  const deadline = Date.now() + readyTimeout;
  while (!(await etcdHealthy(etcdUrl))) {
    if (exits.has(etcd)) await fail(exits.get(etcd) ?? "etcd exited");
    if (Date.now() > deadline) await fail(`etcd did not become healthy at ${etcdUrl} within ${readyTimeout} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }

  const apiserverArgs = [
    `--etcd-servers=${etcdUrl}`,
    "--bind-address=127.0.0.1",
    "--advertise-address=127.0.0.1",
    `--secure-port=${apiPort}`,
    `--cert-dir=${pki}`, // self-signed serving certificate, generated by the server itself
    `--token-auth-file=${tokenFile}`,
    "--authorization-mode=RBAC",
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    `--service-account-key-file=${saKey}`,
    `--service-account-signing-key-file=${saKey}`,
    "--service-cluster-ip-range=10.0.0.0/24",
    // No controller manager creates default ServiceAccounts, so the admission plugin would refuse pods.
    "--disable-admission-plugins=ServiceAccount",
    // The kubernetes Service's endpoints would be 127.0.0.1, which Endpoints validation refuses.
    "--endpoint-reconciler-type=none",
    "--allow-privileged=true",
    "--enable-priority-and-fairness=false",
    "--profiling=false",
    ...(opts.apiserverArgs ?? []),
  ];
  let apiserver = launch("kube-apiserver", binaries.kubeApiserver, apiserverArgs, logs.apiserver);
  const waitApiserverReady = async (until: number) => {
    for (;;) {
      if (exits.has(apiserver)) await fail(exits.get(apiserver) ?? "kube-apiserver exited");
      if (exits.has(etcd)) await fail(exits.get(etcd) ?? "etcd exited");
      const res = await httpsGet(`${server}/readyz`, token);
      if (res?.status === 200) return;
      if (Date.now() > until)
        await fail(
          `kube-apiserver did not report ready at ${server}/readyz within ${readyTimeout} ms (last: ${res ? `${res.status} ${res.body.slice(0, 2000)}` : "no answer"})`,
        );
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  await waitApiserverReady(deadline);

  // The server wrote its self-signed CA and serving certificate; the bundle verifies the connection.
  const certFile = join(pki, "apiserver.crt");
  if (!existsSync(certFile)) await fail(`kube-apiserver is ready but wrote no ${certFile}`);
  const caPem = readFileSync(certFile, "utf8");
  const verified = await httpsGet(`${server}/readyz`, token, caPem);
  if (verified?.status !== 200) await fail(`the serving certificate in ${certFile} does not verify ${server}`);

  const kubeconfigPath = join(dir, "kubeconfig");
  writeFileSync(kubeconfigPath, kubeconfigYaml(server, caPem, token), { mode: 0o600 });
  const startupMs = Date.now() - t0;

  let stopped = false;
  return {
    kubeconfigPath,
    server,
    token,
    caPem,
    etcdUrl,
    dir,
    logs,
    pids: { etcd: etcd.pid ?? -1, apiserver: apiserver.pid ?? -1 },
    binaries,
    startupMs,
    kubectl: (args, o) => runKubectl(binaries.kubectl, kubeconfigPath, args, o),
    async restartApiserver(o = {}) {
      // Same port, flags, etcd and serving certificate (--cert-dir keeps it), so clients reconnect as they
      // would to a restarted control plane.
      const old = apiserver;
      if (old.exitCode === null && old.signalCode === null) {
        old.kill("SIGKILL");
        await new Promise<void>((r) => old.once("exit", () => r()));
      }
      await new Promise((r) => setTimeout(r, o.downMs ?? 0));
      apiserver = launch("kube-apiserver", binaries.kubeApiserver, apiserverArgs, logs.apiserver);
      await waitApiserverReady(Date.now() + readyTimeout);
    },
    async stop(o = {}) {
      if (stopped) return;
      stopped = true;
      const waitExit = (c: ChildProcess) =>
        c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => c.once("exit", () => r()));
      for (const c of [apiserver, etcd]) {
        if (c.exitCode === null && c.signalCode === null) c.kill("SIGTERM");
        const timer = setTimeout(() => c.kill("SIGKILL"), 5000);
        await waitExit(c);
        clearTimeout(timer);
      }
      live.delete(cleanup);
      if (!o.keepDir && ownDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
