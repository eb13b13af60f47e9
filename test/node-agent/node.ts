// The agent's Node object: registered on start (Ready, capacity/allocatable, 127.0.0.1 as its address, the
// logs endpoint as its kubelet port), and kept alive by renewing its Lease in kube-node-lease and the Ready
// condition's heartbeat, as a kubelet does.
import { arch, cpus, release, totalmem } from "node:os";
import type { Clients } from "../../operator/kube.ts";
import { statusCode } from "../../operator/kube.ts";
import { microTime } from "../../operator/leader.ts";
import { kubeTime } from "./pod-status.ts";

export interface NodeSpecOptions {
  name: string;
  /** Resources to advertise; defaults: this machine's cpus and memory, 110 pods, plus `gpus` nvidia.com/gpu. */
  capacity?: Record<string, string>;
  gpus?: number;
  labels?: Record<string, string>;
  /** Port of the agent's logs endpoint (kubectl logs through the API server). */
  kubeletPort?: number;
}

export function nodeCapacity(o: NodeSpecOptions): Record<string, string> {
  return {
    cpu: String(cpus().length),
    memory: `${Math.floor(totalmem() / 1024)}Ki`,
    pods: "110",
    "ephemeral-storage": "100Gi",
    ...(o.gpus ? { "nvidia.com/gpu": String(o.gpus) } : {}),
    ...(o.capacity ?? {}),
  };
}

export function nodeLabels(o: NodeSpecOptions): Record<string, string> {
  const goArch = arch() === "x64" ? "amd64" : arch();
  return {
    "kubernetes.io/hostname": o.name,
    "kubernetes.io/os": "linux",
    "kubernetes.io/arch": goArch,
    "node.steppo.dev/agent": "process",
    ...(o.gpus ? { "nvidia.com/gpu.present": "true" } : {}),
    ...(o.labels ?? {}),
  };
}

function readyCondition(now: string, since: string) {
  return {
    type: "Ready",
    status: "True",
    reason: "KubeletReady",
    message: "steppo node agent is posting ready status",
    lastHeartbeatTime: now,
    lastTransitionTime: since,
  };
}

export class NodeRegistration {
  private timer?: NodeJS.Timeout;
  private readonly since = kubeTime();
  private stopped = false;

  constructor(
    private readonly c: Clients,
    private readonly o: NodeSpecOptions,
    private readonly log: (m: string) => void,
    private readonly heartbeatMs = 10_000,
  ) {}

  async register(): Promise<void> {
    const capacity = nodeCapacity(this.o);
    const body = {
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: this.o.name, labels: nodeLabels(this.o) },
      spec: {},
    };
    try {
      await this.c.core.createNode({ body });
    } catch (err) {
      if (statusCode(err) !== 409) throw err;
      await this.c.core.patchNode({ name: this.o.name, body: [{ op: "add", path: "/metadata/labels", value: body.metadata.labels }] });
    }
    const now = kubeTime();
    const status = {
      capacity,
      allocatable: capacity,
      conditions: [readyCondition(now, this.since)],
      addresses: [{ type: "InternalIP", address: "127.0.0.1" }],
      daemonEndpoints: { kubeletEndpoint: { Port: this.o.kubeletPort ?? 0 } },
      nodeInfo: {
        machineID: "",
        systemUUID: "",
        bootID: "",
        kernelVersion: release(),
        osImage: "steppo node agent (processes)",
        containerRuntimeVersion: "node-agent://1",
        kubeletVersion: "v0.0.0-steppo-node-agent",
        kubeProxyVersion: "",
        operatingSystem: "linux",
        architecture: nodeLabels(this.o)["kubernetes.io/arch"],
      },
    };
    await this.c.core.patchNodeStatus({ name: this.o.name, body: [{ op: "add", path: "/status", value: status }] });
    await this.renewLease();
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.heartbeat(), this.heartbeatMs);
    this.timer.unref();
  }

  private async heartbeat(): Promise<void> {
    try {
      await this.renewLease();
      await this.c.core.patchNodeStatus({
        name: this.o.name,
        body: [{ op: "add", path: "/status/conditions", value: [readyCondition(kubeTime(), this.since)] }],
      });
    } catch (err) {
      if (!this.stopped) this.log(`node heartbeat failed: ${(err as Error).message}`);
    }
    this.schedule();
  }

  private async renewLease(): Promise<void> {
    const namespace = "kube-node-lease";
    const name = this.o.name;
    const spec = { holderIdentity: name, leaseDurationSeconds: 40, renewTime: microTime(new Date()) as never };
    try {
      const lease = await this.c.coordination.readNamespacedLease({ namespace, name });
      await this.c.coordination.replaceNamespacedLease({ namespace, name, body: { ...lease, spec: { ...lease.spec, ...spec } } });
    } catch (err) {
      if (statusCode(err) !== 404) throw err;
      await this.c.coordination.createNamespacedLease({
        namespace,
        body: { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name, namespace }, spec },
      });
    }
  }

  /** Stops the heartbeat; the node is marked NotReady (or deleted with `remove`). */
  async stop(remove = false): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    try {
      if (remove) await this.c.core.deleteNode({ name: this.o.name });
      else
        await this.c.core.patchNodeStatus({
          name: this.o.name,
          body: [
            {
              op: "add",
              path: "/status/conditions",
              value: [
                {
                  type: "Ready",
                  status: "False",
                  reason: "KubeletStopped",
                  message: "node agent stopped",
                  lastHeartbeatTime: kubeTime(),
                  lastTransitionTime: kubeTime(),
                },
              ],
            },
          ],
        });
    } catch (err) {
      this.log(`node ${this.o.name}: ${(err as Error).message}`);
    }
  }
}
