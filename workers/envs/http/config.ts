// `spec.environment.config` for the http environment: where the server is and how long to wait for it.
// Errors name the field, as for every environment.
import { CONFIG_FIELD, type ConfigRules, parseEnvConfig } from "../config-rules.ts";

export interface HttpEnvConfig {
  /** Base URL of the environment server; /info, /reset, /step and /demonstrate are appended. */
  url?: string;
  /** Deadline of one request, body included. */
  timeoutMs: number;
  /** Further attempts of /info, /reset and /demonstrate after a failure (never of /step). */
  retries: number;
  /** Sent with every request (e.g. Authorization). */
  headers: Record<string, string>;
  /** Hard bound on context words: the prompt, then the newest observations that fit. */
  maxContextWords: number;
}

export type ResolvedHttpEnvConfig = HttpEnvConfig & { url: string };

export const HTTP_DEFAULTS: Readonly<HttpEnvConfig> = {
  timeoutMs: 10_000,
  retries: 2,
  headers: {},
  maxContextWords: 96,
};

const RULES: ConfigRules<HttpEnvConfig> = {
  url: { kind: "url", protocols: ["http:", "https:"] },
  timeoutMs: { kind: "int", min: 1, max: 600_000 },
  retries: { kind: "int", min: 0, max: 10 },
  headers: { kind: "headers" },
  maxContextWords: { kind: "int", min: 8, max: 100_000 },
};

export function parseHttpEnvConfig(raw: Record<string, unknown> | undefined): ResolvedHttpEnvConfig {
  const out = parseEnvConfig<HttpEnvConfig>(raw, HTTP_DEFAULTS, RULES);
  if (out.url === undefined) throw new Error(`${CONFIG_FIELD}.url: required: the base URL of the environment server, e.g. http://127.0.0.1:8765`);
  return { ...out, url: out.url };
}
