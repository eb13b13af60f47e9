// Resource bounds of a job file: alias bombs, file size, non-finite and unsafe numbers, reserved keys,
// and the cross-field rules that only the runtime used to know (dModel % heads, room in the context).
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { DEFAULT_RESULTS_TTL_SECONDS, jobSchema, LORA_TARGET_MODULES, MAX_RESULTS_TTL_SECONDS } from "../../crds/steppojob.ts";
import { LORA_TARGETS } from "../../policy/hf/lora.ts";
import { loadJobFile, MAX_JOB_FILE_BYTES, parseJob, parseJobYaml } from "../../crds/job-spec.ts";
import { type OpenApiSchema, ValidationError } from "../../crds/schema.ts";
import { modelConfig } from "../../policy/model.ts";

const HEAD = "apiVersion: steppo.dev/v1alpha1\nkind: StepPOJob\nmetadata: {name: demo}\n";
const minimal = { apiVersion: "steppo.dev/v1alpha1", kind: "StepPOJob", metadata: { name: "demo" } };

function errorsOf(doc: unknown): string[] {
  try {
    parseJob(doc, "job.yaml");
  } catch (err) {
    assert.ok(err instanceof ValidationError, `expected ValidationError, got ${err}`);
    return err.errors.map((e) => `${e.path}: ${e.message}`);
  }
  assert.fail("expected the job to be rejected");
}

function withSpec(spec: unknown) {
  return { ...minimal, spec };
}

/** A "billion laughs" document: 9 levels of 10 aliases each, 10^9 values once expanded. */
function aliasBomb(): string {
  const lines = ["spec:", "  environment:", "    config:", "      l0: &l0 [x, x, x, x, x, x, x, x, x, x]"];
  for (let i = 1; i < 9; i++)
    lines.push(
      `      l${i}: &l${i} [${Array(10)
        .fill(`*l${i - 1}`)
        .join(", ")}]`,
    );
  return `${HEAD}${lines.join("\n")}\n`;
}

test("a YAML alias bomb is refused quickly with a clear error", () => {
  const start = performance.now();
  assert.throws(() => parseJobYaml(aliasBomb(), "bomb.yaml"), /bomb\.yaml: the document expands to more than 100000 values/);
  assert.ok(performance.now() - start < 2000, "the bound stops the walk early");
});

test("deep nesting is refused", () => {
  const deep = `${HEAD}spec: {environment: {config: {a: ${"[".repeat(80)}${"]".repeat(80)}}}}\n`;
  assert.throws(() => parseJobYaml(deep, "deep.yaml"), /nests deeper than 64 levels/);
});

test("a job file over 1 MiB is refused before parsing; a directory or two documents are clear errors", () => {
  const dir = mkdtempSync(join(tmpdir(), "steppo-limits-"));
  const big = join(dir, "big.yaml");
  writeFileSync(big, `${HEAD}# ${"x".repeat(MAX_JOB_FILE_BYTES)}\n`);
  assert.throws(() => loadJobFile(big), /big\.yaml: job file of \d+ bytes exceeds the limit of 1048576 bytes/);
  assert.throws(() => loadJobFile(dir), /cannot read job file .*: is a directory, not a job file/);
  const two = join(dir, "two.yaml");
  writeFileSync(two, `${HEAD}---\n${HEAD}`);
  assert.throws(() => loadJobFile(two), /two\.yaml: holds 2 YAML documents; a job file holds exactly one StepPOJob/);
});

test("Infinity, 1e308 and 2^53 + 1 are refused with the field named", () => {
  const errs = errorsOf(
    withSpec({ algorithm: { learningRate: Number.POSITIVE_INFINITY, valueCoef: 1e308 }, training: { updates: 2 ** 53 + 1 }, seed: 2 ** 53 + 1 }),
  );
  const has = (re: RegExp) =>
    assert.ok(
      errs.some((e) => re.test(e)),
      `${re} not in:\n${errs.join("\n")}`,
    );
  has(/^spec\.algorithm\.learningRate: must be a finite number, got Infinity$/);
  has(/^spec\.algorithm\.valueCoef: must be <= 100, got 1e\+308$/);
  has(/^spec\.training\.updates: must be a safe integer/);
  has(/^spec\.seed: must be a safe integer/);
});

test("YAML's .inf and .nan are refused, inside environment.config too", () => {
  const doc = parseJobYaml(`${HEAD}spec:\n  algorithm: {entropyCoef: .nan}\n  environment: {config: {people: .inf}}\n`, "j.yaml");
  const errs = errorsOf(doc);
  assert.ok(errs.includes("spec.algorithm.entropyCoef: must be a number, got NaN"), errs.join("\n"));
  assert.ok(errs.includes("spec.environment.config.people: must be a finite number, got Infinity"), errs.join("\n"));
});

