// Environment factories by `spec.environment.name`.
import type { EnvironmentSpec } from "../../crds/steppojob.ts";
import type { Environment } from "../environment.ts";
import { createMultihopQa } from "./multihop-qa/index.ts";
import { createPaperSearch } from "./paper-search/index.ts";
import { createTextworld } from "./textworld/index.ts";

type Factory = (config: Record<string, unknown>, seed: number) => Environment;

const FACTORIES: Partial<Record<EnvironmentSpec["name"], Factory>> = {
  "multihop-qa": createMultihopQa,
  "paper-search": createPaperSearch,
  textworld: createTextworld,
};

export function createEnvironment(spec: EnvironmentSpec, seed: number): Environment {
  const factory = FACTORIES[spec.name];
  if (!factory) throw new Error(`spec.environment.name: "${spec.name}" is not available (have: ${Object.keys(FACTORIES).join(", ")})`);
  return factory(spec.config ?? {}, seed);
}
