// Test helper: a REAL `nats-server -js` on a free loopback port with its own temporary store directory.
// Never touches a server the machine may already run on 4222. If `nats-server` is not on PATH it is
// installed with `apt-get install -y nats-server` (Debian package; needs root).
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./free-port.ts";

export interface NatsServerOptions {
  /** Extra lines for the server's config file (e.g. `max_payload: 8MB`). */
  extraConfig?: string;
  /** Print the server's output (default: only when STEPPO_NATS_DEBUG is set). */
  verbose?: boolean;
  /** The address to listen on (default 127.0.0.1); a test node's pods reach the host at its interface address. */
  host?: string;
  /** How long to wait for the server to accept connections (default 15 s). */
  startTimeoutMs?: number;
}

function onPath(bin: string): string | undefined {
  const r = spawnSync("sh", ["-c", `command -v ${bin}`], { encoding: "utf8" });
  const path = r.stdout.trim();
  return r.status === 0 && path !== "" ? path : undefined;
}

let resolvedBinary: string | undefined;

/** The nats-server binary, installed with apt-get when missing. Throws saying exactly what failed. */
export function ensureNatsServer(): string {
  if (resolvedBinary) return resolvedBinary;
  const found = process.env.NATS_SERVER_BIN ?? onPath("nats-server") ?? onPath("/usr/sbin/nats-server");
  if (found) {
    resolvedBinary = found;
    return found;
  }
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    throw new Error(
      "nats-server is not on PATH and this process is not root, so `apt-get install -y nats-server` cannot run: install the Debian package nats-server",
    );
  }
  const run = (args: string[]): { ok: boolean; detail: string } => {
    console.log(`[nats-server helper] running: apt-get ${args.join(" ")}`);
    const r = spawnSync("apt-get", args, { encoding: "utf8", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }, timeout: 300_000 });
    const detail = `exit ${r.status ?? r.signal ?? r.error?.message}: ${(r.stderr || r.stdout || "").trim().split("\n").slice(-5).join(" | ")}`;
    console.log(`[nats-server helper] apt-get ${args[0]} ${args.at(-1)}: ${r.status === 0 ? "ok" : detail}`);
    return { ok: r.status === 0, detail };
  };
  let install = run(["install", "-y", "nats-server"]);
  if (!install.ok) {
    const update = run(["update"]);
    if (!update.ok) throw new Error(`nats-server is missing and \`apt-get update\` failed (${update.detail})`);
    install = run(["install", "-y", "nats-server"]);
  }
  if (!install.ok) throw new Error(`nats-server is missing and \`apt-get install -y nats-server\` failed (${install.detail})`);
  const path = onPath("nats-server") ?? onPath("/usr/sbin/nats-server");
  if (!path) throw new Error("`apt-get install -y nats-server` succeeded but no nats-server binary is on PATH or at /usr/sbin/nats-server");
  resolvedBinary = path;
  return path;
}

/** Resolves once a client can connect and read the server's INFO line. */
function probe(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host, port });
    let buf = "";
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.on("data", (d) => {
      buf += d.toString("utf8");
      if (buf.includes("INFO ")) done(true);
    });
    sock.on("error", () => done(false));
  });
}

/** Servers still running: killed (and their dirs removed) if the test process exits without dispose(). */
const live = new Set<NatsServer>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const s of live) s.killSync();
  });
}

export class NatsServer {
  readonly storeDir: string;
  private readonly dir: string;
  private readonly configPath: string;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private log = "";

  private constructor(
    readonly port: number,
    private readonly binary: string,
    private readonly opts: NatsServerOptions,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), "steppo-nats-"));
    this.storeDir = join(this.dir, "store");
    this.configPath = join(this.dir, "nats.conf");
    writeFileSync(
      this.configPath,
      [
        `listen: "${opts.host ?? "127.0.0.1"}:${port}"`,
        `server_name: "steppo-test-${port}"`,
        `jetstream { store_dir: ${JSON.stringify(this.storeDir)} }`,
        opts.extraConfig ?? "",
      ].join("\n"),
    );
  }

  /** Starts a fresh server on a free loopback port (never 4222) with an empty store dir. */
  static async start(opts: NatsServerOptions = {}): Promise<NatsServer> {
    const binary = ensureNatsServer();
    const server = new NatsServer(await freePort(), binary, opts);
    installExitHook();
    live.add(server);
    try {
      await server.launch();
    } catch (err) {
      await server.dispose();
      throw err;
    }
    return server;
  }

  get url(): string {
    return `nats://${this.opts.host ?? "127.0.0.1"}:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** The server's recent output (for failure messages). */
  get output(): string {
    return this.log.slice(-4000);
  }

  private async launch(): Promise<void> {
    if (this.child) throw new Error("nats-server already running");
    const child = spawn(this.binary, ["-c", this.configPath], { stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    const verbose = this.opts.verbose ?? process.env.STEPPO_NATS_DEBUG !== undefined;
    const onData = (d: Buffer) => {
      const s = d.toString("utf8");
      this.log = (this.log + s).slice(-20_000);
      if (verbose) process.stderr.write(`[nats-server:${this.port}] ${s}`);
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    let exitInfo: string | undefined;
    this.exited = new Promise<void>((resolve) => {
      child.on("exit", (code, signal) => {
        exitInfo = `code ${code} signal ${signal}`;
        if (this.child === child) this.child = undefined;
        resolve();
      });
      child.on("error", (err) => {
        exitInfo = err.message;
        if (this.child === child) this.child = undefined;
        resolve();
      });
    });
    const deadline = Date.now() + (this.opts.startTimeoutMs ?? 15_000);
    while (Date.now() < deadline) {
      if (exitInfo !== undefined) throw new Error(`nats-server exited during start-up (${exitInfo}): ${this.output}`);
      if (await probe(this.port, this.opts.host)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill("SIGKILL");
    throw new Error(`nats-server did not accept connections on 127.0.0.1:${this.port} within the start timeout: ${this.output}`);
  }

  /** Graceful stop (SIGTERM, SIGKILL after 5 s); the store dir is kept for restart(). */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    await this.exited;
    clearTimeout(timer);
  }

  /** Abrupt stop (SIGKILL); the store dir is kept. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill("SIGKILL");
    await this.exited;
  }

  /** Stops (gracefully unless `hard`) and starts again on the same port with the same store dir. */
  async restart(opts: { hard?: boolean; downMs?: number } = {}): Promise<void> {
    if (opts.hard) await this.kill();
    else await this.stop();
    if (opts.downMs) await new Promise((r) => setTimeout(r, opts.downMs));
    await this.launch();
  }

  /** Stops the server and deletes its temporary directory. */
  async dispose(): Promise<void> {
    await this.kill();
    live.delete(this);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Synchronous last-resort cleanup (process exit hook). */
  killSync(): void {
    this.child?.kill("SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }
}