test("rollout.replicas: 1e7 is refused up front", () => {
  assert.deepEqual(errorsOf(withSpec({ rollout: { replicas: 1e7 } })), ["spec.rollout.replicas: must be <= 1000, got 10000000"]);
});

test("every number and integer of the spec has a finite minimum and maximum", () => {
  const missing: string[] = [];
  const walk = (s: OpenApiSchema, path: string) => {
    if (s.type === "number" || s.type === "integer") {
      if (!Number.isFinite(s.minimum) || !Number.isFinite(s.maximum)) missing.push(path);
    }
    for (const [k, child] of Object.entries(s.properties ?? {})) walk(child, `${path}.${k}`);
    if (s.items) walk(s.items, `${path}[]`);
    if (typeof s.additionalProperties === "object") walk(s.additionalProperties, `${path}.*`);
  };
  walk(jobSchema.props.spec.openapi, "spec");
  assert.deepEqual(missing, []);
});

test("__proto__ and constructor are unknown fields, refused and never merged", () => {
  const doc = parseJobYaml(
    `${HEAD}spec:\n  __proto__: {polluted: true}\n  rollout: {constructor: 1}\n  environment: {config: {__proto__: {people: 3}}}\nmetadata2: {}\n`,
    "proto.yaml",
  ) as Record<string, unknown>;
  const errs = errorsOf(doc);
  assert.ok(
    errs.some((e) => e.startsWith("spec.__proto__: unknown field")),
    errs.join("\n"),
  );
  assert.ok(
    errs.some((e) => e.startsWith("spec.rollout.constructor: unknown field")),
    errs.join("\n"),
  );
  assert.ok(
    errs.some((e) => e.startsWith("spec.environment.config.__proto__: reserved key")),
    errs.join("\n"),
  );
  const labels = errorsOf({ ...minimal, metadata: { name: "demo", labels: JSON.parse('{"__proto__": "x"}') } });
  assert.ok(
    labels.some((e) => e.startsWith("metadata.labels.__proto__: reserved key")),
    labels.join("\n"),
  );
  assert.equal(({} as Record<string, unknown>).polluted, undefined, "Object.prototype untouched");
});

test("dModel must be divisible by heads, with the preset's value for the one not given", () => {
  assert.deepEqual(errorsOf(withSpec({ model: { dModel: 30, heads: 4 } })), [
    "spec.model.dModel: dModel must be divisible by heads (with the preset's value for whichever is not set)",
  ]);
  assert.equal(errorsOf(withSpec({ model: { heads: 3 } })).length, 1, "tiny's dModel 64 is not divisible by 3");
  parseJob(withSpec({ model: { dModel: 48, heads: 3 } }), "job.yaml");
  parseJob(withSpec({ model: { preset: "small", heads: 8 } }), "job.yaml");
});

test("model.source: a directory path, no URL, and no architecture fields beside it; the built-in model's config refuses it by name", () => {
  const job = parseJob(withSpec({ model: { source: "/models/qwen2-tiny", contextLength: 256 } }), "job.yaml");
  assert.equal(job.spec.model.source, "/models/qwen2-tiny");
  assert.deepEqual(errorsOf(withSpec({ model: { source: "hf://Qwen/Qwen2.5-0.5B" } })), [
    "spec.model.source: source is a directory path inside the pods (a mounted volume); URLs and model hub downloads are not fetched",
  ]);
  assert.deepEqual(errorsOf(withSpec({ model: { source: "/models/m", layers: 4, heads: 2 } })), [
    "spec.model.source: source takes the architecture from its config.json: dModel, layers, heads cannot be set beside it",
  ]);
  assert.ok(errorsOf(withSpec({ model: { source: "" } }))[0].startsWith("spec.model.source: "));
  // The run builds such a model from its config.json (policy/hf/hf-run-policy.ts), never the preset in its place.
  assert.throws(() => modelConfig(job.spec.model, 40), /^Error: spec\.model\.source: \/models\/qwen2-tiny: a Hugging Face model, not the built-in one/);
});

