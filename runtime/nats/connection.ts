// Connecting to NATS and surviving a server restart: unlimited reconnects, and a retry loop for
// operations that fail transiently while the server (or JetStream on it) is away.
import { JetStreamApiError, JetStreamError } from "@nats-io/jetstream";
import { readFileSync } from "node:fs";
import {
  ClosedConnectionError,
  connect,
  credsAuthenticator,
  DrainingConnectionError,
  type NatsConnection,
  NoRespondersError,
  RequestError,
  TimeoutError,
} from "@nats-io/transport-node";

export type Log = (line: string) => void;

export const defaultLog: Log = (line) => console.warn(`[steppo/nats] ${line}`);

export interface NatsConnectOptions {
  /** One URL or several (`nats://host:4222`). */
  servers: string | string[];
  /** Client name shown in server monitoring (e.g. `learner`, `worker-3`). */
  name?: string;
  /** Wait between reconnect attempts (default 250 ms, plus up to 100 ms jitter). */
  reconnectTimeWaitMs?: number;
  /** Keep trying when the server is not up yet at start (default true: pods may start before NATS). */
  waitOnFirstConnect?: boolean;
  /** Server ping interval; a dead server is noticed after 2 missed pongs (default 10 s). */
  pingIntervalMs?: number;
  /**
   * Capture an async stack trace for every request (default false): the client otherwise builds two Error
   * objects per request — per publish and per confirmed ack — which costs a large share of the CPU.
   */
  asyncTraces?: boolean;
  /** A NATS credentials file (user JWT + nkey seed); read again on every (re)connect, so a rotated file is picked up. */
  credsFile?: string;
  /** How long the first connect may take before the client says it is retrying, and where (default 2 s). */
  firstConnectNoticeMs?: number;
  log?: Log;
}

/** Repeats "still retrying" this often while the first connect keeps failing. */
const FIRST_CONNECT_REMINDER_MS = 15_000;

/**
 * With waitOnFirstConnect the client retries silently until a server answers; a worker given a wrong URL
 * would look hung. Says, after `afterMs` and then every 15 s, that it is retrying and where.
 */
function firstConnectNotice(log: Log, who: string, servers: string | string[], afterMs: number): () => void {
  const where = Array.isArray(servers) ? servers.join(", ") : servers;
  const start = Date.now();
  let reminder: NodeJS.Timeout | undefined;
  const first = setTimeout(() => {
    log(`${who}: cannot reach NATS at ${where} yet; retrying until it answers (check the URL and that the server is up)`);
    reminder = setInterval(() => {
      log(`${who}: still cannot reach NATS at ${where} after ${Math.round((Date.now() - start) / 1000)} s; retrying`);
    }, FIRST_CONNECT_REMINDER_MS);
    reminder.unref();
  }, afterMs);
  first.unref();
  return () => {
    clearTimeout(first);
    clearInterval(reminder);
  };
}

/** A connection that reconnects forever (`maxReconnectAttempts: -1`) and logs disconnects/reconnects. */
export async function connectNats(opts: NatsConnectOptions): Promise<NatsConnection> {
  const log = opts.log ?? defaultLog;
  const stopNotice = firstConnectNotice(log, opts.name ?? "client", opts.servers, opts.firstConnectNoticeMs ?? 2000);
  const nc = await connect({
    servers: opts.servers,
    name: opts.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: opts.reconnectTimeWaitMs ?? 250,
    reconnectJitter: 100,
    waitOnFirstConnect: opts.waitOnFirstConnect ?? true,
    pingInterval: opts.pingIntervalMs ?? 10_000,
    maxPingOut: 2,
    noAsyncTraces: !(opts.asyncTraces ?? false),
    ...(opts.credsFile ? { authenticator: credsAuthenticator(() => readFileSync(opts.credsFile as string)) } : {}),
  }).finally(stopNotice);
  (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") log(`${opts.name ?? "client"}: disconnected from ${s.server}`);
      else if (s.type === "reconnect") log(`${opts.name ?? "client"}: reconnected to ${s.server}`);
    }
  })().catch(() => {});
  return nc;
}

