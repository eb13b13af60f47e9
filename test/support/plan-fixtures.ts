// A parsed StepPOJob as the planner sees it (uid and generation set), for the planner's unit tests.
import { parseJob } from "../../crds/job-spec.ts";
import type { JobObject } from "../../operator/desired.ts";

export function job(spec: Record<string, unknown> = {}, status?: JobObject["status"]): JobObject {
  const j = parseJob({ apiVersion: "steppo.dev/v1alpha1", kind: "StepPOJob", metadata: { name: "j", namespace: "ns" }, spec }, "test") as JobObject;
  j.metadata.uid = "uid-1";
  j.metadata.generation = 1;
  if (status) j.status = status;
  return j;
}
