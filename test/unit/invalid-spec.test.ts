// One rule everywhere: an environment config that `steppo run` refuses is refused by `steppo validate`
// and failed by the operator (InvalidSpec) before any pod starts; `--updates` obeys the schema's range.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, test } from "node:test";
import { updatesFlag } from "../../core/args.ts";
import { parseJob } from "../../crds/job-spec.ts";
import type { JobObject } from "../../operator/desired.ts";
import { plan } from "../../operator/plan.ts";
import { environmentConfigProblem } from "../../envs/config-check.ts";
import { createEnvironment } from "../../envs/registry.ts";

const NOW = new Date("2026-01-01T00:00:00Z");
const ROOT = resolve(import.meta.dirname, "../..");

function job(spec: Record<string, unknown>): JobObject {
  const j = parseJob({ apiVersion: "steppo.dev/v1alpha1", kind: "StepPOJob", metadata: { name: "j", namespace: "ns" }, spec }, "test") as JobObject;
  j.metadata.uid = "uid-1";
  return j;
}

describe("environment config checked without building the environment", () => {
  test("multihop-qa people: -3 is named, the same message the environment itself gives", () => {
    const env = { name: "multihop-qa" as const, config: { people: -3 }, maxSteps: 5, maxStepTokens: 24, bootstrapOnTruncation: false };
    assert.deepEqual(environmentConfigProblem(env), {
      path: "spec.environment.config.people",
      message: "expected an integer between 2 and 500, got -3",
    });
    assert.throws(() => createEnvironment(env, 1), /spec\.environment\.config\.people: expected an integer between 2 and 500, got -3/);
  });

  test("every environment's parser runs: unknown keys, a missing http url, and valid configs", () => {
    assert.match(environmentConfigProblem({ name: "textworld", config: { bogus: 1 } })?.path ?? "", /^spec\.environment\.config\.bogus$/);
    assert.match(environmentConfigProblem({ name: "paper-search", config: { nope: 1 } })?.message ?? "", /unknown key/);
    assert.equal(environmentConfigProblem({ name: "http", config: {} })?.path, "spec.environment.config.url");
    assert.equal(environmentConfigProblem({ name: "http", config: { url: "http://127.0.0.1:8765" } }), undefined);
    assert.equal(environmentConfigProblem({ name: "multihop-qa", config: undefined }), undefined);
  });

  test("__proto__ and constructor are unknown keys of an environment config, never merged", () => {
    assert.match(environmentConfigProblem({ name: "multihop-qa", config: { constructor: 3 } })?.message ?? "", /unknown key/);
    assert.match(environmentConfigProblem({ name: "multihop-qa", config: JSON.parse('{"__proto__": {"people": 3}}') })?.message ?? "", /unknown key/);
  });

  test("the env config parsers load no model: nothing reachable from operator/plan.ts imports tfjs", () => {
    const seen = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = readFileSync(file, "utf8");
      assert.ok(!/from "@tensorflow\//.test(text), `${file} imports tfjs`);
      for (const m of text.matchAll(/^import (?!type )[^;]*? from "(\.[^"]+)";/gms)) visit(join(dirname(file), m[1]));
    };
    visit(join(ROOT, "operator/plan.ts"));
    assert.ok(seen.has(join(ROOT, "envs/config-check.ts")));
    assert.ok(!seen.has(join(ROOT, "policy/backend.ts")));
  });
});

describe("operator: InvalidSpec", () => {
  test("a job whose environment config its pods would refuse is Failed with the message, nothing created", () => {
    const p = plan(job({ environment: { name: "multihop-qa", config: { people: -3 } } }), { pods: [] }, NOW);
    assert.deepEqual(p.create, []);
    const failed = p.status.conditions?.find((c) => c.type === "Failed");
    assert.equal(failed?.status, "True");
    assert.equal(failed?.reason, "InvalidSpec");
    assert.equal(failed?.message, "spec.environment.config.people: expected an integer between 2 and 500, got -3");
    assert.equal(p.status.phase, "Failed");
  });

  test("a valid job is not affected", () => {
    const p = plan(job({ environment: { name: "multihop-qa", config: { people: 30 } } }), { pods: [] }, NOW);
    assert.ok(p.create.length > 0);
    assert.equal(
      p.status.conditions?.find((c) => c.type === "Failed"),
      undefined,
    );
  });
});

describe("--updates", () => {
  test("obeys spec.training.updates' range: 0 is refused like updates: 0 in the file", () => {
    assert.throws(() => updatesFlag("0"), /--updates must be between 1 and 1000000 \(the range of spec\.training\.updates\), got 0/);
    assert.throws(() => updatesFlag("1e9"), /--updates/);
    assert.throws(() => updatesFlag(""), /--updates must be a non-negative integer/);
    assert.equal(updatesFlag("3"), 3);
    assert.equal(updatesFlag(undefined), undefined);
  });
});
