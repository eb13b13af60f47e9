// The operator at scale, against a REAL kube-apiserver + etcd (test/cluster) and a real nats-server (the
// operator watches each job's learner progress in NATS KV, as in production):
//   latency  create → every child exists (learner pod, 2 rollout pods, Service, ConfigMap, PVC), for
//            LATENCY_JOBS jobs created one after another at a steady rate; p50/p95/p99 from the bench's
//            own informers (client-node watches, the same code the operator uses).
//   memory   the operator process's resident set (VmRSS) idle, and after TOTAL_JOBS jobs are reconciled and
//            the work queue is empty.
// The operator runs as its own process (`steppo operator`), so its memory is its own, and as the images run it:
// from the JavaScript build (the bench runs `npm run build` first and starts it with STEPPO_RUNTIME=dist);
// STEPPO_RUNTIME=tsx measures it on the TypeScript sources through tsx instead. The JSON says which.
// → bench/results/operator.json
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { KubernetesObject } from "@kubernetes/client-node";
import yaml from "js-yaml";
import { chooseRuntime } from "../bin/build-id.mjs";
import { CRD_NAME, CRD_PATH } from "../crds/generate.ts";
import { DEFAULT_RECONCILE_WORKERS } from "../operator/controller.ts";
import { makeInformers, startInformers, stopInformers } from "../operator/informers.ts";
import { loadKubeConfig, makeClients } from "../operator/kube.ts";
import { LABEL_JOB } from "../crds/names.ts";
import { startTestCluster } from "../test/cluster/cluster.ts";
import { freePort } from "../test/support/free-port.ts";
import { NatsServer } from "../test/support/nats-server.ts";
import { pollUntil } from "../test/support/poll.ts";
import { createJob } from "../test/support/operator-harness.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const LATENCY_JOBS = Number(process.env.STEPPO_BENCH_LATENCY_JOBS ?? 120);
const TOTAL_JOBS = Number(process.env.STEPPO_BENCH_TOTAL_JOBS ?? 500);
/** One job created every this many ms in the latency phase (steady arrivals, not a burst). */
const ARRIVAL_MS = 100;
const ROLLOUT_REPLICAS = 2;
const CHILDREN = 1 + ROLLOUT_REPLICAS + 3;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) / 1024;
}

