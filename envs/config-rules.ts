// Validation of `spec.environment.config` shared by every environment: defaults merged with the
// given values, unknown keys, out-of-range numbers and malformed strings refused with the field
// named. Cross-field checks (and required keys) stay with each environment.
import {
  HEADERS_FROM_HINT,
  credentialedUrlMessage,
  credentialHeaderMessage,
  HEADER_NAME,
  type HeaderFrom,
  hasUrlCredentials,
  headersFromProblems,
  isCredentialHeader,
} from "../crds/secrets.ts";

export type ConfigRule =
  | { kind: "int"; min: number; max: number }
  | { kind: "number"; min: number; max: number }
  /** A number strictly between 0 and 1. */
  | { kind: "fraction" }
  /** An absolute URL whose scheme is one of `protocols` (e.g. "http:"), without query or fragment. */
  | { kind: "url"; protocols: readonly string[] }
  /** HTTP header names mapped to string values; credential-like names are refused (see headersFrom). */
  | { kind: "headers" }
  /** Headers whose values come from Secrets or env vars, never from the job itself (crds/secrets.ts). */
  | { kind: "headersFrom" };

type NumberRule = Extract<ConfigRule, { kind: "int" | "number" | "fraction" }>;
type StringRule = Extract<ConfigRule, { kind: "url" }>;
type MapRule = Extract<ConfigRule, { kind: "headers" }>;
type HeadersFromRule = Extract<ConfigRule, { kind: "headersFrom" }>;

/** The rules that can produce a value of type V. */
type RuleFor<V> = V extends number
  ? NumberRule
  : V extends string
    ? StringRule
    : V extends readonly HeaderFrom[]
      ? HeadersFromRule
      : V extends Record<string, string>
        ? MapRule
        : never;

/** One rule per config key, of a kind that yields that key's type. */
export type ConfigRules<T> = { [K in keyof T]-?: RuleFor<NonNullable<T[K]>> };

export const CONFIG_FIELD = "spec.environment.config";

export function describeValue(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : Array.isArray(v) ? "an array" : v === null ? "null" : String(v);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Checks `value` against `rule`; returns the value to keep, or throws naming `field`. */
function checkValue(field: string, rule: ConfigRule, value: unknown): unknown {
  switch (rule.kind) {
    case "fraction":
      if (typeof value !== "number" || !(value > 0 && value < 1)) {
        throw new Error(`${field}: expected a number strictly between 0 and 1, got ${describeValue(value)}`);
      }
      return value;
    case "int":
    case "number": {
      const integer = rule.kind === "int";
      if (typeof value !== "number" || !Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < rule.min || value > rule.max) {
        throw new Error(`${field}: expected ${integer ? "an integer" : "a number"} between ${rule.min} and ${rule.max}, got ${describeValue(value)}`);
      }
      return value;
    }
    case "url": {
      const expected = `expected an absolute ${rule.protocols.map((p) => `${p}//`).join(" or ")} URL`;
      if (typeof value !== "string") throw new Error(`${field}: ${expected}, got ${describeValue(value)}`);
      // Checked first, before any message quotes the URL, so that a password is never echoed in an error.
      if (hasUrlCredentials(value)) throw new Error(`${field}: ${credentialedUrlMessage(HEADERS_FROM_HINT)}`);
      let url: URL;
      try {
        url = new URL(value);
      } catch {
        throw new Error(`${field}: ${expected}, got ${describeValue(value)}`);
      }
      if (url.username || url.password) throw new Error(`${field}: ${credentialedUrlMessage(HEADERS_FROM_HINT)}`);
      if (!rule.protocols.includes(url.protocol)) throw new Error(`${field}: ${expected}, got ${describeValue(value)}`);
      if (url.search || url.hash) throw new Error(`${field}: the URL must have no query or fragment (paths are appended to it), got ${describeValue(value)}`);
      return value;
    }
    case "headers": {
      if (!isPlainObject(value)) throw new Error(`${field}: expected a map of header names to strings, got ${describeValue(value)}`);
      for (const [name, v] of Object.entries(value)) {
        if (!HEADER_NAME.test(name)) throw new Error(`${field}: ${JSON.stringify(name)} is not a valid HTTP header name`);
        if (isCredentialHeader(name)) throw new Error(`${field}.${name}: ${credentialHeaderMessage(name)}`);
        if (typeof v !== "string" || /[\r\n]/.test(v)) throw new Error(`${field}.${name}: expected a single-line string, got ${describeValue(v)}`);
      }
      return { ...value };
    }
    case "headersFrom": {
      const problems = headersFromProblems(value, field);
      if (problems.length > 0) throw new Error(problems.map((p) => `${p.path}: ${p.message}`).join("; "));
      return (value as HeaderFrom[]).map((h) => ({ ...h }));
    }
  }
}

export function parseEnvConfig<T extends object>(raw: Record<string, unknown> | undefined, defaults: T, rules: ConfigRules<T>): T {
  if (raw !== undefined && !isPlainObject(raw)) throw new Error(`${CONFIG_FIELD}: expected an object, got ${describeValue(raw)}`);
  const out: T = { ...defaults };
  for (const [key, value] of Object.entries(raw ?? {})) {
    // Own keys only: `"constructor" in rules` (and `__proto__`) is true for every object.
    if (!Object.hasOwn(rules, key)) throw new Error(`${CONFIG_FIELD}.${key}: unknown key (expected one of ${Object.keys(rules).join(", ")})`);
    const rule = (rules as Record<string, ConfigRule>)[key];
    (out as Record<string, unknown>)[key] = checkValue(`${CONFIG_FIELD}.${key}`, rule, value);
  }
  return out;
}
