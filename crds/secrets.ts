// Keeping credentials out of places that are not secret. A StepPOJob is readable by the aggregated `view`
// role, the operator copies it into a ConfigMap (the pods' job file) and URLs end up in env var values and
// logs, so none of these may hold a password or a token. Credentials live in Kubernetes Secrets instead:
// NATS credentials in spec.nats.credentialsSecret (a mounted creds file), an environment server's in
// spec.environment.config.headersFrom (env vars filled from Secrets by the kubelet).
//
// This module holds the rules every entry point applies (job validation, the operator's planner, the
// process flags, the http environment client) and the one helper that makes a URL safe to print.
import type { FieldError } from "./schema.ts";

/**
 * A URL (or a comma-separated list of them, as NATS accepts) with `user@` or `user:password@` before the
 * host. Written once for both the CRD's CEL rule (RE2) and local checks, so it avoids backslashes and
 * lookarounds: an optional scheme, then an authority with no `/?#,` and no space, then `@`.
 */
export const CREDENTIALED_URL_PATTERN = "(^|,)[ ]*([a-zA-Z][a-zA-Z0-9+.-]*://)?[^/?#@, ]*@";
const CREDENTIALED_URL = new RegExp(CREDENTIALED_URL_PATTERN);

export function hasUrlCredentials(url: string): boolean {
  return CREDENTIALED_URL.test(url);
}

/** Why a credentialed URL is refused, with what to do instead (callers prefix the field or flag). */
export function credentialedUrlMessage(instead: string): string {
  return `the URL must not contain credentials (user:password@ or token@): they would be readable in the job, its ConfigMap, env vars and logs; ${instead}`;
}

export const NATS_CREDENTIALS_HINT = "put NATS credentials in a Secret and name it in spec.nats.credentialsSecret (key nats.creds)";
export const HEADERS_FROM_HINT = "pass credentials with spec.environment.config.headersFrom (a Secret key, or an env var for steppo run)";

