// The generated StepPOJob CRD against a REAL kube-apiserver + etcd (test/cluster), driven with the real
// kubectl: it installs, defaults, refuses invalid manifests naming the field, prints its columns, and
// scales through the scale subresource.
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import yaml from "js-yaml";
import { loadJobFile, parseJob } from "../../crds/job-spec.ts";
import { CRD_NAME, CRD_PATH } from "../../crds/generate.ts";
import { JOB_NAME_MESSAGE, MAX_JOB_NAME_LENGTH } from "../../crds/names.ts";
import { type KubectlResult, startTestCluster, type TestCluster } from "../cluster/cluster.ts";

const EXAMPLES = fileURLToPath(new URL("../../examples/", import.meta.url));

let cluster: TestCluster;

async function kubectl(args: string[], input?: string): Promise<KubectlResult> {
  return cluster.kubectl(args, { input });
}

async function ok(args: string[], input?: string): Promise<string> {
  const r = await kubectl(args, input);
  assert.equal(r.code, 0, `kubectl ${args.join(" ")} failed:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

function manifest(name: string, spec: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion: "steppo.dev/v1alpha1", kind: "StepPOJob", metadata: { name }, spec };
}

/** Applies `doc` and asserts the API server refuses it with every one of `expected` in the message. */
async function refused(doc: Record<string, unknown>, expected: (string | RegExp)[]): Promise<string> {
  const r = await kubectl(["apply", "-f", "-"], yaml.dump(doc));
  assert.notEqual(r.code, 0, `the server accepted an invalid manifest:\n${yaml.dump(doc)}\n${r.stdout}`);
  for (const e of expected) {
    if (typeof e === "string") assert.ok(r.stderr.includes(e), `expected ${JSON.stringify(e)} in the server's refusal:\n${r.stderr}`);
    else assert.match(r.stderr, e);
  }
  return r.stderr;
}

async function getJob(name: string): Promise<Record<string, unknown> & { spec: Record<string, Record<string, unknown>> }> {
  return JSON.parse(await ok(["get", `steppojob/${name}`, "-o", "json"]));
}

