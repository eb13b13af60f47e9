// Policy weights and job state on JetStream: one object per policy version in the job's object store
// (`steppo-<job>-weights`, object `v<version>`, the last `keepVersions` kept) and the current version plus
// JSON job state (learner progress, …) in the job's KV bucket (`steppo-<job>`; <job> is the scope token of
// names.ts, unique per cluster, namespace and name). The version key is written
// only after the object is stored, so a worker that reads version N can always fetch `vN` (until pruned).
import { StorageType } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { Objm, type ObjectStore } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import type { WeightStore } from "../../core/bus.ts";
import { defaultLog, type Log, retrying } from "./connection.ts";
import { jobNames, KV_KEYS, type NatsJobRef, weightObjectName } from "../../core/nats-names.ts";

export interface JobStateKVOptions {
  /** Whose bucket: the job's identity (cluster, namespace, name), never its name alone. */
  job: NatsJobRef;
  storage?: "file" | "memory";
  replicas?: number;
  /** Revisions kept per key (default 1). */
  history?: number;
}

/** JSON values by key in the job's KV bucket (keys: dot-separated tokens of [-/_=a-zA-Z0-9]). */
export class JobStateKV {
  private constructor(readonly kv: KV) {}

  static async open(nc: NatsConnection, opts: JobStateKVOptions): Promise<JobStateKV> {
    const kv = await retrying(() =>
      new Kvm(nc).create(jobNames(opts.job).kvBucket, {
        history: opts.history ?? 1,
        storage: opts.storage === "memory" ? StorageType.Memory : StorageType.File,
        replicas: opts.replicas ?? 1,
      }),
    );
    return new JobStateKV(kv);
  }

  /** Stores `value` as JSON; returns the new revision. */
  async put(key: string, value: unknown): Promise<number> {
    const data = JSON.stringify(value);
    return retrying(() => this.kv.put(key, data));
  }

  /** The value, or undefined when the key is absent or deleted. */
  async get<T>(key: string): Promise<T | undefined> {
    const e = await retrying(() => this.kv.get(key));
    if (e?.operation !== "PUT") return undefined;
    return e.json<T>();
  }

  async delete(key: string): Promise<void> {
    await retrying(() => this.kv.delete(key));
  }

  /**
   * Calls `onValue` with the current value (if any) and every later change (undefined when deleted).
   * Survives reconnects (the watcher is an ordered consumer). Returns a function that stops watching.
   */
  async watch<T>(key: string, onValue: (value: T | undefined, revision: number) => void): Promise<() => void> {
    const it = await retrying(() => this.kv.watch({ key }));
    (async () => {
      for await (const e of it) {
        let value: T | undefined;
        if (e.operation === "PUT") {
          try {
            value = e.json<T>();
          } catch {
            continue; // not JSON: not ours
          }
        }
        onValue(value, e.revision);
      }
    })().catch(() => {});
    return () => it.stop();
  }
}

export interface NatsWeightStoreOptions {
  job: NatsJobRef;
  /** Versions kept in the object store (default 3, like the in-memory store). */
  keepVersions?: number;
  storage?: "file" | "memory";
  replicas?: number;
  log?: Log;
}

export class NatsWeightStore implements WeightStore {
  private constructor(
    private readonly os: ObjectStore,
    readonly state: JobStateKV,
    private readonly keep: number,
    private readonly log: Log,
  ) {}

  /** Opens (creating if missing) the job's weights object store and KV bucket. Pass `state` to share a JobStateKV. */
  static async open(nc: NatsConnection, opts: NatsWeightStoreOptions, state?: JobStateKV): Promise<NatsWeightStore> {
    const os = await retrying(() =>
      new Objm(nc).create(jobNames(opts.job).weightsBucket, {
        storage: opts.storage === "memory" ? StorageType.Memory : StorageType.File,
        replicas: opts.replicas ?? 1,
      }),
    );
    const kv = state ?? (await JobStateKV.open(nc, { job: opts.job, storage: opts.storage, replicas: opts.replicas }));
    return new NatsWeightStore(os, kv, Math.max(1, opts.keepVersions ?? 3), opts.log ?? defaultLog);
  }

  async publish(version: number, weights: Uint8Array): Promise<void> {
    if (!Number.isSafeInteger(version) || version < 0) throw new RangeError(`NatsWeightStore.publish: bad version ${version}`);
    await retrying(() => this.os.putBlob({ name: weightObjectName(version) }, weights));
    if (version > (await this.latestVersion())) await this.state.put(KV_KEYS.policyVersion, version);
    await this.prune(version).catch((err) => this.log(`pruning old policy versions failed: ${(err as Error).message}`));
  }

  private async prune(latest: number): Promise<void> {
    const infos = await retrying(() => this.os.list());
    for (const info of infos) {
      const m = /^v(\d+)$/.exec(info.name);
      if (m && Number(m[1]) <= latest - this.keep && !info.deleted) await retrying(() => this.os.delete(info.name));
    }
  }

  async latestVersion(): Promise<number> {
    const v = await this.state.get<number>(KV_KEYS.policyVersion);
    return typeof v === "number" ? v : -1;
  }

  async get(version: number): Promise<Uint8Array | undefined> {
    const blob = await retrying(() => this.os.getBlob(weightObjectName(version)));
    return blob ? new Uint8Array(blob.buffer, blob.byteOffset, blob.byteLength) : undefined;
  }

  /** Calls `onVersion` whenever the current policy version changes (workers may also just poll latestVersion()). */
  watchLatest(onVersion: (version: number) => void): Promise<() => void> {
    return this.state.watch<number>(KV_KEYS.policyVersion, (v) => {
      if (typeof v === "number") onVersion(v);
    });
  }
}
