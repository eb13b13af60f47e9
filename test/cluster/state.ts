// The long-lived cluster of `npm run cluster:up` / `cluster:down`: where it lives and what it runs.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { cacheDir } from "./binaries.ts";

export interface ClusterState {
  dir: string;
  kubeconfigPath: string;
  server: string;
  kubectl: string;
  pids: { etcd: number; apiserver: number; controllerManager?: number; scheduler?: number };
  startedAt: string;
}

export const CLUSTER_HOME = join(cacheDir(), "cluster");
export const STATE_FILE = join(CLUSTER_HOME, "state.json");
export const RUN_DIR = join(CLUSTER_HOME, "run");

export function readState(): ClusterState | undefined {
  if (!existsSync(STATE_FILE)) return undefined;
  try {
    return JSON.parse(readFileSync(STATE_FILE, "utf8")) as ClusterState;
  } catch {
    return undefined;
  }
}

/** Every process of the cluster, the API server's clients first. */
export function statePids(state: ClusterState): number[] {
  return [state.pids.scheduler, state.pids.controllerManager, state.pids.apiserver, state.pids.etcd].filter((p): p is number => typeof p === "number");
}

/** True when `pid` is alive and its command line mentions `dir` (so a reused pid is never ours). */
export function ownsPid(pid: number, dir: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(dir);
  } catch {
    return false;
  }
}