describe("StepPOJob CRD on a real kube-apiserver", () => {
  before(async () => {
    cluster = await startTestCluster();
    process.stderr.write(`[crd.test] cluster ready in ${cluster.startupMs} ms at ${cluster.server}\n`);
    await ok(["apply", "-f", CRD_PATH]);
    await ok(["wait", "--for=condition=Established", "--timeout=60s", `crd/${CRD_NAME}`]);
  });

  after(async () => {
    await cluster?.stop();
  });

  test("the server accepts the structural schema: Established, NamesAccepted, no NonStructuralSchema", async () => {
    const crd = JSON.parse(await ok(["get", `crd/${CRD_NAME}`, "-o", "json"])) as { status: { conditions: { type: string; status: string }[] } };
    const conds = Object.fromEntries(crd.status.conditions.map((c) => [c.type, c.status]));
    assert.equal(conds.Established, "True");
    assert.equal(conds.NamesAccepted, "True");
    assert.equal(conds.NonStructuralSchema, undefined);
  });

  test("a bare manifest gets the server-side defaults, identical to `steppo run`'s local defaulting", async () => {
    const doc = manifest("defaults", { training: { updates: 5 } });
    await ok(["apply", "-f", "-"], yaml.dump(doc));
    const job = await getJob("defaults");
    assert.equal(job.spec.algorithm.estimator, "step-gae");
    assert.equal(job.spec.rollout.episodesPerUpdate, 32);
    assert.equal(job.spec.rollout.replicas, 1);
    assert.equal((job.spec.algorithm.shuffle as Record<string, unknown>).enabled, true, "nested objects are materialised and defaulted");
    assert.equal(job.spec.runPolicy.backoffLimit, 3);
    assert.equal(job.spec.training.updates, 5, "given values win");
    assert.deepEqual(job.spec, parseJob(doc, "inline").spec, "server defaulting and local defaulting agree");
  });

  test("a job with spec.model.volume applies; without it the same templates may mount the model themselves", async () => {
    const model = { source: "/models/m", volume: { persistentVolumeClaim: { claimName: "models" }, subPath: "qwen" } };
    const beside = { template: { spec: { volumes: [{ name: "hf", emptyDir: {} }], volumeMounts: [{ name: "hf", mountPath: "/models" }] } } };
    const doc = manifest("model-volume", { model, learner: beside, rollout: beside });
    await ok(["apply", "-f", "-"], yaml.dump(doc));
    const job = await getJob("model-volume");
    assert.deepEqual(job.spec.model.volume, model.volume);
    assert.deepEqual(job.spec, parseJob(doc, "inline").spec, "server and local defaulting agree");
    const own = { template: { spec: { volumes: [{ name: "model", emptyDir: {} }], volumeMounts: [{ name: "model", mountPath: "/models/m" }] } } };
    await ok(["apply", "-f", "-"], yaml.dump(manifest("model-template", { model: { source: "/models/m" }, learner: own, rollout: own })));
  });

  test("every manifest in examples/ applies as it is", async () => {
    const files = [join(EXAMPLES, "quickstart.yaml"), ...readdirSync(join(EXAMPLES, "ablation")).map((f) => join(EXAMPLES, "ablation", f))];
    for (const f of files) {
      await ok(["apply", "-f", f]);
      const local = loadJobFile(f);
      assert.deepEqual((await getJob(local.metadata.name)).spec, local.spec, `${f}: the server's defaults match steppo run's`);
    }
  });

  test("invalid manifests are refused by the server with the field named", async () => {
    // Enum.
    await refused(manifest("bad-estimator", { algorithm: { estimator: "ppo-magic" } }), ["spec.algorithm.estimator", "Unsupported value", "ppo-magic"]);
    // CEL: replicas <= maxReplicas.
    await refused(manifest("bad-max", { rollout: { replicas: 5, maxReplicas: 2 } }), ["spec.rollout.replicas", "replicas must be <= maxReplicas"]);
    // CEL: minReplicas <= replicas.
    await refused(manifest("bad-min", { rollout: { replicas: 2, minReplicas: 4 } }), ["spec.rollout.minReplicas", "minReplicas must be <= replicas"]);
    // Minimum.
    await refused(manifest("bad-updates", { training: { updates: -3 } }), ["spec.training.updates", "greater than or equal to 1"]);
    // Type.
    await refused(manifest("bad-type", { rollout: { replicas: "three" } }), ["spec.rollout.replicas", "must be of type integer"]);
    // CEL on a defaulted field: the batch must split into whole groups.
    await refused(manifest("bad-groups", { rollout: { episodesPerUpdate: 30, groupSize: 4 } }), ["spec.rollout.episodesPerUpdate", "multiple of groupSize"]);
    // CEL on an optional field.
    // (1.5 would already fail the maximum of 1; exactly 1 passes it and fails the strict CEL rule.)
    await refused(manifest("bad-clip", { algorithm: { clip: 1 } }), ["spec.algorithm.clip", "clip must be below 1"]);
    // Maximum: every number has a finite range.
    await refused(manifest("bad-replicas", { rollout: { replicas: 10_000_000 } }), ["spec.rollout.replicas", "less than or equal to 1000"]);
    // CEL with the preset's values: dModel divisible by heads, and room in the context after maxStepTokens.
    await refused(manifest("bad-heads", { model: { heads: 3 } }), ["spec.model.dModel", "dModel must be divisible by heads"]);
    await refused(manifest("bad-context", { model: { contextLength: 32 }, environment: { maxStepTokens: 30 } }), [
      "spec.environment.maxStepTokens",
      "room for the context",
    ]);
    // CEL on spec.model.volume (crds/model-volume.ts): it needs source, holds exactly one volume source, is
    // mounted at a path clear of the operator's, and the pod templates keep off its name and path.
    const pvc = { persistentVolumeClaim: { claimName: "models" } };
    await refused(manifest("bad-volume-source", { model: { volume: pvc } }), ["spec.model.volume", "it needs source"]);
    await refused(manifest("bad-volume-kind", { model: { source: "/models/m", volume: { ...pvc, configMap: { name: "m" } } } }), [
      "spec.model.volume",
      "exactly one of persistentVolumeClaim and configMap",
    ]);
    await refused(manifest("bad-volume-subpath", { model: { source: "/models/m", volume: { ...pvc, subPath: "a/../b" } } }), [
      "spec.model.volume.subPath",
      "without .. segments",
    ]);
    await refused(manifest("bad-volume-clean", { model: { source: "/models/m/", volume: pvc } }), ["spec.model.source", "without a trailing slash"]);
    await refused(manifest("bad-volume-path", { model: { source: "/var/lib/steppo/m", volume: pvc } }), [
      "spec.model.source",
      "the operator's own mount paths",
    ]);
    await refused(
      manifest("bad-volume-name", {
        model: { source: "/models/m", volume: pvc },
        learner: { template: { spec: { volumes: [{ name: "model", emptyDir: {} }] } } },
      }),
      ["spec.learner.template.spec.volumes", "the volume name model is the operator's"],
    );
    await refused(
      manifest("bad-volume-mount", {
        model: { source: "/models/m", volume: pvc },
        rollout: { template: { spec: { volumeMounts: [{ name: "hf", mountPath: "/models/m/adapters" }] } } },
      }),
      ["spec.rollout.template.spec.volumeMounts", "at or inside that path"],
    );
    // Unknown fields (kubectl asks for strict field validation).
    await refused(manifest("bad-field", { algorithm: { estimater: "grpo" } }), [/unknown field "spec\.algorithm\.estimater"/]);
    // Exclusive minimum.
    await refused(manifest("bad-lr", { algorithm: { learningRate: 0 } }), ["spec.algorithm.learningRate", "greater than 0"]);
    // Several errors at once: each is named.
    const many = await refused(manifest("bad-many", { algorithm: { estimator: "x" }, training: { updates: 0 }, runPolicy: { cleanPodPolicy: "Some" } }), [
      "spec.algorithm.estimator",
      "spec.training.updates",
      "spec.runPolicy.cleanPodPolicy",
    ]);
    assert.ok(many.length > 0);
    const names = JSON.parse(await ok(["get", "spj", "-o", "json"])) as { items: { metadata: { name: string } }[] };
    assert.ok(!names.items.some((i) => i.metadata.name.startsWith("bad-")), "no invalid job was stored");
  });

  test("job names the runtime cannot use are refused by the server with the loader's message", async () => {
    const longest = `a${"b".repeat(MAX_JOB_NAME_LENGTH - 1)}`;
    for (const name of ["exp.v2", "a".repeat(254), "x".repeat(MAX_JOB_NAME_LENGTH + 1), "1job"]) {
      const stderr = await refused(manifest(name, {}), name.length > 253 ? [] : [JOB_NAME_MESSAGE]);
      // The same manifest, loaded locally, fails with the same message.
      assert.throws(
        () => parseJob(manifest(name, {}), "x.yaml"),
        (err: Error) => err.message.includes(JOB_NAME_MESSAGE),
        stderr,
      );
    }
    // Uppercase never reaches the rule: object names are lowercase (the server says so itself).
    await refused(manifest("Exp", {}), ["Exp"]);
    await ok(["apply", "-f", "-"], yaml.dump(manifest(longest, {})));
    assert.equal((await getJob(longest)).metadata !== undefined, true);
    await ok(["delete", `steppojob/${longest}`]);
  });

  test("status is a subresource: kubectl get spj prints the columns from it", async () => {
    await ok(["apply", "-f", "-"], yaml.dump(manifest("columns", { rollout: { replicas: 3 } })));
    const header = (await ok(["get", "spj", "columns"])).split("\n")[0];
    assert.deepEqual(header.trim().split(/\s+/), ["NAME", "PHASE", "UPDATE", "SUCCESS", "LAG", "READY", "AGE"]);
    const status = {
      phase: "Running",
      update: 12,
      progress: "12/30",
      successRate: 0.75,
      ready: "2/3",
      training: { policyLag: { mean: 0.5, max: 1 } },
      rollout: { ready: 2, desired: 3 },
      selector: "steppo.dev/job=columns,steppo.dev/role=rollout",
      conditions: [
        {
          type: "Running",
          status: "True",
          reason: "PodsRunning",
          message: "learner and rollouts running",
          lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
        },
      ],
    };
    await ok(["patch", "spj", "columns", "--subresource=status", "--type=merge", "-p", JSON.stringify({ status })]);
    const row = (await ok(["get", "spj", "columns", "--no-headers"])).trim().split(/\s+/);
    assert.deepEqual(row.slice(0, 6), ["columns", "Running", "12/30", "0.75", "0.5", "2/3"]);
    // The main resource ignores status; the status subresource validates it.
    await ok(["patch", "spj", "columns", "--type=merge", "-p", JSON.stringify({ status: { phase: "Failed" } })]);
    assert.equal((JSON.parse(await ok(["get", "spj", "columns", "-o", "json"])) as { status: { phase: string } }).status.phase, "Running");
    const bad = await kubectl(["patch", "spj", "columns", "--subresource=status", "--type=merge", "-p", JSON.stringify({ status: { phase: "Exploded" } })]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /status\.phase/);
  });

  test("kubectl scale round-trips through the scale subresource, and CEL still guards it", async () => {
    await ok(["apply", "-f", "-"], yaml.dump(manifest("scaled", { rollout: { replicas: 1, maxReplicas: 4 } })));
    await ok([
      "patch",
      "spj",
      "scaled",
      "--subresource=status",
      "--type=merge",
      "-p",
      JSON.stringify({ status: { rollout: { ready: 1, desired: 1 }, selector: "steppo.dev/job=scaled" } }),
    ]);
    assert.match(await ok(["scale", "spj/scaled", "--replicas=3"]), /scaled/);
    assert.equal((await getJob("scaled")).spec.rollout.replicas, 3);
    const scale = JSON.parse(await ok(["get", "--raw", "/apis/steppo.dev/v1alpha1/namespaces/default/steppojobs/scaled/scale"])) as {
      kind: string;
      spec: { replicas: number };
      status: { replicas: number; selector: string };
    };
    assert.equal(scale.kind, "Scale");
    assert.equal(scale.spec.replicas, 3);
    assert.equal(scale.status.replicas, 1, "status replicas come from .status.rollout.ready");
    assert.equal(scale.status.selector, "steppo.dev/job=scaled");
    const tooMany = await kubectl(["scale", "spj/scaled", "--replicas=9"]);
    assert.notEqual(tooMany.code, 0, "scaling past maxReplicas must be refused");
    assert.match(tooMany.stderr, /replicas must be <= maxReplicas/);
    assert.equal((await getJob("scaled")).spec.rollout.replicas, 3);
  });
});
