// Deletes a job's NATS resources (the finalizer's work, see finalizer.ts): the trajectory and dead-letter
// streams, the KV bucket (stream KV_<bucket>) and the weights object store (stream OBJ_<bucket>). Each
// deletion is idempotent (a stream already gone counts as deleted). Connections are kept per NATS URL; a
// server that cannot be reached makes cleanup() throw quickly, and the reconciler retries through the work
// queue's backoff (no loop here).
import { type JetStreamManager, JetStreamApiError, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { connectNats } from "../runtime/nats/connection.ts";
import { jobNames, type NatsJobRef } from "../core/nats-names.ts";

/** JetStream's "stream not found" API error code. */
const STREAM_NOT_FOUND = 10059;

/** The streams that hold a job's NATS state. */
export function jobStreams(job: NatsJobRef): string[] {
  const n = jobNames(job);
  return [n.trajStream, n.dlqStream, `KV_${n.kvBucket}`, `OBJ_${n.weightsBucket}`];
}

export interface NatsCleaner {
  /** Deletes the job's streams and buckets; resolves with the names that existed. Throws when NATS cannot be reached. */
  cleanup(job: NatsJobRef, url: string): Promise<string[]>;
  close(): Promise<void>;
}

export interface NatsCleanerOptions {
  credsFile?: string;
  log: (m: string) => void;
  /** JetStream API timeout (default 3 s): a server that went away fails the attempt this quickly. */
  timeoutMs?: number;
  connect?: (url: string) => Promise<NatsConnection>;
}

export class JetStreamCleaner implements NatsCleaner {
  private readonly conns = new Map<string, Promise<NatsConnection>>();

  constructor(private readonly o: NatsCleanerOptions) {}

  private connection(url: string): Promise<NatsConnection> {
    let c = this.conns.get(url);
    if (!c) {
      const connect =
        this.o.connect ??
        ((u: string) => connectNats({ servers: u, name: "steppo-operator-cleanup", credsFile: this.o.credsFile, waitOnFirstConnect: false, log: this.o.log }));
      c = connect(url);
      // A failed first connect is not cached: the next attempt dials again.
      c.catch(() => this.conns.delete(url));
      this.conns.set(url, c);
    }
    return c;
  }

  async cleanup(job: NatsJobRef, url: string): Promise<string[]> {
    const nc = await this.connection(url);
    const jsm: JetStreamManager = await jetstreamManager(nc, { timeout: this.o.timeoutMs ?? 3000 });
    const deleted: string[] = [];
    for (const stream of jobStreams(job)) {
      try {
        await jsm.streams.delete(stream);
        deleted.push(stream);
      } catch (err) {
        if (err instanceof JetStreamApiError && err.code === STREAM_NOT_FOUND) continue;
        throw err;
      }
    }
    return deleted;
  }

  async close(): Promise<void> {
    const conns = [...this.conns.values()];
    this.conns.clear();
    await Promise.all(conns.map(async (p) => (await p.catch(() => undefined))?.close()));
  }
}
