// The operator's footprint: `steppo operator` loads neither tfjs nor its wasm backend (every module the
// process resolves is traced), and the informer caches keep only the fields the operator reads.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { V1Pod } from "@kubernetes/client-node";
import { formatLine, makeLog, withFields } from "../../operator/log.ts";
import { trimConfigMap, trimJob, trimMetaOnly, trimPod } from "../../operator/trim.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Module URLs `steppo <args>` resolves before it exits (a bad flag makes the command exit right after loading). */
function importsOf(args: string[]): string[] {
  const dir = mkdtempSync(join(tmpdir(), "steppo-imports-"));
  const out = join(dir, "imports.txt");
  try {
    const r = spawnSync(process.execPath, ["--import", "./test/support/trace-imports.mjs", "bin/steppo.mjs", ...args], {
      cwd: ROOT,
      env: { ...process.env, STEPPO_TRACE_IMPORTS: out },
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(r.status, 2, `steppo ${args.join(" ")}: ${r.stderr}`);
    return readFileSync(out, "utf8").trim().split("\n");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("operator footprint", () => {
  test("steppo operator and steppo validate load neither tfjs nor the wasm backend", () => {
    const operator = importsOf(["operator", "--no-such-flag"]);
    assert.ok(
      operator.some((u) => /\/operator\/controller\.(ts|js)$/.test(u)),
      "the trace saw the operator's modules",
    );
    assert.deepEqual(
      operator.filter((u) => /@tensorflow|tfjs|\/learner\//.test(u)),
      [],
    );
    assert.deepEqual(
      importsOf(["validate", "--no-such-flag"]).filter((u) => /@tensorflow|tfjs/.test(u)),
      [],
    );
  });

  test("the caches keep what the operator reads and drop the rest", () => {
    const meta = {
      name: "j-learner-0",
      namespace: "ns",
      uid: "u",
      resourceVersion: "7",
      labels: { "steppo.dev/job": "j" },
      annotations: { a: "b", "kubectl.kubernetes.io/last-applied-configuration": "{…}" },
      ownerReferences: [{ apiVersion: "steppo.dev/v1alpha1", kind: "StepPOJob", name: "j", uid: "ju", controller: true }],
      managedFields: [{ manager: "kubectl", operation: "Apply" }],
    };
    const pod = {
      metadata: meta,
      spec: { containers: [{ name: "learner", image: "x" }] },
      status: {
        phase: "Pending",
        podIP: "10.0.0.1",
        qosClass: "Burstable",
        conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message: "no gpu", lastProbeTime: null }],
        containerStatuses: [{ name: "learner", image: "x", imageID: "sha", ready: false, restartCount: 0, state: { waiting: { reason: "ErrImagePull" } } }],
      },
    } as unknown as V1Pod;
    const t = trimPod(pod);
    assert.deepEqual(t.metadata?.annotations, { a: "b" });
    assert.equal((t.metadata as Record<string, unknown>).managedFields, undefined);
    assert.deepEqual(t.metadata?.ownerReferences, meta.ownerReferences);
    assert.equal(t.spec, undefined);
    assert.deepEqual(t.status, {
      phase: "Pending",
      conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message: "no gpu" }],
      containerStatuses: [{ name: "learner", ready: false, restartCount: 0, state: { waiting: { reason: "ErrImagePull" } } }],
    });
    const job = trimJob({
      apiVersion: "steppo.dev/v1alpha1",
      kind: "StepPOJob",
      metadata: meta,
      spec: { a: 1 },
      status: { phase: "Running" },
    } as never) as never as Record<string, unknown>;
    assert.deepEqual([job.spec, job.status, job.kind], [{ a: 1 }, { phase: "Running" }, "StepPOJob"]);
    assert.deepEqual(trimConfigMap({ metadata: meta, data: { "job.yaml": "x" } }).data, { "job.yaml": "x" });
    assert.deepEqual(Object.keys(trimMetaOnly({ metadata: meta, spec: { clusterIP: "None" } } as never)), ["apiVersion", "kind", "metadata"]);
  });
});

describe("operator log lines", () => {
  test("text keeps the old form; json has time, level, component, job (from the field or the message's job key)", () => {
    const now = new Date("2026-01-01T00:00:00Z");
    assert.equal(formatLine("text", "op-1", "ns/j: hello"), "[operator op-1] ns/j: hello");
    assert.deepEqual(JSON.parse(formatLine("json", "op-1", "ns/j: cannot watch", { component: "progress-watch" }, now)), {
      time: "2026-01-01T00:00:00.000Z",
      level: "info",
      component: "progress-watch",
      job: "ns/j",
      instance: "op-1",
      msg: "ns/j: cannot watch",
    });
    const j = JSON.parse(formatLine("json", "op-1", "reconcile ns/j failed", { level: "error", job: "ns/j", component: "controller" }, now));
    assert.deepEqual([j.level, j.job, j.component], ["error", "ns/j", "controller"]);
    assert.equal(JSON.parse(formatLine("json", "op-1", "controller started", {}, now)).job, undefined);
    const lines: string[] = [];
    withFields(
      makeLog("json", "op-1", (l) => lines.push(l)),
      { component: "leader" },
    )("became leader");
    assert.equal(JSON.parse(lines[0]).component, "leader");
  });
});