test("model.lora: rank, alpha and target modules, beside source only; the targets are policy/hf's", () => {
  const lora = { rank: 8, alpha: 16, targetModules: ["q_proj", "v_proj"] };
  const job = parseJob(withSpec({ model: { source: "/models/m", lora } }), "job.yaml");
  assert.deepEqual(job.spec.model.lora, lora);
  assert.deepEqual(errorsOf(withSpec({ model: { lora } })), ["spec.model.lora: lora adapts a Hugging Face model: it needs source"]);
  assert.equal(errorsOf(withSpec({ model: { source: "/m", lora: { ...lora, targetModules: ["qkv"] } } })).length, 1);
  assert.equal(errorsOf(withSpec({ model: { source: "/m", lora: { ...lora, alpha: 0 } } })).length, 1);
  assert.equal(errorsOf(withSpec({ model: { source: "/m", lora: { rank: 4, alpha: 8 } } })).length, 1, "targetModules is required");
  assert.deepEqual([...LORA_TARGET_MODULES], [...LORA_TARGETS]);
});

test("model.volume: exactly one of persistentVolumeClaim and configMap, beside source only, mounted at a clean path clear of the operator's", () => {
  const pvc = { persistentVolumeClaim: { claimName: "models" }, subPath: "qwen2.5-0.5b" };
  assert.deepEqual(parseJob(withSpec({ model: { source: "/models/qwen", volume: pvc } }), "job.yaml").spec.model.volume, pvc);
  parseJob(withSpec({ model: { source: "/models/tiny", volume: { configMap: { name: "tiny-model" } } } }), "job.yaml");
  parseJob(withSpec({ model: { source: "/models/m", volume: { configMap: { name: "m" }, subPath: "a..b/c" } } }), "job.yaml");
  assert.deepEqual(errorsOf(withSpec({ model: { volume: pvc } })), ["spec.model.volume: volume is mounted at source in the pods: it needs source"]);
  const exactlyOne = "spec.model.volume: exactly one of persistentVolumeClaim and configMap";
  assert.deepEqual(errorsOf(withSpec({ model: { source: "/m", volume: { subPath: "x" } } })), [exactlyOne]);
  assert.deepEqual(errorsOf(withSpec({ model: { source: "/m", volume: { persistentVolumeClaim: { claimName: "a" }, configMap: { name: "b" } } } })), [
    exactlyOne,
  ]);
  assert.deepEqual(errorsOf(withSpec({ model: { source: "/m", volume: { persistentVolumeClaim: {} } } })), [
    "spec.model.volume.persistentVolumeClaim.claimName: is required",
  ]);
  assert.deepEqual(errorsOf(withSpec({ model: { source: "/m", volume: { hostPath: { path: "/m" } } } })), [
    "spec.model.volume.hostPath: unknown field (known: persistentVolumeClaim, configMap, subPath)",
    exactlyOne,
  ]);
  for (const subPath of ["/abs", "..", "a/../b", "a/.."]) {
    assert.deepEqual(errorsOf(withSpec({ model: { source: "/m", volume: { configMap: { name: "m" }, subPath } } })), [
      "spec.model.volume.subPath: subPath is a directory inside the volume: a relative path without .. segments",
    ]);
  }
  const notClean = "spec.model.source: with volume, source is where the operator mounts it: an absolute path without a trailing slash, // or . and .. segments";
  for (const source of ["models/m", "/models/m/", "/models//m", "/models/./m", "/models/../m", "/"]) {
    assert.deepEqual(errorsOf(withSpec({ model: { source, volume: pvc } })), [notClean], source);
  }
  const reserved =
    "spec.model.source: with volume, source may not be, lie inside or contain the operator's own mount paths (/etc/steppo/job, /tmp, /var/lib/steppo, /etc/steppo/nats)";
  for (const source of ["/tmp", "/tmp/model", "/var/lib/steppo/models", "/etc/steppo", "/etc"]) {
    assert.deepEqual(errorsOf(withSpec({ model: { source, volume: pvc } })), [reserved], source);
  }
  // Without a volume the templates mount the directory, wherever they like: source is not checked so.
  parseJob(withSpec({ model: { source: "/tmp/model/" } }), "job.yaml");
});