/** Scheme (kept) and userinfo up to the last `@` of the authority (replaced): `@` may occur unescaped in a password. */
const USERINFO = /^([ ]*(?:[a-zA-Z][a-zA-Z0-9+.-]*:\/\/)?)[^/?#, ]*@/;

/**
 * `url` with any user or password replaced by `***`, for messages and logs: the one way a URL is printed.
 * Works on comma-separated lists (as NATS takes) and leaves anything without credentials unchanged.
 */
export function redactUrl(url: string): string {
  return url
    .split(",")
    .map((part) => (hasUrlCredentials(part) ? part.replace(USERINFO, "$1***@") : part))
    .join(",");
}

// ---- header names --------------------------------------------------------------------------------

const CREDENTIAL_HEADERS = new Set(["authorization", "proxy-authorization", "cookie", "x-api-key"]);
const CREDENTIAL_WORDS = /token|secret|key|auth|password|cookie|session/i;

/** A header whose value is likely a credential: it may only come from headersFrom, never from plain `headers`. */
export function isCredentialHeader(name: string): boolean {
  return CREDENTIAL_HEADERS.has(name.toLowerCase()) || CREDENTIAL_WORDS.test(name);
}

/** An HTTP header name (RFC 9110 token). */
export const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

// ---- headersFrom -----------------------------------------------------------------------------------

/**
 * One header whose value is read from the process environment when the environment opens. On a cluster
 * `secretKeyRef` makes the operator add the env var `headerEnvVar(name)` filled from that Secret key;
 * with `steppo run` on one machine, `env` names the variable to read instead.
 */
export type HeaderFrom =
  | { name: string; secretKeyRef: { name: string; key: string }; env?: undefined }
  | { name: string; env: string; secretKeyRef?: undefined };

/** The env var the operator fills for a secretKeyRef header, e.g. X-Api-Key → STEPPO_HEADER_X_API_KEY. */
export function headerEnvVar(header: string): string {
  return `STEPPO_HEADER_${header.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`;
}

/** The env var a process reads a headersFrom entry's value from. */
export function headerSourceVar(h: HeaderFrom): string {
  return h.env ?? headerEnvVar(h.name);
}

const ENV_VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** A Secret's name (DNS subdomain) and a key in its data. */
const SECRET_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function show(v: unknown): string {
  return v === undefined ? "nothing" : JSON.stringify(v);
}

/** Checks one headersFrom entry; returns the problems (empty when it is well-formed). */
function headerFromProblems(entry: unknown, field: string): FieldError[] {
  if (!isPlainObject(entry)) return [{ path: field, message: `expected {name, secretKeyRef: {name, key}} or {name, env}, got ${show(entry)}` }];
  const out: FieldError[] = [];
  const { name, secretKeyRef, env, ...rest } = entry;
  for (const k of Object.keys(rest)) out.push({ path: `${field}.${k}`, message: "unknown key (expected name, secretKeyRef or env)" });
  if (typeof name !== "string" || !HEADER_NAME.test(name)) out.push({ path: `${field}.name`, message: `expected an HTTP header name, got ${show(name)}` });
  if ((secretKeyRef === undefined) === (env === undefined)) {
    out.push({ path: field, message: "give exactly one of secretKeyRef (a Kubernetes Secret key, on a cluster) or env (an env var, for steppo run)" });
  }
  if (env !== undefined && (typeof env !== "string" || !ENV_VAR_NAME.test(env))) {
    out.push({ path: `${field}.env`, message: `expected an environment variable name, got ${show(env)}` });
  }
  if (secretKeyRef !== undefined) {
    if (!isPlainObject(secretKeyRef)) out.push({ path: `${field}.secretKeyRef`, message: `expected {name, key}, got ${show(secretKeyRef)}` });
    else {
      const { name: secret, key, ...extra } = secretKeyRef;
      for (const k of Object.keys(extra)) out.push({ path: `${field}.secretKeyRef.${k}`, message: "unknown key (expected name and key)" });
      if (typeof secret !== "string" || !SECRET_NAME.test(secret))
        out.push({ path: `${field}.secretKeyRef.name`, message: `expected a Secret name, got ${show(secret)}` });
      if (typeof key !== "string" || !SECRET_KEY.test(key))
        out.push({ path: `${field}.secretKeyRef.key`, message: `expected a key of the Secret, got ${show(key)}` });
    }
  }
  return out;
}

/** Checks a headersFrom list; two entries may not name the same header (or the same operator env var). */
export function headersFromProblems(value: unknown, field: string): FieldError[] {
  if (!Array.isArray(value)) return [{ path: field, message: `expected a list of {name, secretKeyRef: {name, key}} or {name, env}, got ${show(value)}` }];
  const out = value.flatMap((entry, i) => headerFromProblems(entry, `${field}[${i}]`));
  if (out.length > 0) return out;
  const seen = new Map<string, number>();
  (value as HeaderFrom[]).forEach((h, i) => {
    const v = headerEnvVar(h.name);
    const first = seen.get(v);
    if (first !== undefined) out.push({ path: `${field}[${i}].name`, message: `header ${JSON.stringify(h.name)} is already set by ${field}[${first}]` });
    else seen.set(v, i);
  });
  return out;
}

// ---- a whole job spec ------------------------------------------------------------------------------

interface SpecWithSecrets {
  nats?: { url?: string };
  environment?: { config?: Record<string, unknown> };
}

/**
 * Every place in a job spec where a credential would be stored in the clear: a credentialed NATS or
 * environment URL, a credential-like plain header, a malformed headersFrom. Applied by `parseJob`
 * (steppo run / validate / learner / worker) and by the operator before it writes anything.
 */
export function specSecretProblems(spec: SpecWithSecrets): FieldError[] {
  const out: FieldError[] = [];
  const natsUrl = spec.nats?.url;
  if (typeof natsUrl === "string" && hasUrlCredentials(natsUrl)) {
    out.push({ path: "spec.nats.url", message: credentialedUrlMessage(NATS_CREDENTIALS_HINT) });
  }
  const config = spec.environment?.config;
  if (!isPlainObject(config)) return out;
  const field = "spec.environment.config";
  if (typeof config.url === "string" && hasUrlCredentials(config.url)) {
    out.push({ path: `${field}.url`, message: credentialedUrlMessage(HEADERS_FROM_HINT) });
  }
  if (isPlainObject(config.headers)) {
    for (const name of Object.keys(config.headers)) {
      if (isCredentialHeader(name)) out.push({ path: `${field}.headers.${name}`, message: credentialHeaderMessage(name) });
    }
  }
  if (config.headersFrom !== undefined) out.push(...headersFromProblems(config.headersFrom, `${field}.headersFrom`));
  return out;
}

export function credentialHeaderMessage(name: string): string {
  return (
    `${JSON.stringify(name)} looks like a credential and plain headers are stored in the clear (the job, its ConfigMap); ` +
    `move it to headersFrom: [{name: ${name}, secretKeyRef: {name: <secret>, key: <key>}}] (or {name: ${name}, env: <VAR>} for steppo run)`
  );
}
