// The real helm binary (test/cluster/binaries.ts extracts it) run on charts/steppo, for tests.
//
// charts/steppo has no dependencies (NATS is installed separately, see docs/kubernetes.md), so helm renders,
// lints and installs the checkout itself with no network: the tests pass CHART_DIR to helm as it is.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import yaml from "js-yaml";
import { type BinaryResult, runBinary } from "./run-binary.ts";
import { ensureHelm } from "../cluster/binaries.ts";

/** charts/steppo, or STEPPO_CHART_DIR (another copy, e.g. to check that a broken chart fails the tests). */
export const CHART_DIR = process.env.STEPPO_CHART_DIR ?? fileURLToPath(new URL("../../charts/steppo", import.meta.url));

export type HelmResult = BinaryResult;

export interface Helm {
  path: string;
  /** Runs helm with its cache, config and data under a private directory. Never throws on a non-zero exit. */
  run(args: string[], opts?: { timeoutMs?: number }): Promise<HelmResult>;
  remove(): void;
}

export function makeHelm(log?: (m: string) => void): Helm {
  const { path } = ensureHelm(log);
  const home = mkdtempSync(join(tmpdir(), "steppo-helm-home-"));
  for (const d of ["cache", "config", "data"]) mkdirSync(join(home, d));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HELM_CACHE_HOME: join(home, "cache"),
    HELM_CONFIG_HOME: join(home, "config"),
    HELM_DATA_HOME: join(home, "data"),
    NO_COLOR: "1",
  };
  return {
    path,
    run: (args, opts = {}) => runBinary(path, args, { env, timeoutMs: opts.timeoutMs ?? 120_000 }),
    remove: () => rmSync(home, { recursive: true, force: true }),
  };
}

/** `--set` arguments for a flat map of dotted keys (values are passed with --set-json, so types survive). */
export function setArgs(values: Record<string, unknown>): string[] {
  return Object.entries(values).flatMap(([k, v]) => ["--set-json", `${k}=${JSON.stringify(v)}`]);
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

/** The documents of a multi-document YAML stream, without empty ones. */
export function parseManifests(text: string): K8sObject[] {
  return yaml.loadAll(text).filter((d): d is K8sObject => d !== null && typeof d === "object");
}
