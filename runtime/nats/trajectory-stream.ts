// The job's trajectory stream and its dead-letter stream, as both ends of the bus create them. Either end
// may start first, so each creates what is missing; only the learner (`update`) brings existing streams to
// its configuration, so that workers started with defaults never undo the learner's limits.
//
// Stream `steppo-<job>-traj` on `steppo.<job>.traj.<workerId>` (file storage):
// - retention WorkQueue: a message stays until the learner acks it, then it is deleted, so the stream only
//   holds the backlog (published, not yet durable in the learner) and a killed learner loses nothing.
// - discard New with max_msgs / max_bytes: when the backlog is full the server refuses new messages and the
//   publisher waits and retries (trajectory-publisher.ts): workers slow down when the learner falls behind
//   instead of anything being dropped or growing without bound. Unacked messages the learner holds count
//   towards the limit too. (max_msgs_per_subject is deliberately not used: before nats-server 2.10 a
//   per-subject limit discards the subject's OLDEST message even with discard New.)
// - duplicate_window: publishes carry `Nats-Msg-Id = trajId`, so a publish retried after a lost PubAck
//   (server restart) or a repeated publish of the same trajectory within the window is stored once.
// Stream `steppo-<job>-dlq` on `steppo.<job>.dlq` keeps dead-lettered messages (dead-letters.ts) for a
// bounded time and count, oldest discarded first: it is for inspection, never back-pressure.
import { DiscardPolicy, type JetStreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import type { JobNames } from "../../core/nats-names.ts";
import type { Log } from "./connection.ts";

export const NS_PER_MS = 1_000_000;

export type StreamConfig = Parameters<JetStreamManager["streams"]["add"]>[0];

export interface TrajStreamOptions {
  /** Backlog limit in messages (default 100 000). */
  maxMsgs: number;
  /** Backlog limit in bytes (default 1 GiB). */
  maxBytes: number;
  /** JetStream de-dup window for `Nats-Msg-Id` (default 2 min). */
  duplicateWindowMs: number;
  storage: "file" | "memory";
  replicas: number;
  /** Dead-letter stream: how long and how many messages to keep (default 7 days, 10 000). */
  dlqMaxAgeMs: number;
  dlqMaxMsgs: number;
}

/** The stream options with the defaults filled in. */
export function trajStreamOptions(given: Partial<TrajStreamOptions> = {}): TrajStreamOptions {
  return {
    maxMsgs: 100_000,
    maxBytes: 1 << 30,
    duplicateWindowMs: 120_000,
    storage: "file",
    replicas: 1,
    dlqMaxAgeMs: 7 * 24 * 3600_000,
    dlqMaxMsgs: 10_000,
    ...given,
  };
}

function storageType(s: TrajStreamOptions): StorageType {
  return s.storage === "memory" ? StorageType.Memory : StorageType.File;
}

export function trajStreamConfig(names: JobNames, s: TrajStreamOptions): StreamConfig {
  return {
    name: names.trajStream,
    subjects: [names.trajFilter],
    retention: RetentionPolicy.Workqueue,
    discard: DiscardPolicy.New,
    storage: storageType(s),
    num_replicas: s.replicas,
    max_msgs: s.maxMsgs,
    max_bytes: s.maxBytes,
    duplicate_window: s.duplicateWindowMs * NS_PER_MS,
  };
}

export function dlqStreamConfig(names: JobNames, s: TrajStreamOptions): StreamConfig {
  return {
    name: names.dlqStream,
    subjects: [names.dlqSubject],
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    storage: storageType(s),
    num_replicas: s.replicas,
    max_msgs: s.dlqMaxMsgs,
    max_age: s.dlqMaxAgeMs * NS_PER_MS,
    duplicate_window: s.duplicateWindowMs * NS_PER_MS,
  };
}

/** Creates the stream if missing; `update` (the learner) also brings an existing one to `cfg`. */
export async function ensureStream(jsm: JetStreamManager, cfg: StreamConfig, update: boolean, log: Log): Promise<void> {
  try {
    const info = await jsm.streams.info(cfg.name);
    if (!update) return;
    const c = info.config;
    const differs = (Object.keys(cfg) as (keyof typeof cfg)[]).some((k) => JSON.stringify(c[k]) !== JSON.stringify(cfg[k]));
    if (differs) {
      // Retention and storage cannot change on an existing stream: the server would refuse the whole update.
      const { name, retention: _r, storage: _s, ...rest } = cfg;
      await jsm.streams
        .update(name, rest)
        .catch((err) => log(`stream ${name}: could not update its configuration (${(err as Error).message}); using it as is`));
    }
  } catch (err) {
    if (!/stream not found/i.test((err as Error).message)) throw err;
    try {
      await jsm.streams.add(cfg);
    } catch (e) {
      if (!/already in use/i.test((e as Error).message)) throw e; // created concurrently by another process
    }
  }
}

/** Both of the job's streams: the trajectories and their dead letters. */
export async function ensureTrajectoryStreams(jsm: JetStreamManager, names: JobNames, s: TrajStreamOptions, update: boolean, log: Log): Promise<void> {
  await ensureStream(jsm, trajStreamConfig(names, s), update, log);
  await ensureStream(jsm, dlqStreamConfig(names, s), update, log);
}
