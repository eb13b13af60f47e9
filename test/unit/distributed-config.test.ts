// The distributed runtime's pure pieces: weights blob round trip, vocabulary hash, and the learner/worker
// configuration from flags, environment and job file with errors that say what is missing.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { UsageError } from "../../core/args.ts";
import { learnerConfig, workerConfig } from "../../core/process-config.ts";
import { startTelemetry, withSpan } from "../../core/telemetry.ts";
import { decodeWeights, encodeWeights, vocabularyHash } from "../../core/weights-codec.ts";

const dir = mkdtempSync(join(tmpdir(), "steppo-cfg-"));
const jobFile = join(dir, "job.yaml");
writeFileSync(jobFile, "apiVersion: steppo.dev/v1alpha1\nkind: StepPOJob\nmetadata: {name: cfg-test}\nspec: {checkpoint: {dir: /ckpt}}\n");

describe("weights codec", () => {
  it("round-trips named tensors bit-exactly, whatever the blob's alignment", () => {
    const tensors = [
      { name: "a", shape: [2, 3], data: Float32Array.from([1, -2, 3.5, Number.NaN, 1e-30, -0]) },
      { name: "h0.attn.w_qkv", shape: [3], data: Float32Array.from([0.1, 0.2, 0.3]) },
      { name: "empty", shape: [0], data: new Float32Array(0) },
    ];
    const blob = encodeWeights(tensors);
    const shifted = new Uint8Array(blob.byteLength + 1).subarray(1);
    shifted.set(blob);
    for (const b of [blob, shifted]) {
      const back = decodeWeights(b);
      assert.deepEqual(
        back.map((t) => [t.name, t.shape]),
        tensors.map((t) => [t.name, t.shape]),
      );
      for (const [i, t] of back.entries()) assert.deepEqual(new Uint8Array(t.data.buffer), new Uint8Array(tensors[i].data.buffer));
    }
    assert.ok(blob.byteLength < 8 + 120 + 4 * 9, `compact: a small header plus 4 bytes per value (${blob.byteLength} bytes)`);
  });

  it("rejects foreign and truncated blobs with a clear error", () => {
    assert.throws(() => decodeWeights(new TextEncoder().encode("{json}")), /bad magic/);
    const blob = encodeWeights([{ name: "a", shape: [4], data: new Float32Array(4) }]);
    assert.throws(() => decodeWeights(blob.subarray(0, blob.byteLength - 2)), /truncated/);
    const v2 = blob.slice();
    v2[3] = 9;
    assert.throws(() => decodeWeights(v2), /unknown weights format version 9/);
  });

  it("vocabulary hash depends on words and their order", () => {
    assert.equal(vocabularyHash(["a", "b"]), vocabularyHash(["a", "b"]));
    assert.notEqual(vocabularyHash(["a", "b"]), vocabularyHash(["b", "a"]));
    assert.notEqual(vocabularyHash(["ab"]), vocabularyHash(["a", "b"]));
  });
});

