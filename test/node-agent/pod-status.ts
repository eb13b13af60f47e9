// Pod status as the kubelet reports it, computed from what the agent knows about a pod's containers
// (pure: unit-tested without processes or an API server).
import type { V1ContainerStatus, V1PodCondition } from "@kubernetes/client-node";

export type ContainerState =
  | { kind: "waiting"; reason: string; message?: string }
  | { kind: "running"; startedAt: string; pid: number }
  | {
      kind: "terminated";
      exitCode: number;
      signal?: number;
      reason: string;
      message?: string;
      startedAt: string;
      finishedAt: string;
      pid?: number;
    };

export interface ContainerView {
  name: string;
  image: string;
  state: ContainerState;
  lastState?: ContainerState;
  restartCount: number;
  ready: boolean;
  everStarted: boolean;
}

export type RestartPolicy = "Never" | "OnFailure" | "Always";
export type PodPhase = "Pending" | "Running" | "Succeeded" | "Failed";

/** metav1.Time: RFC 3339 with whole seconds. */
export function kubeTime(d: Date = new Date()): string {
  return d.toISOString().replace(/\.\d+Z$/, "Z");
}

export function containerId(pid: number | undefined): string | undefined {
  return pid === undefined ? undefined : `node-agent://${pid}`;
}

function terminatedOk(s: ContainerState): boolean {
  return s.kind === "terminated" && s.exitCode === 0;
}

/**
 * The pod phase. `stopping`: the pod is being deleted (or the agent stops) and every process has exited or
 * never started — the phase is terminal then whatever the restart policy (a kubelet does the same since 1.27).
 */
export function podPhase(policy: RestartPolicy, containers: ContainerView[], stopping: boolean): PodPhase {
  const allDone = containers.every((c) => c.state.kind === "terminated" || (c.state.kind === "waiting" && stopping));
  const started = containers.some((c) => c.everStarted);
  if (stopping && allDone) return started && containers.every((c) => terminatedOk(c.state)) ? "Succeeded" : "Failed";
  if (policy === "Never" && containers.every((c) => c.state.kind === "terminated")) {
    return containers.every((c) => terminatedOk(c.state)) ? "Succeeded" : "Failed";
  }
  if (policy === "OnFailure" && containers.every((c) => terminatedOk(c.state))) return "Succeeded";
  return started ? "Running" : "Pending";
}

function stateObject(s: ContainerState): V1ContainerStatus["state"] {
  switch (s.kind) {
    case "waiting":
      return { waiting: { reason: s.reason, ...(s.message ? { message: s.message } : {}) } };
    case "running":
      return { running: { startedAt: s.startedAt as never } };
    case "terminated":
      return {
        terminated: {
          exitCode: s.exitCode,
          ...(s.signal !== undefined ? { signal: s.signal } : {}),
          reason: s.reason,
          ...(s.message ? { message: s.message } : {}),
          startedAt: s.startedAt as never,
          finishedAt: s.finishedAt as never,
          ...(s.pid !== undefined ? { containerID: containerId(s.pid) } : {}),
        },
      };
  }
}

export function containerStatus(c: ContainerView): V1ContainerStatus {
  const pid = c.state.kind === "running" || c.state.kind === "terminated" ? c.state.pid : undefined;
  return {
    name: c.name,
    image: c.image,
    imageID: "",
    ...(pid !== undefined ? { containerID: containerId(pid) } : {}),
    ready: c.ready,
    started: c.state.kind === "running",
    restartCount: c.restartCount,
    state: stateObject(c.state),
    ...(c.lastState ? { lastState: stateObject(c.lastState) } : {}),
  };
}

export interface PodView {
  phase: PodPhase;
  volumesReady: boolean;
  containers: ContainerView[];
  startTime: string;
}

/** Conditions, keeping lastTransitionTime of those whose status did not change. */
export function podConditions(v: PodView, previous: V1PodCondition[] | undefined, now: string): V1PodCondition[] {
  const terminal = v.phase === "Succeeded" || v.phase === "Failed";
  const unready = v.containers.filter((c) => !c.ready).map((c) => c.name);
  const ready = unready.length === 0 && !terminal;
  const notReadyReason = terminal ? "PodCompleted" : "ContainersNotReady";
  const notReadyMessage = terminal ? undefined : `containers with unready status: [${unready.join(" ")}]`;
  const want: V1PodCondition[] = [
    { type: "PodReadyToStartContainers", status: v.volumesReady && !terminal ? "True" : "False" },
    { type: "Initialized", status: "True" },
    { type: "Ready", status: ready ? "True" : "False", ...(ready ? {} : { reason: notReadyReason, ...(notReadyMessage ? { message: notReadyMessage } : {}) }) },
    {
      type: "ContainersReady",
      status: ready ? "True" : "False",
      ...(ready ? {} : { reason: notReadyReason, ...(notReadyMessage ? { message: notReadyMessage } : {}) }),
    },
    { type: "PodScheduled", status: "True" },
  ];
  return want.map((c) => {
    const old = (previous ?? []).find((p) => p.type === c.type);
    const at = old && old.status === c.status && old.lastTransitionTime ? old.lastTransitionTime : now;
    return { ...c, lastTransitionTime: (typeof at === "string" ? at : kubeTime(new Date(at))) as never };
  });
}
