// Results that outlive the job: at the end of a distributed run the learner copies the run directory's
// summary.json, curve.csv and curve.svg and its newest checkpoint (the final policy, as `policy.steppo`) into
// the job's results object store (`steppo-<job>-results`, names in core/nats-names.ts). The store's stream has
// `max_age` = `spec.results.ttlSeconds` (0: none), so every object expires that long after its upload; the
// operator's finalizer does not delete it, so it survives the job, its pods and its checkpoint claim.
// `steppo results <job>` (cli/results-command.ts) lists and downloads what it holds.
//
// Uploads overwrite objects of the same name, so uploading again (a learner that resumes an already finished
// run, a run continued to more updates) leaves one set: the newest. This module loads no tfjs (the CLI uses it).
import { basename, join } from "node:path";
import { readFile } from "node:fs/promises";
import { JetStreamApiError, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { type ObjectInfo, type ObjectStore, Objm } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import { jobNames, type NatsJobRef } from "../../core/nats-names.ts";
import { type RetryOptions, retrying } from "./connection.ts";

/** The run directory's files copied as they are, under their own names. */
export const RESULT_FILES = ["summary.json", "curve.csv", "curve.svg"] as const;
/** Object name of the final policy: the run's newest checkpoint file (weights, optimiser state, run state). */
export const POLICY_OBJECT = "policy.steppo";

/** JetStream's "stream not found" API error code. */
const STREAM_NOT_FOUND = 10059;

const nanos = (seconds: number) => seconds * 1_000_000_000;

/** The stream behind a job's results store (what `nats stream rm` deletes). */
export function resultsStream(job: NatsJobRef): string {
  return `OBJ_${jobNames(job).resultsBucket}`;
}

/**
 * Opens (creating if missing) the job's results store with `max_age` = ttlSeconds; an existing store with
 * another TTL (the spec changed) gets the new one.
 */
export async function openResultsStore(nc: NatsConnection, job: NatsJobRef, ttlSeconds: number, retry: RetryOptions = {}): Promise<ObjectStore> {
  const bucket = jobNames(job).resultsBucket;
  const os = await retrying(
    () =>
      new Objm(nc).create(bucket, {
        description: `steppo results of ${job.cluster ? `${job.cluster}/` : ""}${job.namespace}/${job.name}`,
        ttl: nanos(ttlSeconds),
        storage: StorageType.File,
        replicas: 1,
      }),
    retry,
  );
  const jsm = await retrying(() => jetstreamManager(nc), retry);
  const stream = resultsStream(job);
  const info = await retrying(() => jsm.streams.info(stream), retry);
  if (info.config.max_age !== nanos(ttlSeconds)) {
    await retrying(() => jsm.streams.update(stream, { max_age: nanos(ttlSeconds) }), retry);
  }
  return os;
}

export interface UploadResultsOptions {
  job: NatsJobRef;
  /** spec.results.ttlSeconds (0: keep until deleted by hand). */
  ttlSeconds: number;
  /** The run directory holding summary.json, curve.csv, curve.svg. */
  runDir: string;
  /** The newest checkpoint file (the final policy); absent: no policy is uploaded. */
  checkpointPath?: string;
  /** Give up on a NATS operation that keeps failing transiently after this long (default 60 s): the run must end. */
  maxWaitMs?: number;
}

/** Uploads the run's results; resolves with the object names written. Throws on a NATS or file error. */
export async function uploadResults(nc: NatsConnection, o: UploadResultsOptions): Promise<string[]> {
  const retry: RetryOptions = { maxWaitMs: o.maxWaitMs ?? 60_000 };
  const os = await openResultsStore(nc, o.job, o.ttlSeconds, retry);
  const written: string[] = [];
  for (const file of RESULT_FILES) {
    const data = await readFile(join(o.runDir, file));
    await retrying(() => os.putBlob({ name: file }, data), retry);
    written.push(file);
  }
  if (o.checkpointPath) {
    const path = o.checkpointPath;
    const data = await readFile(path);
    await retrying(
      () => os.putBlob({ name: POLICY_OBJECT, description: `the final policy: checkpoint ${basename(path)}`, metadata: { checkpoint: basename(path) } }, data),
      retry,
    );
    written.push(POLICY_OBJECT);
  }
  return written;
}

/** The job's results store, or undefined when there is none (never created, expired whole, or deleted). */
export async function findResultsStore(nc: NatsConnection, job: NatsJobRef): Promise<ObjectStore | undefined> {
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.info(resultsStream(job));
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === STREAM_NOT_FOUND) return undefined;
    throw err;
  }
  return new Objm(nc).open(jobNames(job).resultsBucket);
}

/** The store's live objects, by name. */
export async function listResults(os: ObjectStore): Promise<ObjectInfo[]> {
  return (await os.list()).filter((i) => !i.deleted).sort((a, b) => a.name.localeCompare(b.name));
}
