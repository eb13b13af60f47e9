// One operator replica: campaigns for the leader Lease (unless disabled), runs the controller while it
// leads, and serves probes and metrics throughout. Used by `steppo operator` and by the tests, which run
// several replicas in one process.
import type { Server } from "node:http";
import { hostname } from "node:os";
import { Controller } from "./controller.ts";
import type { Defaults } from "./desired.ts";
import { type Clients, loadKubeConfig, makeClients } from "./kube.ts";
import { LeaderElector } from "./leader.ts";
import { OperatorMetrics } from "./metrics.ts";
import { type Log, type LogFormat, makeLog, withFields } from "./log.ts";
import { startServer } from "./server.ts";
import { startOperatorTracing } from "./tracing.ts";

export interface OperatorOptions {
  kubeconfig?: string;
  clients?: Clients;
  /** Watch one namespace; all namespaces when undefined. */
  namespace?: string;
  workers?: number;
  defaults?: Defaults;
  /** Port for /healthz, /readyz, /metrics; undefined: no server (0: any free port). */
  port?: number;
  leaderElection?: { namespace: string; name?: string; leaseDurationMs?: number; renewDeadlineMs?: number; retryPeriodMs?: number } | false;
  identity?: string;
  log?: Log;
  /** Read each job's learner progress from its NATS KV bucket (default true). */
  watchProgress?: boolean;
  /** NATS credentials file for those reads. */
  natsCredsFile?: string;
  /** Finalizer + NATS cleanup of deleted jobs (default true). */
  natsCleanup?: boolean;
  /** OTLP/HTTP base URL (http://collector:4318): reconcile spans are exported there; none: no tracing. */
  otlpEndpoint?: string;
  /** Log lines as text (default) or JSON objects; ignored when `log` is given. */
  logFormat?: LogFormat;
}

export interface RunningOperator {
  identity: string;
  metrics: OperatorMetrics;
  port?: number;
  isLeader(): boolean;
  controller(): Controller | undefined;
  /** Resolves when this replica lost leadership (the CLI exits then, as client-go operators do). */
  lostLeadership: Promise<void>;
  stop(): Promise<void>;
}

export async function startOperator(opts: OperatorOptions = {}): Promise<RunningOperator> {
  const identity = opts.identity ?? `${hostname()}-${process.pid}`;
  const log: Log = opts.log ?? makeLog(opts.logFormat ?? "text", identity);
  const tracing = opts.otlpEndpoint
    ? startOperatorTracing(opts.otlpEndpoint, { instance: identity, log: withFields(log, { component: "tracing" }) })
    : undefined;
  const clients = opts.clients ?? makeClients(loadKubeConfig(opts.kubeconfig));
  const metrics = new OperatorMetrics();
  let controller: Controller | undefined;
  let resolveLost: () => void = () => {};
  const lostLeadership = new Promise<void>((r) => {
    resolveLost = r;
  });

  const lead = async () => {
    metrics.isLeader = 1;
    controller = new Controller(clients, {
      namespace: opts.namespace,
      workers: opts.workers,
      defaults: opts.defaults,
      host: identity,
      log,
      metrics,
      watchProgress: opts.watchProgress,
      natsCredsFile: opts.natsCredsFile,
      natsCleanup: opts.natsCleanup,
    });
    await controller.start();
  };
  const standDown = async () => {
    metrics.isLeader = 0;
    const c = controller;
    controller = undefined;
    await c?.stop();
  };

  let elector: LeaderElector | undefined;
  if (opts.leaderElection) {
    const le = opts.leaderElection;
    elector = new LeaderElector(clients, {
      namespace: le.namespace,
      name: le.name ?? "steppo-operator",
      identity,
      leaseDurationMs: le.leaseDurationMs,
      renewDeadlineMs: le.renewDeadlineMs,
      retryPeriodMs: le.retryPeriodMs,
      onStartedLeading: lead,
      onStoppedLeading: async () => {
        await standDown();
        resolveLost();
      },
      log: withFields(log, { component: "leader" }),
    });
    elector.start();
  } else await lead();

  let server: Server | undefined;
  let port: number | undefined;
  if (opts.port !== undefined) {
    // A standby is ready (it is doing its job: waiting); a leader once its caches are synced.
    const s = await startServer(opts.port, metrics, { ready: () => (controller ? controller.ready : metrics.isLeader === 0) });
    server = s.server;
    port = s.port;
  }

  return {
    identity,
    metrics,
    port,
    isLeader: () => metrics.isLeader === 1,
    controller: () => controller,
    lostLeadership,
    async stop() {
      if (elector) await elector.stop();
      await standDown();
      if (server) await new Promise<void>((r) => server.close(() => r()));
      await tracing?.shutdown();
    },
  };
}
