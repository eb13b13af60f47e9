// Environment factories by `spec.environment.name`. The in-process environments are built synchronously;
// a remote one (http) must first ask its server for the vocabulary, so runners open every environment
// with `openEnvironment`. `createEnvironment` remains for callers that only use in-process ones.
import type { EnvironmentSpec } from "../crds/steppojob.ts";
import type { Environment } from "./environment.ts";
import { openHttpEnvironment } from "./http/index.ts";
import { createMultihopQa } from "./multihop-qa/index.ts";
import { createPaperSearch } from "./paper-search/index.ts";
import { createTextworld } from "./textworld/index.ts";

type Factory = (config: Record<string, unknown>, seed: number) => Environment;
type AsyncFactory = (config: Record<string, unknown>, seed: number) => Promise<Environment>;

const IN_PROCESS: Partial<Record<EnvironmentSpec["name"], Factory>> = {
  "multihop-qa": createMultihopQa,
  "paper-search": createPaperSearch,
  textworld: createTextworld,
};

const REMOTE: Partial<Record<EnvironmentSpec["name"], AsyncFactory>> = {
  http: openHttpEnvironment,
};

function available(): string {
  return [...Object.keys(IN_PROCESS), ...Object.keys(REMOTE)].join(", ");
}

/** Any environment, in-process or remote. */
export async function openEnvironment(spec: EnvironmentSpec, seed: number): Promise<Environment> {
  const remote = REMOTE[spec.name];
  if (remote) return remote(spec.config ?? {}, seed);
  return createEnvironment(spec, seed);
}

/** An in-process environment, synchronously; a remote one is refused (use `openEnvironment`). */
export function createEnvironment(spec: EnvironmentSpec, seed: number): Environment {
  const factory = IN_PROCESS[spec.name];
  if (factory) return factory(spec.config ?? {}, seed);
  if (REMOTE[spec.name])
    throw new Error(`spec.environment.name: "${spec.name}" is a remote environment: open it with openEnvironment() (it reads the server's /info)`);
  throw new Error(`spec.environment.name: "${spec.name}" is not available (have: ${available()})`);
}
