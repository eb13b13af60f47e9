// `spec.environment.config` for the http environment: where the server is, how long to wait for it, how
// much of a reply to accept and which headers to send. Errors name the field, as for every environment.
//
// Header values that are credentials never appear in the config: `headers` refuses credential-like names,
// and `headersFrom` names where each value is read from when the environment opens (an env var the
// operator fills from a Secret, or one the user sets for `steppo run`). See crds/secrets.ts.
import { type HeaderFrom, headerEnvVar, headerSourceVar } from "../../crds/secrets.ts";
import { CONFIG_FIELD, type ConfigRules, parseEnvConfig } from "../config-rules.ts";

export interface HttpEnvConfig {
  /** Base URL of the environment server; /info, /reset, /step and /demonstrate are appended. */
  url?: string;
  /** Deadline of one request, body included. */
  timeoutMs: number;
  /** Further attempts of /info, /reset and /demonstrate after a failure (never of /step). */
  retries: number;
  /** Largest reply body read; a bigger one is an environment fault (the worker's memory is not the server's to fill). */
  maxReplyBytes: number;
  /** Sent with every request; not for credentials (see headersFrom). */
  headers: Record<string, string>;
  /** Headers sent with every request whose values are read from the process environment at start. */
  headersFrom: HeaderFrom[];
  /** Hard bound on context words: the prompt, then the newest observations that fit. */
  maxContextWords: number;
}

export type ResolvedHttpEnvConfig = HttpEnvConfig & { url: string };

export const DEFAULT_MAX_REPLY_BYTES = 4 * 1024 * 1024;

export const HTTP_DEFAULTS: Readonly<HttpEnvConfig> = {
  timeoutMs: 10_000,
  retries: 2,
  maxReplyBytes: DEFAULT_MAX_REPLY_BYTES,
  headers: {},
  headersFrom: [],
  maxContextWords: 96,
};

const RULES: ConfigRules<HttpEnvConfig> = {
  url: { kind: "url", protocols: ["http:", "https:"] },
  timeoutMs: { kind: "int", min: 1, max: 600_000 },
  retries: { kind: "int", min: 0, max: 10 },
  maxReplyBytes: { kind: "int", min: 1024, max: 256 * 1024 * 1024 },
  headers: { kind: "headers" },
  headersFrom: { kind: "headersFrom" },
  maxContextWords: { kind: "int", min: 8, max: 100_000 },
};

export function parseHttpEnvConfig(raw: Record<string, unknown> | undefined): ResolvedHttpEnvConfig {
  const out = parseEnvConfig<HttpEnvConfig>(raw, HTTP_DEFAULTS, RULES);
  if (out.url === undefined) throw new Error(`${CONFIG_FIELD}.url: required: the base URL of the environment server, e.g. http://127.0.0.1:8765`);
  const plain = new Set(Object.keys(out.headers).map((h) => h.toLowerCase()));
  out.headersFrom.forEach((h, i) => {
    if (plain.has(h.name.toLowerCase()))
      throw new Error(`${CONFIG_FIELD}.headersFrom[${i}].name: header ${JSON.stringify(h.name)} is also in headers: set it in one place`);
  });
  return { ...out, url: out.url };
}

/**
 * The headers to send: the plain ones and every headersFrom value, read from `env` now. A missing
 * variable stops the start with what to set; the message names the variable, never a value.
 */
export function resolveHeaders(config: HttpEnvConfig, env: Record<string, string | undefined> = process.env): Record<string, string> {
  const headers = { ...config.headers };
  config.headersFrom.forEach((h, i) => {
    const variable = headerSourceVar(h);
    const value = env[variable];
    if (value === undefined || value === "") throw new Error(`${CONFIG_FIELD}.headersFrom[${i}] (${h.name}): ${missingHeaderHint(h, variable)}`);
    if (/[\r\n]/.test(value)) throw new Error(`${CONFIG_FIELD}.headersFrom[${i}] (${h.name}): the value of ${variable} must be a single line`);
    headers[h.name] = value;
  });
  return headers;
}

function missingHeaderHint(h: HeaderFrom, variable: string): string {
  if (h.env !== undefined) return `the environment variable ${variable} is not set (set it before steppo run; on a cluster use secretKeyRef instead)`;
  return (
    `the environment variable ${variable} is not set: on a cluster the operator fills it from Secret ${h.secretKeyRef.name} key ${h.secretKeyRef.key} ` +
    `(does the Secret exist in the job's namespace?); with steppo run, set ${headerEnvVar(h.name)} or use {name: ${h.name}, env: <VAR>}`
  );
}
