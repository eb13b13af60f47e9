// Loading a StepPOJob manifest from YAML: parse, check identity, apply schema defaults and the same
// validation the API server performs, reporting every problem with its field path.
import { readFileSync } from "node:fs";
import yaml from "js-yaml";
import { API_VERSION, jobSchema, KIND, type StepPOJob } from "../crds/steppojob.ts";
import { type FieldError, ValidationError, validateAndDefault } from "./schema.ts";
import { specSecretProblems } from "./secrets.ts";

export function parseJob(doc: unknown, source: string): StepPOJob {
  const errors: FieldError[] = [];
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    throw new ValidationError(source, [{ path: "(document)", message: "must be a YAML mapping with apiVersion, kind, metadata and spec" }]);
  }
  const raw = doc as Record<string, unknown>;
  if (raw.apiVersion !== undefined && raw.apiVersion !== API_VERSION)
    errors.push({ path: "apiVersion", message: `must be "${API_VERSION}", got "${String(raw.apiVersion)}"` });
  if (raw.kind !== undefined && raw.kind !== KIND) errors.push({ path: "kind", message: `must be "${KIND}", got "${String(raw.kind)}"` });
  // Server-populated metadata (uid, resourceVersion …) and status are not ours to validate.
  const { status: _status, ...rest } = raw;
  const metadata = rest.metadata as Record<string, unknown> | undefined;
  if (metadata && typeof metadata === "object") {
    const { name, namespace, labels, annotations } = metadata;
    rest.metadata = Object.fromEntries(Object.entries({ name, namespace, labels, annotations }).filter(([, v]) => v !== undefined));
  }
  const job = validateAndDefault(jobSchema.openapi, rest, "", errors) as StepPOJob;
  const cleaned = errors.map((e) => ({ ...e, path: e.path.replace(/^\./, "") }));
  // Credentials in the clear (the schema's CEL rule already reports spec.nats.url: report a field once).
  const reported = new Set(cleaned.map((e) => e.path));
  if (job.spec) cleaned.push(...specSecretProblems(job.spec).filter((e) => !reported.has(e.path)));
  if (cleaned.length > 0) throw new ValidationError(source, cleaned);
  return job;
}

export function loadJobFile(path: string): StepPOJob {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`cannot read job file ${path}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = yaml.load(text);
  } catch (err) {
    throw new Error(`${path}: not valid YAML: ${(err as Error).message}`);
  }
  return parseJob(doc, path);
}
