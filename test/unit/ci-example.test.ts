// examples/ci/train.yaml cannot run here (no cluster, no GitHub), so what it relies on is checked against the
// code it relies on: the files it names, the labels it selects pods by, the condition it waits for, the
// claim and directory the learner writes its summary to, and the files the learner writes there.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join, posix } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import yaml from "js-yaml";
import { loadJobFile } from "../../crds/job-spec.ts";
import { CHART_CRD_PATH } from "../../crds/generate.ts";
import { CONDITION_TYPES } from "../../crds/steppojob-status.ts";
import { DATA_DIR, desiredLearnerPod, type JobObject } from "../../operator/desired.ts";
import { LABEL_JOB, LABEL_ROLE, pvcName } from "../../crds/names.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const WORKFLOW = join(REPO, "examples", "ci", "train.yaml");

interface Workflow {
  on: { workflow_dispatch: { inputs: Record<string, { default: string }> } };
  env: Record<string, string>;
  jobs: { train: { steps: { name?: string; uses?: string; run?: string }[] } };
}

function workflow(): { wf: Workflow; scripts: string } {
  const wf = yaml.load(readFileSync(WORKFLOW, "utf8")) as Workflow;
  const scripts = wf.jobs.train.steps.map((s) => s.run ?? "").join("\n");
  return { wf, scripts };
}

test("train.yaml: its default job file is a valid StepPOJob, and the files it names exist", () => {
  const { wf, scripts } = workflow();
  const job = wf.on.workflow_dispatch.inputs.job.default;
  assert.equal(loadJobFile(join(REPO, job)).kind, "StepPOJob");
  assert.ok(existsSync(join(REPO, "charts", "steppo", "Chart.yaml")));
  assert.doesNotMatch(scripts, /helm dependency build/, "the chart has no dependencies");
  assert.match(scripts, /helm upgrade --install "\$RELEASE" charts\/steppo/);
  const crd = /kubectl apply --server-side --force-conflicts -f (\S+)/.exec(scripts);
  assert.equal(join(REPO, crd?.[1] ?? ""), CHART_CRD_PATH);
  assert.equal((yaml.load(readFileSync(join(REPO, "charts", "steppo", "Chart.yaml"), "utf8")) as { dependencies?: unknown }).dependencies, undefined);
  // NATS from the official chart, as its own release, unless nats_url names one; the chart gets its URL.
  assert.ok(scripts.includes("helm repo add nats https://nats-io.github.io/k8s/helm/charts/"));
  assert.match(scripts, /helm upgrade --install nats nats\/nats [\s\S]*--set config\.jetstream\.enabled=true/);
  assert.match(scripts, /--set "nats\.url=\$NATS_URL"/);
  assert.doesNotMatch(scripts, /nats\.install/);
});

test("train.yaml: waits for the job's Succeeded (and Failed) condition and reads what the learner writes where it writes it", () => {
  const { wf, scripts } = workflow();
  for (const c of ["Succeeded", "Failed"]) {
    assert.ok((CONDITION_TYPES as readonly string[]).includes(c));
    assert.ok(scripts.includes(`kubectl wait --for=condition=${c} "spj/$JOB_NAME"`), c);
  }
  // Learner pods are selected by the operator's labels.
  assert.ok(scripts.includes(`-l "${LABEL_JOB}=$JOB_NAME,${LABEL_ROLE}=learner"`));
  // The claim: <job>-checkpoints unless spec.checkpoint.existingClaim.
  assert.equal(pvcName("JOB"), "JOB-checkpoints");
  assert.ok(scripts.includes(["claim=$", "{claim:-$JOB_NAME-checkpoints}"].join("")), "the default claim name in shell");
  assert.ok(scripts.includes("jsonpath='{.spec.checkpoint.existingClaim}'"));
  // The run directory on the claim: the learner pod mounts the claim at DATA_DIR, and STEPPO_RUN_DIR is below it.
  const job = loadJobFile(join(REPO, wf.on.workflow_dispatch.inputs.job.default)) as unknown as JobObject;
  job.metadata = { ...job.metadata, namespace: "ci", uid: "u" };
  const pod = desiredLearnerPod(job, 0);
  const c = pod.spec!.containers[0];
  const mount = c.volumeMounts!.find((m) => m.name === "checkpoints");
  assert.equal(mount?.mountPath, DATA_DIR);
  const runDir = c.env!.find((e) => e.name === "STEPPO_RUN_DIR")?.value ?? "";
  const onClaim = posix.relative(DATA_DIR, runDir);
  assert.ok(!onClaim.startsWith(".."), `${runDir} is on the claim`);
  assert.ok(scripts.includes(`cat "/data/${onClaim}/$f"`), `the collect pod reads /data/${onClaim}`);
  // The files the learner writes there.
  const learner = readFileSync(join(REPO, "runtime", "run-loop.ts"), "utf8");
  const files = /for f in ([\w. ]+); do/.exec(scripts)?.[1].split(" ") ?? [];
  assert.deepEqual(files, ["summary.json", "curve.csv", "curve.svg"]);
  for (const f of files) assert.ok(learner.includes(`join(opts.runDir, "${f}")`), `the learner writes ${f} to its run directory`);
  // The summary fields the step summary prints.
  const run = readFileSync(join(REPO, "learner", "run-phases.ts"), "utf8");
  for (const field of ["successRate", "test", "updates", "envSteps", "backend", "wallSeconds"]) assert.match(run, new RegExp(`^\\s+${field}\\??:`, "m"), field);
  assert.ok(wf.jobs.train.steps.some((s) => s.uses?.startsWith("actions/upload-artifact@")));
});