describe("learner / worker configuration", () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("names every way to give a missing job file or NATS URL", () => {
    assert.throws(
      () => learnerConfig({}, {}),
      (e: Error) => e instanceof UsageError && /--job FILE or set STEPPO_JOB_FILE/.test(e.message),
    );
    assert.throws(() => workerConfig({ job: jobFile }, {}), /--nats URL, set STEPPO_NATS_URL, or set spec.nats.url/);
    assert.throws(() => learnerConfig({ job: jobFile, nats: "http://x" }, {}), /not a nats:\/\/host:port URL/);
  });

  it("takes flags over environment over the job file", () => {
    const env = { STEPPO_JOB_FILE: jobFile, STEPPO_NATS_URL: "nats://env:4222", STEPPO_WORKER_ID: "pod-7", STEPPO_METRICS_PORT: "0" };
    const w = workerConfig({}, env);
    assert.equal(w.natsUrl, "nats://env:4222");
    assert.equal(w.workerId, "pod-7");
    assert.equal(w.metricsPort, 0);
    assert.equal(workerConfig({ nats: "nats://flag:1", id: "x" }, env).natsUrl, "nats://flag:1");
    const l = learnerConfig({}, env);
    assert.equal(l.checkpointDir, "/ckpt", "spec.checkpoint.dir when neither flag nor env is set");
    assert.equal(learnerConfig({}, { ...env, STEPPO_CHECKPOINT_DIR: "/pvc" }).checkpointDir, "/pvc");
    assert.equal(l.ackWaitMs, 30_000);
  });

  it("reads the OTLP endpoint and tuning variables, rejecting bad values", () => {
    const env = { STEPPO_JOB_FILE: jobFile, STEPPO_NATS_URL: "nats://h:4222" };
    assert.equal(workerConfig({}, { ...env, OTEL_EXPORTER_OTLP_ENDPOINT: "http://otel:4318" }).otlpEndpoint, "http://otel:4318");
    assert.equal(
      workerConfig({}, { ...env, STEPPO_OTLP_ENDPOINT: "http://a:4318", OTEL_EXPORTER_OTLP_ENDPOINT: "http://b:4318" }).otlpEndpoint,
      "http://a:4318",
    );
    assert.equal(workerConfig({}, { ...env, STEPPO_METRICS_PORT: "off" }).metricsPort, undefined);
    assert.throws(() => workerConfig({}, { ...env, STEPPO_METRICS_PORT: "http" }), /must be a port number/);
    assert.throws(() => learnerConfig({}, { ...env, STEPPO_ACK_WAIT_MS: "-1" }), /STEPPO_ACK_WAIT_MS must be a positive integer/);
    assert.equal(workerConfig({}, env).shutdownTimeoutMs, 20_000, "below Kubernetes' default 30 s grace period");
    assert.equal(workerConfig({}, { ...env, STEPPO_SHUTDOWN_TIMEOUT_MS: "5000" }).shutdownTimeoutMs, 5000);
    assert.throws(() => workerConfig({}, { ...env, STEPPO_SHUTDOWN_TIMEOUT_MS: "soon" }), /STEPPO_SHUTDOWN_TIMEOUT_MS must be a positive integer/);
  });

  it("names the job on NATS by cluster id, namespace and name (flag, env, job file, default)", () => {
    const env = { STEPPO_JOB_FILE: jobFile, STEPPO_NATS_URL: "nats://h:4222" };
    const name = "cfg-test";
    assert.deepEqual(learnerConfig({}, env).natsJob, { cluster: "", namespace: "default", name }, "a job file without a namespace");
    const nsFile = join(dir, "job-ns.yaml");
    writeFileSync(nsFile, "apiVersion: steppo.dev/v1alpha1\nkind: StepPOJob\nmetadata: {name: cfg-test, namespace: ns-a}\nspec: {}\n");
    assert.equal(learnerConfig({}, { ...env, STEPPO_JOB_FILE: nsFile }).natsJob.namespace, "ns-a");
    assert.equal(learnerConfig({}, { ...env, STEPPO_JOB_FILE: nsFile, STEPPO_NAMESPACE: "ns-b" }).natsJob.namespace, "ns-b", "the pod's namespace wins");
    assert.deepEqual(workerConfig({}, { ...env, STEPPO_NAMESPACE: "ns-b", STEPPO_CLUSTER_ID: "east" }).natsJob, { cluster: "east", namespace: "ns-b", name });
    assert.deepEqual(workerConfig({ namespace: "ns-c", "cluster-id": "west" }, { ...env, STEPPO_NAMESPACE: "ns-b" }).natsJob, {
      cluster: "west",
      namespace: "ns-c",
      name,
    });
    assert.throws(() => learnerConfig({}, { ...env, STEPPO_CLUSTER_ID: "East_1" }), /--cluster-id \/ STEPPO_CLUSTER_ID: cluster id "East_1"/);
  });

  it("takes the NATS credentials file the operator mounts (STEPPO_NATS_CREDS_FILE), refusing a missing one", () => {
    const env = { STEPPO_JOB_FILE: jobFile, STEPPO_NATS_URL: "nats://h:4222" };
    assert.equal(workerConfig({}, env).natsCredsFile, undefined);
    assert.equal(workerConfig({}, { ...env, STEPPO_NATS_CREDS_FILE: jobFile }).natsCredsFile, jobFile);
    assert.throws(() => learnerConfig({ "nats-creds": join(dir, "absent.creds") }, env), /NATS credentials file .*absent\.creds.* does not exist/);
  });
});

describe("telemetry", () => {
  it("serves Prometheus text, health and readiness over express", async () => {
    const t = await startTelemetry({ service: "steppo-test", instance: "i", job: "j", port: 0, host: "127.0.0.1", log: () => {} });
    try {
      t.meter.createCounter("steppo_test_things").add(3);
      const get = async (path: string) => {
        const res = await fetch(`http://127.0.0.1:${t.port}${path}`);
        return { status: res.status, body: await res.text() };
      };
      assert.match((await get("/metrics")).body, /steppo_test_things_total\{[^}]*\} 3/);
      assert.equal((await get("/healthz")).status, 200);
      assert.equal((await get("/readyz")).status, 503);
      t.setReady(true);
      assert.equal((await get("/readyz")).status, 200);
      t.setUnhealthy("boom");
      assert.deepEqual(await get("/healthz"), { status: 503, body: "unhealthy: boom\n" });
    } finally {
      await t.close();
    }
  });

  it("exports spans over OTLP/HTTP only when an endpoint is configured", async () => {
    const posts: string[] = [];
    const collector = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        posts.push(req.url ?? "");
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
    await new Promise<void>((r) => collector.listen(0, "127.0.0.1", r));
    const endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
    try {
      const silent = await startTelemetry({ service: "s", instance: "i", job: "j", log: () => {} });
      await withSpan(silent.tracer, "update", { "steppo.update": 1 }, () => 1);
      await silent.close();
      assert.deepEqual(posts, [], "no endpoint: nothing exported");
      const t = await startTelemetry({ service: "s", instance: "i", job: "j", otlpEndpoint: endpoint, log: () => {} });
      assert.equal(await withSpan(t.tracer, "checkpoint", { "steppo.update": 2 }, async () => 42), 42);
      await t.close(); // flushes the batch processor
      assert.deepEqual(posts, ["/v1/traces"]);
    } finally {
      collector.close();
    }
  });
});