test("model.volume: neither pod template may declare its volume name, nor a mount using it or at or inside source", () => {
  const model = { source: "/models/m", volume: { persistentVolumeClaim: { claimName: "models" } } };
  const template = (spec: Record<string, unknown>) => ({ template: { spec } });
  const volumeName = "the volume name model is the operator's when spec.model.volume is set (it mounts the model under it)";
  const mount =
    "with spec.model.volume set, the operator mounts volume model at spec.model.source: a template mount may neither use that volume nor be at or inside that path";
  assert.deepEqual(errorsOf(withSpec({ model, learner: template({ volumes: [{ name: "model", emptyDir: {} }] }) })), [
    `spec.learner.template.spec.volumes: ${volumeName}`,
  ]);
  assert.deepEqual(
    errorsOf(
      withSpec({
        model,
        rollout: template({
          volumes: [
            { name: "cache", emptyDir: {} },
            { name: "model", emptyDir: {} },
          ],
        }),
      }),
    ),
    [`spec.rollout.template.spec.volumes: ${volumeName}`],
  );
  for (const m of [
    { name: "models", mountPath: "/models/m" },
    { name: "models", mountPath: "/models/m/" },
    { name: "models", mountPath: "/models/m/adapters" },
    { name: "model", mountPath: "/elsewhere" },
  ]) {
    assert.deepEqual(
      errorsOf(withSpec({ model, rollout: template({ volumeMounts: [m] }) })),
      [`spec.rollout.template.spec.volumeMounts: ${mount}`],
      m.mountPath,
    );
    assert.deepEqual(
      errorsOf(withSpec({ model, learner: template({ volumeMounts: [m] }) })),
      [`spec.learner.template.spec.volumeMounts: ${mount}`],
      m.mountPath,
    );
  }
  // A mount above the model's directory or beside it is the template's own business.
  const beside = template({
    volumes: [{ name: "models", emptyDir: {} }],
    volumeMounts: [
      { name: "models", mountPath: "/models" },
      { name: "models", mountPath: "/models/mm" },
    ],
  });
  parseJob(withSpec({ model, learner: beside, rollout: beside }), "job.yaml");
  // Without spec.model.volume the templates mount the model themselves, under any name.
  const own = template({ volumes: [{ name: "model", emptyDir: {} }], volumeMounts: [{ name: "model", mountPath: "/models/m", readOnly: true }] });
  parseJob(withSpec({ model: { source: "/models/m" }, learner: own, rollout: own }), "job.yaml");
});

test("the context must have room left after maxStepTokens", () => {
  const errs = errorsOf(withSpec({ model: { contextLength: 32 }, environment: { maxStepTokens: 30 } }));
  assert.deepEqual(errs, [
    "spec.environment.maxStepTokens: model.contextLength must exceed environment.maxStepTokens by at least 8 tokens (room for the context)",
  ]);
  parseJob(withSpec({ model: { contextLength: 32 }, environment: { maxStepTokens: 24 } }), "job.yaml");
  assert.equal(errorsOf(withSpec({ environment: { maxStepTokens: 125 } })).length, 1, "tiny's contextLength is 128");
});

test("results.ttlSeconds: a week by default, 0 keeps forever, bounded by ten years, an integer", () => {
  assert.equal(parseJob(minimal, "job.yaml").spec.results.ttlSeconds, DEFAULT_RESULTS_TTL_SECONDS);
  assert.equal(DEFAULT_RESULTS_TTL_SECONDS, 7 * 24 * 3600);
  assert.equal(parseJob(withSpec({ results: { ttlSeconds: 0 } }), "job.yaml").spec.results.ttlSeconds, 0);
  assert.equal(parseJob(withSpec({ results: { ttlSeconds: MAX_RESULTS_TTL_SECONDS } }), "job.yaml").spec.results.ttlSeconds, MAX_RESULTS_TTL_SECONDS);
  assert.deepEqual(errorsOf(withSpec({ results: { ttlSeconds: -1 } })), ["spec.results.ttlSeconds: must be >= 0, got -1"]);
  assert.deepEqual(errorsOf(withSpec({ results: { ttlSeconds: MAX_RESULTS_TTL_SECONDS + 1 } })), [
    `spec.results.ttlSeconds: must be <= ${MAX_RESULTS_TTL_SECONDS}, got ${MAX_RESULTS_TTL_SECONDS + 1}`,
  ]);
  assert.equal(errorsOf(withSpec({ results: { ttlSeconds: 1.5 } })).length, 1);
  // The store's max_age is in nanoseconds: the largest TTL stays an exact integer there.
  assert.equal(BigInt(MAX_RESULTS_TTL_SECONDS * 1e9), BigInt(MAX_RESULTS_TTL_SECONDS) * 1_000_000_000n);
  // The CRD states the same bounds.
  const ttl = (jobSchema.openapi.properties?.spec as OpenApiSchema).properties?.results?.properties?.ttlSeconds;
  assert.deepEqual([ttl?.minimum, ttl?.maximum, ttl?.default], [0, MAX_RESULTS_TTL_SECONDS, DEFAULT_RESULTS_TTL_SECONDS]);
});
