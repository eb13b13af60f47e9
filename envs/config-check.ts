// `spec.environment.config` checked without building the environment: what `steppo validate` and the
// operator run, so that a job `steppo run` would refuse is refused before any pod starts. Only the config
// parsers are imported (no model, no tfjs), which keeps the operator light.
import type { FieldError } from "../crds/schema.ts";
import type { EnvironmentSpec } from "../crds/steppojob.ts";
import { parseHttpEnvConfig } from "./http/config.ts";
import { parseMultihopQaConfig } from "./multihop-qa/index.ts";
import { parsePaperSearchConfig } from "./paper-search/config.ts";
import { parseTextworldConfig } from "./textworld/config.ts";

type ConfigParser = (raw: Record<string, unknown> | undefined) => unknown;

const CONFIG_PARSERS: Record<EnvironmentSpec["name"], ConfigParser> = {
  "multihop-qa": parseMultihopQaConfig,
  "paper-search": parsePaperSearchConfig,
  textworld: parseTextworldConfig,
  http: parseHttpEnvConfig,
};

/**
 * What is wrong with the config, as a field error (the parsers' messages start with the field,
 * `spec.environment.config.<key>: …`), or undefined when it is valid.
 */
export function environmentConfigProblem(env: Pick<EnvironmentSpec, "name" | "config">): FieldError | undefined {
  const parse = Object.hasOwn(CONFIG_PARSERS, env.name) ? CONFIG_PARSERS[env.name] : undefined;
  if (!parse) return { path: "spec.environment.name", message: `"${env.name}" has no config parser (have: ${Object.keys(CONFIG_PARSERS).join(", ")})` };
  try {
    parse(env.config);
    return undefined;
  } catch (err) {
    return asFieldError((err as Error).message);
  }
}

function asFieldError(message: string): FieldError {
  const m = /^(spec\.environment\.config[^\s:]*): ([\s\S]*)$/.exec(message);
  return m ? { path: m[1], message: m[2] } : { path: "spec.environment.config", message };
}
