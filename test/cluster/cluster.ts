// A REAL Kubernetes control plane for tests: etcd, kube-apiserver, kube-controller-manager and kube-scheduler
// (built from the Go modules pinned in test/cluster/go.mod, see binaries.ts) on free ports, with temporary data
// dirs, a static admin token in group system:masters, and an admin kubeconfig. The controller manager runs
// every default controller (garbage collector, Deployment/ReplicaSet, ServiceAccount + token, TTL, ...) with a
// service account per controller; the ServiceAccount admission plugin is on; PodSecurity enforces "restricted"
// on every namespace but kube-system. There is no node unless a test starts one (node.ts: kubelet +
// containerd): pods stay Pending (unschedulable).
// `controllers: false` starts etcd + kube-apiserver only (no controller manager, no scheduler, no
// ServiceAccount admission, no PodSecurity defaults): for tests that play the controllers and the kubelet
// themselves by patching objects (test/support/operator-harness.ts).
//   const cluster = await startTestCluster();
//   ... kubectl --kubeconfig cluster.kubeconfigPath ..., or new KubeConfig().loadFromFile(...)
//   await cluster.stop();
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
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
  /** Run kube-controller-manager and kube-scheduler (default true); see the head of this file. */
  controllers?: boolean;
  /**
   * The address kube-apiserver listens on and advertises (default 127.0.0.1). A node's pods reach the API
   * server there, so a test with a node passes the machine's own interface address (node.ts: hostAddress()).
   */
  address?: string;
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
  logs: { etcd: string; apiserver: string; controllerManager?: string; scheduler?: string };
  pids: { etcd: number; apiserver: number; controllerManager?: number; scheduler?: number };
  /** The address kube-apiserver listens on (StartOptions.address). */
  address: string;
  /** A kubeconfig for a kubelet (user system:node:<name>, group system:nodes), written on demand. */
  nodeKubeconfig(nodeName: string): string;
  binaries: Binaries;
  /** The CA a kubelet trusts for client certificates (the API server's); empty without controllers. */
  kubeletClientCA: string;
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

