// `steppo results <job>`: lists and downloads what a finished distributed run left in the job's results
// object store (runtime/nats/results.ts): summary.json, curve.csv, curve.svg and policy.steppo (the final
// checkpoint). It reads NATS only, so it works after the job, its pods and its checkpoint claim are gone,
// until the objects expire (spec.results.ttlSeconds after their upload).
import { existsSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseFlags, UsageError } from "../core/args.ts";
import { clusterIdProblem, DEFAULT_NAMESPACE, type NatsJobRef } from "../core/nats-names.ts";
import { checkNatsUrl, ENV } from "../core/process-config.ts";
import { redactUrl } from "../crds/secrets.ts";

export const RESULTS_USAGE = `  results <job>         list and download a finished distributed run's results from NATS (they outlive the job:
                        summary.json, curve.csv, curve.svg, policy.steppo = the final checkpoint), until they
                        expire spec.results.ttlSeconds after upload (default 7 days)
      --nats URL          the NATS server (else STEPPO_NATS_URL)
      --namespace NS      the job's namespace (default "default"), --cluster-id ID the operator's cluster id (default none)
      --nats-creds FILE   NATS creds file (else STEPPO_NATS_CREDS_FILE)
      --out DIR           where to write them (default results/<job>); --list only lists them
`;

const FLAGS = {
  nats: { type: "string" },
  namespace: { type: "string" },
  "cluster-id": { type: "string" },
  "nats-creds": { type: "string" },
  out: { type: "string" },
  list: { type: "boolean" },
} as const;

/** Objects are written under their names: nothing that could leave the output directory. */
const SAFE_FILE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/** No results for the job: says which job, which NATS identity and server, and the likely causes. */
export class NoResultsError extends Error {}

function describeJob(job: NatsJobRef): string {
  return `${job.namespace}/${job.name} (cluster id ${job.cluster ? `"${job.cluster}"` : "none"})`;
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export async function cmdResults(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, FLAGS);
  if (positionals.length !== 1) throw new UsageError("results takes exactly one job name");
  const name = positionals[0];
  const env = process.env;
  const natsUrl = (values.nats as string | undefined) ?? env[ENV.natsUrl]?.trim();
  if (!natsUrl) throw new UsageError(`results: no NATS server: pass --nats URL or set ${ENV.natsUrl}`);
  checkNatsUrl(natsUrl, "results: --nats");
  const cluster = (values["cluster-id"] as string | undefined) ?? "";
  const problem = clusterIdProblem(cluster);
  if (problem) throw new UsageError(`results: --cluster-id: ${problem}`);
  const credsFile = (values["nats-creds"] as string | undefined) ?? (env[ENV.natsCredsFile]?.trim() || undefined);
  if (credsFile !== undefined && !existsSync(credsFile)) throw new UsageError(`results: NATS credentials file "${credsFile}" does not exist`);
  const job: NatsJobRef = { cluster, namespace: (values.namespace as string | undefined) || DEFAULT_NAMESPACE, name };
  const out = (values.out as string | undefined) ?? join("results", name);

  // Loaded here: `steppo help` reads this module for its usage text only.
  const [{ connectNats }, { findResultsStore, listResults, resultsStream }] = await Promise.all([
    import("../runtime/nats/connection.ts"),
    import("../runtime/nats/results.ts"),
  ]);
  const where = `on NATS ${redactUrl(natsUrl)}`;
  const nc = await connectNats({ servers: natsUrl, name: "steppo-results", credsFile, waitOnFirstConnect: false, log: () => {} }).catch((err) => {
    throw new Error(`results: cannot connect to NATS at ${redactUrl(natsUrl)}: ${(err as Error).message}`);
  });
  try {
    const stream = resultsStream(job);
    const causes = `it has not finished a distributed run against this server under this identity, its results expired (spec.results.ttlSeconds after upload), or they were deleted; check --namespace and --cluster-id`;
    const os = await findResultsStore(nc, job);
    if (!os) throw new NoResultsError(`no results for job ${describeJob(job)} ${where}: its results store ${stream} does not exist (${causes})`);
    const objects = await listResults(os);
    if (objects.length === 0) throw new NoResultsError(`no results for job ${describeJob(job)} ${where}: its results store ${stream} is empty (${causes})`);
    const ttlMs = (await os.status()).ttl / 1e6;
    const expiry = (mtime: string) => (ttlMs > 0 ? `expires ${new Date(Date.parse(mtime) + ttlMs).toISOString()}` : "kept until deleted");
    process.stderr.write(`results of job ${describeJob(job)} ${where} (${stream}):\n`);
    if (!values.list) await mkdir(out, { recursive: true });
    for (const info of objects) {
      if (!SAFE_FILE_NAME.test(info.name)) {
        process.stderr.write(`skipping object "${info.name}": not a plain file name\n`);
        continue;
      }
      const line = `${info.name}\t${formatBytes(info.size)}\tuploaded ${info.mtime}, ${expiry(info.mtime)}${info.description ? `\t(${info.description})` : ""}`;
      if (values.list) {
        process.stdout.write(`${line}\n`);
        continue;
      }
      const data = await os.getBlob(info.name);
      if (!data) throw new Error(`results: ${info.name} vanished from ${stream} while downloading (expired?)`);
      const path = join(out, info.name);
      await writeFile(`${path}.part`, data);
      await rename(`${path}.part`, path);
      process.stdout.write(`${line}\t→ ${path}\n`);
    }
    if (!values.list) process.stderr.write(`downloaded ${objects.length} file(s) to ${out}\n`);
    return 0;
  } finally {
    await nc.close().catch(() => {});
  }
}
