import assert from "node:assert/strict";
import { test } from "node:test";
import { parseJob } from "../../crds/job-spec.ts";
import { ValidationError } from "../../crds/schema.ts";
import { MAX_REPLICAS } from "../../crds/steppojob.ts";
import {
  configMapName,
  JOB_NAME_MESSAGE,
  LONGEST_NAME_SUFFIX,
  learnerPodName,
  MAX_JOB_NAME_LENGTH,
  pvcName,
  rolloutPodName,
  serviceName,
} from "../../crds/names.ts";

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

test("a minimal manifest gets every default, nested objects included", () => {
  const job = parseJob(minimal, "job.yaml");
  assert.equal(job.spec.algorithm.estimator, "step-gae");
  assert.equal(job.spec.algorithm.ratio, "step");
  assert.equal(job.spec.algorithm.shuffle.enabled, true);
  assert.equal(job.spec.algorithm.gamma, undefined, "γ is resolved per estimator by the learner");
  assert.equal(job.spec.rollout.episodesPerUpdate, 32);
  assert.equal(job.spec.environment.name, "multihop-qa");
  assert.equal(job.spec.training.maxPolicyLag, 0);
  assert.equal(job.spec.runPolicy.cleanPodPolicy, "Running");
  assert.equal(job.spec.checkpoint.keep, 3);
});

test("given values win over defaults", () => {
  const job = parseJob({ ...minimal, spec: { algorithm: { estimator: "token-gae", gamma: 1 }, rollout: { replicas: 3 } } }, "job.yaml");
  assert.equal(job.spec.algorithm.estimator, "token-gae");
  assert.equal(job.spec.algorithm.gamma, 1);
  assert.equal(job.spec.rollout.replicas, 3);
  assert.equal(job.spec.rollout.temperature, 1);
});

test("errors name the field: unknown estimator, wrong type, out of range, unknown field", () => {
  const errs = errorsOf({ ...minimal, spec: { algorithm: { estimator: "ppo2", gamma: 1.5, epochs: "two" }, training: { updates: -1 }, bogus: 1 } });
  assert.ok(
    errs.some((e) => e.startsWith("spec.algorithm.estimator: must be one of step-gae")),
    errs.join("\n"),
  );
  assert.ok(
    errs.some((e) => e.startsWith("spec.algorithm.gamma: must be <= 1")),
    errs.join("\n"),
  );
  assert.ok(
    errs.some((e) => e.startsWith("spec.algorithm.epochs: must be a integer") || e.startsWith("spec.algorithm.epochs: must be an integer")),
    errs.join("\n"),
  );
  assert.ok(
    errs.some((e) => e.startsWith("spec.training.updates: must be >= 1")),
    errs.join("\n"),
  );
  assert.ok(
    errs.some((e) => e.startsWith("spec.bogus: unknown field")),
    errs.join("\n"),
  );
});

test("cross-field rules (the CRD's CEL rules) are enforced locally too", () => {
  const errs = errorsOf({ ...minimal, spec: { rollout: { replicas: 5, maxReplicas: 4, minReplicas: 6, episodesPerUpdate: 10, groupSize: 4 } } });
  assert.ok(errs.includes("spec.rollout.replicas: replicas must be <= maxReplicas"), errs.join("\n"));
  assert.ok(errs.includes("spec.rollout.minReplicas: minReplicas must be <= replicas"), errs.join("\n"));
  assert.ok(errs.includes("spec.rollout.episodesPerUpdate: episodesPerUpdate must be a multiple of groupSize"), errs.join("\n"));
});

test("identity and metadata are checked", () => {
  const errs = errorsOf({ apiVersion: "v1", kind: "Pod", metadata: { name: "Bad_Name" } });
  assert.ok(
    errs.some((e) => e.startsWith("apiVersion: must be")),
    errs.join("\n"),
  );
  assert.ok(
    errs.some((e) => e.startsWith("kind: must be")),
    errs.join("\n"),
  );
  assert.ok(errs.includes(`metadata.name: ${JOB_NAME_MESSAGE}`), errs.join("\n"));
  assert.deepEqual(errorsOf("just a string"), ["(document): must be a YAML mapping with apiVersion, kind, metadata and spec"]);
  assert.ok(errorsOf({ apiVersion: "steppo.dev/v1alpha1", kind: "StepPOJob" }).includes("metadata: is required"));
});

test("job names: one rule (a DNS-1035 label leaving room for the operator's suffixes), one message", () => {
  const named = (name: string) => {
    const doc = { ...minimal, metadata: { name } };
    try {
      parseJob(doc, "job.yaml");
      return [];
    } catch {
      return errorsOf(doc);
    }
  };
  const refusal = `metadata.name: ${JOB_NAME_MESSAGE}`;
  assert.equal(MAX_JOB_NAME_LENGTH + LONGEST_NAME_SUFFIX, 63, "the longest child name is still a DNS label");
  for (const bad of ["exp.v2", "a".repeat(254), "a".repeat(300), "a".repeat(MAX_JOB_NAME_LENGTH + 1), "Exp", "1job", "job-", ""]) {
    assert.deepEqual(named(bad), [refusal], `name ${JSON.stringify(bad)}`);
  }
  const longest = `j${"0".repeat(MAX_JOB_NAME_LENGTH - 1)}`;
  assert.deepEqual(named(longest), []);
  assert.deepEqual(named("exp-v2"), []);
  // Every child of the longest job name keeps the whole name and fits in a DNS label.
  for (const child of [
    learnerPodName(longest, 999),
    rolloutPodName(longest, MAX_REPLICAS - 1),
    pvcName(longest),
    configMapName(longest),
    serviceName(longest),
  ]) {
    assert.ok(child.startsWith(longest) && child.length <= 63, child);
  }
});