export function kubeconfigYaml(server: string, caPem: string, token: string): string {
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

function makeKubeletClientCerts(pki: string): { ca: string; cert: string; key: string } {
  const ca = join(pki, "kubelet-client-ca.crt");
  const caKey = join(pki, "kubelet-client-ca.key");
  const cert = join(pki, "apiserver-kubelet-client.crt");
  const key = join(pki, "apiserver-kubelet-client.key");
  const csr = join(pki, "apiserver-kubelet-client.csr");
  const openssl = (args: string[]) => {
    const r = spawnSync("openssl", args, { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`openssl ${args.join(" ")} failed: ${r.error?.message ?? r.stderr}`);
  };
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl(["req", "-x509", ...ec, "-keyout", caKey, "-out", ca, "-days", "2", "-subj", "/CN=steppo-test-kubelet-client-ca"]);
  openssl(["req", "-new", ...ec, "-keyout", key, "-out", csr, "-subj", "/O=system:masters/CN=kube-apiserver-kubelet-client"]);
  openssl(["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", caKey, "-CAcreateserial", "-out", cert, "-days", "2"]);
  return { ca, cert, key };
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
  const logs: TestCluster["logs"] = { etcd: join(dir, "etcd.log"), apiserver: join(dir, "kube-apiserver.log") };

  // Credentials: a static admin token, and the service-account token signing key (EC P-256).
  const token = randomBytes(24).toString("hex");
  const tokenFile = join(dir, "tokens.csv");
  // The admin, and the identities RBAC's bootstrap roles name for the controller manager, the scheduler and
  // a kubelet (NodeRestriction is not enabled, so one node token serves any node name).
  const componentTokens = {
    controllerManager: randomBytes(24).toString("hex"),
    scheduler: randomBytes(24).toString("hex"),
    node: randomBytes(24).toString("hex"),
  };
  writeFileSync(
    tokenFile,
    [
      `${token},steppo-admin,steppo-admin,"system:masters"`,
      `${componentTokens.controllerManager},system:kube-controller-manager,system:kube-controller-manager`,
      `${componentTokens.scheduler},system:kube-scheduler,system:kube-scheduler`,
      `${componentTokens.node},system:node:steppo-node,system:node:steppo-node,"system:nodes"`,
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  const controllers = opts.controllers ?? true;
  const address = opts.address ?? "127.0.0.1";
  const saKey = join(pki, "service-account.key");
  const { privateKey } = generateKeyPairSync("ec", {
    namedCurve: "prime256v1",
    privateKeyEncoding: { type: "sec1", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
  writeFileSync(saKey, privateKey, { mode: 0o600 });

  // PodSecurity: "restricted" enforced (and audited, warned) on every namespace but kube-system.
  const admissionConfig = join(dir, "admission.yaml");
  writeFileSync(
    admissionConfig,
    yaml.dump({
      apiVersion: "apiserver.config.k8s.io/v1",
      kind: "AdmissionConfiguration",
      plugins: [
        {
          name: "PodSecurity",
          configuration: {
            apiVersion: "pod-security.admission.config.k8s.io/v1",
            kind: "PodSecurityConfiguration",
            defaults: { enforce: "restricted", "enforce-version": "latest", audit: "restricted", warn: "restricted" },
            exemptions: { usernames: [], runtimeClasses: [], namespaces: ["kube-system"] },
          },
        },
      ],
    }),
  );

  // A CA that kubelets trust for client certificates (kubelet: authentication.x509.clientCAFile), and the API
  // server's client certificate from it: only the API server may call a kubelet's API.
  const kubeletClient = controllers ? makeKubeletClientCerts(pki) : { ca: "", cert: "", key: "" };

  const used = new Set<number>();
  const port = async () => {
    const p = await freePort(used);
    used.add(p);
    return p;
  };
  const [etcdPort, peerPort, apiPort] = [await port(), await port(), await port()];
  const etcdUrl = `http://127.0.0.1:${etcdPort}`;
  const server = `https://${address}:${apiPort}`;

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
    `--bind-address=${address}`,
    `--advertise-address=${address}`,
    `--secure-port=${apiPort}`,
    `--cert-dir=${pki}`, // self-signed serving certificate, generated by the server itself
    `--token-auth-file=${tokenFile}`,
    // Node: a kubelet (user system:node:<name>) may read what its pods need and write its node and pods' status.
    "--authorization-mode=Node,RBAC",
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    `--service-account-key-file=${saKey}`,
    `--service-account-signing-key-file=${saKey}`,
    "--service-cluster-ip-range=10.0.0.0/24",
    ...(controllers
      ? [
          `--admission-control-config-file=${admissionConfig}`,
          // kubectl logs/exec through the API server: it authenticates to a kubelet with this client certificate.
          `--kubelet-client-certificate=${kubeletClient.cert}`,
          `--kubelet-client-key=${kubeletClient.key}`,
        ]
      : // No controller manager creates default ServiceAccounts, so the admission plugin would refuse pods.
        ["--disable-admission-plugins=ServiceAccount"]),
    // On 127.0.0.1 the kubernetes Service's endpoints would be loopback, which Endpoints validation refuses.
    ...(address.startsWith("127.") ? ["--endpoint-reconciler-type=none"] : []),
    // kubectl logs/exec reach a kubelet at its node's InternalIP (the node has no resolvable hostname).
    "--kubelet-preferred-address-types=InternalIP",
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
  const componentKubeconfig = (name: string, tok: string) => {
    const path = join(dir, `${name}.kubeconfig`);
    writeFileSync(path, kubeconfigYaml(server, caPem, tok), { mode: 0o600 });
    return path;
  };

  let controllerManager: ChildProcess | undefined;
  let scheduler: ChildProcess | undefined;
  if (controllers) {
    logs.controllerManager = join(dir, "kube-controller-manager.log");
    logs.scheduler = join(dir, "kube-scheduler.log");
    const cmKubeconfig = componentKubeconfig("controller-manager", componentTokens.controllerManager);
    controllerManager = launch(
      "kube-controller-manager",
      binaries.kubeControllerManager,
      [
        `--kubeconfig=${cmKubeconfig}`,
        `--authentication-kubeconfig=${cmKubeconfig}`,
        `--authorization-kubeconfig=${cmKubeconfig}`,
        "--secure-port=0", // no health/metrics endpoint: nothing to collide on
        "--leader-elect=false",
        "--controllers=*", // the defaults: garbage collector, deployment, replicaset, serviceaccount(-token), ttl-after-finished, ...
        "--use-service-account-credentials=true", // each controller under its own service account, as kubeadm runs it
        `--service-account-private-key-file=${saKey}`,
        `--root-ca-file=${certFile}`,
        "--node-monitor-grace-period=40s",
        "--v=1",
      ],
      logs.controllerManager,
    );
    const schedKubeconfig = componentKubeconfig("scheduler", componentTokens.scheduler);
    scheduler = launch(
      "kube-scheduler",
      binaries.kubeScheduler,
      [
        `--kubeconfig=${schedKubeconfig}`,
        `--authentication-kubeconfig=${schedKubeconfig}`,
        `--authorization-kubeconfig=${schedKubeconfig}`,
        "--secure-port=0",
        "--leader-elect=false",
        "--v=1",
      ],
      logs.scheduler,
    );
    // Ready: the service-account controller created namespace default's ServiceAccount (so the admission
    // plugin admits pods there) and the token controller published the root CA ConfigMap.
    for (;;) {
      for (const [c, logPath] of [
        [controllerManager, logs.controllerManager],
        [scheduler, logs.scheduler],
      ] as const) {
        if (exits.has(c)) await fail(`${exits.get(c)}\n--- ${logPath} (tail)\n${tailOf(logPath ?? "")}`);
      }
      const sa = await httpsGet(`${server}/api/v1/namespaces/default/serviceaccounts/default`, token, caPem);
      const ca = await httpsGet(`${server}/api/v1/namespaces/default/configmaps/kube-root-ca.crt`, token, caPem);
      if (sa?.status === 200 && ca?.status === 200) break;
      if (Date.now() > deadline + 30_000)
        await fail(`kube-controller-manager did not create default/default ServiceAccount within ${readyTimeout + 30_000} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
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
    pids: { etcd: etcd.pid ?? -1, apiserver: apiserver.pid ?? -1, controllerManager: controllerManager?.pid, scheduler: scheduler?.pid },
    address,
    kubeletClientCA: kubeletClient.ca,
    nodeKubeconfig: (nodeName: string) => {
      // The token's user is system:node:steppo-node; the RBAC role system:node binds the group, so any name works.
      return componentKubeconfig(`kubelet-${nodeName}`, componentTokens.node);
    },
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
      for (const c of [scheduler, controllerManager, apiserver, etcd]) {
        if (!c) continue;
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
