import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import yaml from "js-yaml";
import type { OpenApiSchema } from "../../crds/schema.ts";
import { CHART_CRD_PATH, CRD_OUTPUTS, CRD_PATH, renderCrd } from "../../crds/generate.ts";

interface CrdShape {
  metadata: { name: string };
  spec: {
    group: string;
    scope: string;
    names: { shortNames: string[] };
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      subresources: { status: object; scale: object };
      additionalPrinterColumns: { name: string; jsonPath: string }[];
      schema: { openAPIV3Schema: OpenApiSchema };
    }[];
  };
}

test("the checked-in CRD equals the generator output (run `npm run crds:generate` after a schema change)", () => {
  assert.equal(readFileSync(CRD_PATH, "utf8"), renderCrd());
});

test("the Helm chart's copy of the CRD equals the generator output too (run `npm run crds:generate`)", () => {
  assert.deepEqual(CRD_OUTPUTS, [CRD_PATH, CHART_CRD_PATH]);
  assert.match(CHART_CRD_PATH, /charts\/steppo\/crds\/steppo\.dev_steppojobs\.yaml$/);
  assert.equal(readFileSync(CHART_CRD_PATH, "utf8"), renderCrd(), `${CHART_CRD_PATH} is stale`);
});

test("the CRD has the names, subresources and columns the operator and kubectl rely on", () => {
  const crd = yaml.load(readFileSync(CRD_PATH, "utf8")) as CrdShape;
  assert.equal(crd.metadata.name, "steppojobs.steppo.dev");
  assert.equal(crd.spec.group, "steppo.dev");
  assert.equal(crd.spec.scope, "Namespaced");
  assert.deepEqual(crd.spec.names.shortNames, ["spj"]);
  const [v] = crd.spec.versions;
  assert.equal(v.name, "v1alpha1");
  assert.ok(v.served && v.storage);
  assert.deepEqual(v.subresources.status, {});
  assert.deepEqual(v.subresources.scale, {
    specReplicasPath: ".spec.rollout.replicas",
    statusReplicasPath: ".status.rollout.ready",
    labelSelectorPath: ".status.selector",
  });
  assert.deepEqual(
    v.additionalPrinterColumns.map((c) => c.name),
    ["Phase", "Update", "Success", "Lag", "Ready", "Age", "Train", "Steps/s", "Episodes/s", "Checkpoint", "Restarts", "Pods"],
  );
  const props = v.schema.openAPIV3Schema.properties ?? {};
  assert.equal(props.spec.properties?.algorithm.properties?.estimator.default, "step-gae");
  assert.equal(props.status.default, undefined, "status must not be defaulted");
  assert.ok(!readFileSync(CRD_PATH, "utf8").includes("*ref"), "no YAML aliases");
});
