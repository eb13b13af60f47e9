// Loading a StepPOJob manifest from YAML: parse, check identity, apply schema defaults and the same
// validation the API server performs, reporting every problem with its field path.
import { readFileSync, statSync } from "node:fs";
import yaml from "js-yaml";
import { API_VERSION, jobSchema, KIND, type StepPOJob } from "./steppojob.ts";
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

/** A job file is a few kilobytes; anything near this is a mistake or an attack, refused before parsing. */
export const MAX_JOB_FILE_BYTES = 1024 * 1024;
/**
 * Values (scalars, sequences, mappings) the parsed document may hold, counting each alias use as a copy
 * of what it names: aliases make a short file expand exponentially ("billion laughs"), and everything
 * downstream (validation, JSON for `steppo validate`, the ConfigMap) walks the expanded tree.
 */
export const MAX_JOB_NODES = 100_000;
/** Nesting depth of the parsed document (the schema itself is 5 levels deep). */
export const MAX_JOB_DEPTH = 64;

/** Reads, bounds and parses a job file; every failure is an Error whose message names the file. */
export function loadJobFile(path: string): StepPOJob {
  return parseJob(parseJobYaml(readJobText(path), path), path);
}

function readJobText(path: string): string {
  let size: number;
  try {
    const st = statSync(path);
    if (st.isDirectory()) throw new Error("is a directory, not a job file");
    if (!st.isFile()) throw new Error("is not a regular file");
    size = st.size;
  } catch (err) {
    throw new Error(`cannot read job file ${path}: ${(err as Error).message}`);
  }
  if (size > MAX_JOB_FILE_BYTES) throw new Error(`${path}: job file of ${size} bytes exceeds the limit of ${MAX_JOB_FILE_BYTES} bytes`);
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`cannot read job file ${path}: ${(err as Error).message}`);
  }
}

/** YAML text to a value, refusing several documents and documents that expand beyond the bounds above. */
export function parseJobYaml(text: string, source: string): unknown {
  if (Buffer.byteLength(text, "utf8") > MAX_JOB_FILE_BYTES) throw new Error(`${source}: job text exceeds the limit of ${MAX_JOB_FILE_BYTES} bytes`);
  let docs: unknown[];
  try {
    docs = yaml.loadAll(text);
  } catch (err) {
    throw new Error(`${source}: not valid YAML: ${(err as Error).message}`);
  }
  if (docs.length > 1) throw new Error(`${source}: holds ${docs.length} YAML documents; a job file holds exactly one StepPOJob`);
  const doc = docs[0] ?? null;
  checkSize(doc, source);
  return doc;
}

/** Walks the value as if aliases were expanded, stopping as soon as a bound is passed (so it is fast). */
function checkSize(doc: unknown, source: string): void {
  let nodes = 0;
  const visit = (v: unknown, depth: number): void => {
    if (++nodes > MAX_JOB_NODES)
      throw new Error(`${source}: the document expands to more than ${MAX_JOB_NODES} values (YAML aliases are counted once per use)`);
    if (depth > MAX_JOB_DEPTH) throw new Error(`${source}: the document nests deeper than ${MAX_JOB_DEPTH} levels`);
    if (Array.isArray(v)) for (const item of v) visit(item, depth + 1);
    else if (v !== null && typeof v === "object") for (const item of Object.values(v)) visit(item, depth + 1);
  };
  visit(doc, 0);
}