function quantile(sorted: number[], q: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

/** operator.nodeOptions of the chart's values.yaml (the deployment template sets it as NODE_OPTIONS). */
function chartNodeOptions(): string {
  const values = yaml.load(readFileSync(join(ROOT, "charts/steppo/values.yaml"), "utf8")) as { operator?: { nodeOptions?: string } };
  return values.operator?.nodeOptions ?? "";
}

async function metric(port: number, name: string): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Waits for `fn` to hold, with the tests' one polling helper. */
async function until(what: string, fn: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  await pollUntil(what, timeoutMs, async () => ((await fn()) ? true : undefined));
}

export async function main(): Promise<void> {
  // The API server and etcd only, as the numbers before the test cluster grew controllers: the operator's own
  // latency, not a scheduler and a controller manager busy with 1500 pods no node will run.
  const loadAtStart = loadavg()[0];
  const cluster = await startTestCluster({ controllers: false });
  const nats = await NatsServer.start();
  let operator: ChildProcess | undefined;
  try {
    if ((await cluster.kubectl(["apply", "-f", CRD_PATH])).code !== 0) throw new Error("CRD apply failed");
    await cluster.kubectl(["wait", "--for=condition=Established", "--timeout=60s", `crd/${CRD_NAME}`]);
    const clients = makeClients(loadKubeConfig(cluster.kubeconfigPath));

    const port = await freePort();
    const runtime = process.env.STEPPO_RUNTIME === "tsx" ? "tsx" : "dist";
    if (runtime === "dist") {
      const b = spawnSync(process.execPath, [join(ROOT, "bin/build.mjs")], { cwd: ROOT, encoding: "utf8" });
      if (b.status !== 0) throw new Error(`npm run build failed: ${b.stderr}`);
    }
    // The Node.js options the chart gives the operator pod: the bench measures the process as it is shipped.
    const nodeOptions = chartNodeOptions();
    const operatorRuntime = { ...chooseRuntime(ROOT, { STEPPO_RUNTIME: runtime }), env: `STEPPO_RUNTIME=${runtime}`, nodeOptions };
    operator = spawn(
      process.execPath,
      [join(ROOT, "bin/steppo.mjs"), "operator", "--kubeconfig", cluster.kubeconfigPath, "--no-leader-elect", "--port", String(port), "--nats", nats.url],
      { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, STEPPO_RUNTIME: runtime, NODE_OPTIONS: nodeOptions } },
    );
    let opLog = "";
    operator.stderr?.on("data", (d: Buffer) => {
      opLog = (opLog + d.toString()).slice(-4000);
      if (process.env.STEPPO_BENCH_VERBOSE) process.stderr.write(d);
    });
    const pid = operator.pid ?? -1;
    await until("operator /readyz", async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200, 60_000);
    await sleep(3000);
    const rssIdle = rssMb(pid);

    // The bench's own view of the children: when each job's last child appeared.
    const created = new Map<string, number>();
    const children = new Map<string, number>();
    const complete = new Map<string, number>();
    const informers = makeInformers(clients);
    const onAdd = (o: KubernetesObject) => {
      const job = o.metadata?.labels?.[LABEL_JOB];
      if (!job) return;
      const n = (children.get(job) ?? 0) + 1;
      children.set(job, n);
      if (n === CHILDREN) complete.set(job, performance.now());
    };
    for (const inf of [informers.pods, informers.services, informers.configMaps, informers.pvcs]) (inf as typeof informers.pods).on("add", onAdd);
    await startInformers(informers);

    const spec = { rollout: { replicas: ROLLOUT_REPLICAS } };
    process.stderr.write(`bench operator: latency phase, ${LATENCY_JOBS} jobs, one every ${ARRIVAL_MS} ms\n`);
    for (let i = 0; i < LATENCY_JOBS; i++) {
      const name = `lat-${i}`;
      const t0 = performance.now();
      created.set(name, t0);
      await createJob(clients, name, spec);
      const spent = performance.now() - t0;
      if (spent < ARRIVAL_MS) await sleep(ARRIVAL_MS - spent);
    }
    await until(`${LATENCY_JOBS} jobs complete`, () => [...created.keys()].every((n) => complete.has(n)), 300_000);
    const latencies = [...created.entries()].map(([n, t0]) => (complete.get(n) ?? Number.NaN) - t0).sort((a, b) => a - b);

    process.stderr.write(`bench operator: filling to ${TOTAL_JOBS} jobs\n`);
    let rssPeak = rssMb(pid);
    const fillStart = performance.now();
    const names = Array.from({ length: TOTAL_JOBS - LATENCY_JOBS }, (_, i) => `fill-${i}`);
    for (let i = 0; i < names.length; i += 8) {
      await Promise.all(names.slice(i, i + 8).map((n) => createJob(clients, n, spec)));
      rssPeak = Math.max(rssPeak, rssMb(pid));
    }
    await until(
      `${TOTAL_JOBS} jobs complete`,
      () => {
        rssPeak = Math.max(rssPeak, rssMb(pid));
        return names.every((n) => complete.has(n));
      },
      900_000,
    );
    const fillSeconds = (performance.now() - fillStart) / 1000;
    // Settled: the queue is empty and every job's status has been written at least once.
    await until("operator queue empty", async () => (await metric(port, "steppo_operator_queue_depth")) === 0, 300_000);
    await sleep(5000);
    const rssAt = rssMb(pid);
    await stopInformers(informers);

    const result = {
      bench: "operator",
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGb: totalmem() / 2 ** 30, node: process.version },
      // The 1-minute load average: other work on the machine shares the cores with the API server and the operator.
      loadAverage: { start: loadAtStart, end: loadavg()[0] },
      cluster: { kubernetes: cluster.binaries.versions.kubernetes, etcd: cluster.binaries.versions.etcd },
      operatorRuntime: {
        what: "the code `steppo operator` ran: dist = the JavaScript build (npm run build), tsx = the TypeScript sources through tsx",
        ...operatorRuntime,
      },
      config: {
        latencyJobs: LATENCY_JOBS,
        totalJobs: TOTAL_JOBS,
        arrivalMs: ARRIVAL_MS,
        rolloutReplicas: ROLLOUT_REPLICAS,
        childrenPerJob: CHILDREN,
        reconcileWorkers: DEFAULT_RECONCILE_WORKERS,
      },
      latencyMs: {
        what: "createNamespacedCustomObject called → the bench's informers have seen every child of the job",
        n: latencies.length,
        p50: quantile(latencies, 0.5),
        p95: quantile(latencies, 0.95),
        p99: quantile(latencies, 0.99),
        max: latencies.at(-1),
        mean: latencies.reduce((a, b) => a + b, 0) / latencies.length,
        // Which jobs made the tail, in creation order (lat-0 first): a warm-up effect shows as low indices.
        slowest: [...created.entries()]
          .map(([job, t0]) => ({ job, ms: Math.round((complete.get(job) ?? Number.NaN) - t0) }))
          .sort((a, b) => b.ms - a.ms)
          .slice(0, 5),
      },
      fill: { jobs: names.length, seconds: fillSeconds, jobsPerSecond: names.length / fillSeconds },
      memoryMb: {
        what: "VmRSS of the `steppo operator` process",
        idle: rssIdle,
        atTotalJobs: rssAt,
        peak: rssPeak,
        perJobKb: ((rssAt - rssIdle) * 1024) / TOTAL_JOBS,
        // What of the resident set is live JavaScript objects (the rest: code, V8's reserve, native buffers).
        heapUsedAtTotalJobs: ((await metric(port, "nodejs_heap_size_used_bytes")) ?? Number.NaN) / 2 ** 20,
        heapTotalAtTotalJobs: ((await metric(port, "nodejs_heap_size_total_bytes")) ?? Number.NaN) / 2 ** 20,
        externalAtTotalJobs: ((await metric(port, "nodejs_external_memory_bytes")) ?? Number.NaN) / 2 ** 20,
      },
      operatorCounters: {
        reconcilesSuccess: await metric(port, 'steppo_operator_reconcile_total\\{result="success"\\}'),
        watchErrors: await metric(port, "steppo_operator_watch_errors_total"),
        staleStatusWrites: await metric(port, "steppo_operator_stale_status_writes_total"),
      },
    };
    const out = join(ROOT, "bench/results/operator.json");
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    const l = result.latencyMs;
    process.stderr.write(
      `bench operator: create→children p50 ${l.p50.toFixed(0)} ms, p95 ${l.p95.toFixed(0)} ms, p99 ${l.p99.toFixed(0)} ms over ${l.n} jobs; ` +
        `operator from ${operatorRuntime.runtime}; RSS ${rssIdle.toFixed(0)} MB idle → ${rssAt.toFixed(0)} MB at ${TOTAL_JOBS} jobs (peak ${rssPeak.toFixed(0)} MB; heap ${result.memoryMb.heapUsedAtTotalJobs.toFixed(0)} used of ${result.memoryMb.heapTotalAtTotalJobs.toFixed(0)}, external ${result.memoryMb.externalAtTotalJobs.toFixed(0)}) → ${out}\n`,
    );
    if (opLog.includes("Error")) process.stderr.write(`bench operator: operator log tail:\n${opLog}\n`);
  } finally {
    operator?.kill("SIGTERM");
    await nats.dispose();
    await cluster.stop();
  }
}