/** JetStream limit errors (stream full with discard-new, disk full): the publisher should wait and retry. */
export function isBackpressure(err: unknown): boolean {
  if (!(err instanceof JetStreamApiError)) return false;
  return /maximum (messages|bytes)( per subject)? exceeded|insufficient resources|resource limits exceeded/i.test(err.message);
}

/** Errors that a server restart, a leader change or a slow JetStream recovery produce: retry them. */
export function isTransient(err: unknown): boolean {
  if (err instanceof ClosedConnectionError || err instanceof DrainingConnectionError) return false;
  if (err instanceof TimeoutError || err instanceof NoRespondersError) return true;
  if (err instanceof RequestError) return true; // includes no responders (JetStream not up yet after a restart)
  if (err instanceof JetStreamApiError) return err.status === 503 || err.code === 10008 || /temporarily unavailable|not enabled/i.test(err.message);
  if (err instanceof JetStreamError) return /not enabled|heartbeat|timeout/i.test(err.message);
  const name = (err as { name?: string } | null)?.name ?? "";
  const msg = (err as { message?: string } | null)?.message ?? "";
  // JetStream still recovering after a server restart (a plain Error subclass in @nats-io/jetstream).
  if (name === "JetStreamNotEnabled") return true;
  return name === "ConnectionError" || name === "ReconnectedError" || /timeout|disconnect|reconnect|ECONNREFUSED|ECONNRESET|no responders/i.test(msg);
}

export interface RetryOptions {
  /** Give up after this long (default: never). */
  maxWaitMs?: number;
  /** Stop retrying when this returns true (e.g. the owner was closed). */
  aborted?: () => boolean;
  /** Extra errors to retry besides transient ones (e.g. back-pressure for publishes). */
  alsoRetry?: (err: unknown) => boolean;
  /** Called before each retry. */
  onRetry?: (err: unknown, attempt: number) => void;
  baseDelayMs?: number;
  maxDelayMs?: number;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs `fn`, retrying transient failures with capped exponential backoff and jitter. */
export async function retrying<T>(fn: () => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const start = Date.now();
  const base = opts.baseDelayMs ?? 50;
  const cap = opts.maxDelayMs ?? 1000;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const retryable = isTransient(err) || (opts.alsoRetry?.(err) ?? false);
      if (!retryable || opts.aborted?.()) throw err;
      if (opts.maxWaitMs !== undefined && Date.now() - start >= opts.maxWaitMs) throw err;
      opts.onRetry?.(err, attempt);
      const delay = Math.min(cap, base * 2 ** Math.min(attempt, 10));
      await sleep(delay / 2 + Math.random() * (delay / 2));
    }
  }
}

/** A log function that prints each key's message only the first time it is seen. */
export function logOnce(log: Log): (key: string, line: string) => void {
  const seen = new Set<string>();
  return (key, line) => {
    if (seen.has(key)) return;
    seen.add(key);
    log(line);
  };
}

/** An operation was in flight when the client reconnected: its request was likely lost with the old socket. */
export class ReconnectedError extends Error {
  constructor(what: string) {
    super(`${what}: interrupted by a reconnect`);
    this.name = "ReconnectedError";
  }
}

/**
 * Watches one connection for reconnects so that in-flight requests (a PubAck, a pull) are retried at once
 * after a server restart instead of waiting for their timeout.
 */
export class ReconnectWatch {
  private readonly listeners = new Set<() => void>();
  /** Number of reconnects seen. */
  reconnects = 0;
  private stopped = false;

  constructor(nc: NatsConnection) {
    (async () => {
      for await (const s of nc.status()) {
        if (this.stopped) break;
        if (s.type !== "reconnect") continue;
        this.reconnects++;
        for (const l of [...this.listeners]) l();
      }
    })().catch(() => {});
  }

  /** Stops watching (the status iterator ends at the next connection event, or with the connection). */
  stop(): void {
    this.stopped = true;
    this.listeners.clear();
  }

  /** Calls `fn` on every reconnect until the returned function is called. */
  on(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Runs `op`; rejects with ReconnectedError (transient) if the connection reconnects before it settles. */
  race<T>(what: string, op: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const off = this.on(() => {
        off();
        reject(new ReconnectedError(what));
      });
      op().then(
        (v) => {
          off();
          resolve(v);
        },
        (err) => {
          off();
          reject(err);
        },
      );
    });
  }
}
