// Shared setup of the operator integration tests: a real test cluster with the CRD installed, API clients,
// and helpers that play the kubelet's part (patching pod status) and wait for the operator to converge.
import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import { CRD_NAME, CRD_PATH } from "../../crds/generate.ts";
import { GROUP, VERSION } from "../../crds/steppojob.ts";
import type { StepPOJobStatus } from "../../crds/steppojob-status.ts";
import { type Clients, loadKubeConfig, makeClients } from "../../operator/kube.ts";
import { LABEL_JOB, PLURAL } from "../../crds/names.ts";
import { startTestCluster, type TestCluster } from "../cluster/cluster.ts";
import { type NotYet, pollUntil } from "./poll.ts";

export interface Harness {
  cluster: TestCluster;
  clients: Clients;
  stop(): Promise<void>;
}

export async function startHarness(): Promise<Harness> {
  // apiserver only: the harness plays the kubelet and the controllers itself (it patches pod status).
  const cluster = await startTestCluster({ controllers: false });
  const crd = await cluster.kubectl(["apply", "-f", CRD_PATH]);
  assert.equal(crd.code, 0, crd.stderr);
  const est = await cluster.kubectl(["wait", "--for=condition=Established", "--timeout=60s", `crd/${CRD_NAME}`]);
  assert.equal(est.code, 0, est.stderr);
  const clients = makeClients(loadKubeConfig(cluster.kubeconfigPath));
  return { cluster, clients, stop: () => cluster.stop() };
}

/** pollUntil (test/support/poll.ts) with the operator tests' default deadline, 15 s, in their argument order. */
export function eventually<T>(what: string, fn: () => Promise<T | undefined | NotYet>, timeoutMs = 15_000, intervalMs = 100): Promise<T> {
  return pollUntil(what, timeoutMs, fn, intervalMs);
}

export interface ExtraMetadata {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export function jobManifest(name: string, spec: Record<string, unknown> = {}, meta: ExtraMetadata = {}): Record<string, unknown> {
  return { apiVersion: `${GROUP}/${VERSION}`, kind: "StepPOJob", metadata: { name, namespace: "default", ...meta }, spec };
}

export async function createJob(c: Clients, name: string, spec: Record<string, unknown> = {}, meta: ExtraMetadata = {}): Promise<Record<string, unknown>> {
  return (await c.custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: "default",
    plural: PLURAL,
    body: jobManifest(name, spec, meta),
  })) as Record<string, unknown>;
}

export async function deleteJob(c: Clients, name: string): Promise<void> {
  await c.custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: "default", plural: PLURAL, name });
}

/** Resolves once the job is gone from the API server (finalizers done). */
export async function jobGone(c: Clients, name: string, timeoutMs = 15_000): Promise<void> {
  await eventually(
    `${name} deleted`,
    async () => {
      try {
        await getJob(c, name);
        return undefined;
      } catch (err) {
        if ((err as { code?: number }).code === 404) return true;
        throw err;
      }
    },
    timeoutMs,
  );
}

export async function getJob(
  c: Clients,
  name: string,
): Promise<{
  metadata: { uid: string; resourceVersion?: string; finalizers?: string[]; deletionTimestamp?: string };
  spec: Record<string, Record<string, unknown>>;
  status?: StepPOJobStatus;
}> {
  return (await c.custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: "default", plural: PLURAL, name })) as never;
}

export async function patchJobSpec(c: Clients, name: string, path: string, value: unknown): Promise<void> {
  await c.custom.patchNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: "default",
    plural: PLURAL,
    name,
    body: [{ op: "add", path, value }],
  });
}

export async function jobPods(c: Clients, name: string): Promise<V1Pod[]> {
  const list = await c.core.listNamespacedPod({ namespace: "default", labelSelector: `${LABEL_JOB}=${name}` });
  return list.items.sort((a, b) => (a.metadata!.name! < b.metadata!.name! ? -1 : 1));
}

/**
 * Plays the kubelet: sets a pod's phase (and a Ready condition / a terminated container to match).
 * `exitCode` is the failed container's (a succeeded one exits 0); pods are in "default" unless `namespace`.
 */
export async function setPodPhase(
  c: Clients,
  name: string,
  phase: "Running" | "Failed" | "Succeeded",
  { exitCode = 1, namespace = "default" }: { exitCode?: number; namespace?: string } = {},
): Promise<void> {
  const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  const container = (await c.core.readNamespacedPod({ namespace, name })).spec!.containers[0].name;
  const status: Record<string, unknown> =
    phase === "Running"
      ? {
          phase,
          conditions: [{ type: "Ready", status: "True", lastTransitionTime: now }],
          containerStatuses: [{ name: container, image: "x", imageID: "", ready: true, restartCount: 0, state: { running: { startedAt: now } } }],
        }
      : {
          phase,
          conditions: [{ type: "Ready", status: "False", lastTransitionTime: now }],
          containerStatuses: [
            {
              name: container,
              image: "x",
              imageID: "",
              ready: false,
              restartCount: 0,
              state: {
                terminated: {
                  exitCode: phase === "Succeeded" ? 0 : exitCode,
                  reason: phase === "Succeeded" ? "Completed" : "Error",
                  startedAt: now,
                  finishedAt: now,
                },
              },
            },
          ],
        };
  await c.core.patchNamespacedPodStatus({ namespace, name, body: [{ op: "add", path: "/status", value: status }] });
}

/** Plays the kubelet for a container that cannot start: Pending, its first container waiting with `reason`. */
export async function setPodWaiting(c: Clients, name: string, reason: string, message: string, namespace = "default"): Promise<void> {
  const container = (await c.core.readNamespacedPod({ namespace, name })).spec!.containers[0].name;
  const status = {
    phase: "Pending",
    containerStatuses: [{ name: container, image: "x", imageID: "", ready: false, restartCount: 0, state: { waiting: { reason, message } } }],
  };
  await c.core.patchNamespacedPodStatus({ namespace, name, body: [{ op: "add", path: "/status", value: status }] });
}

export function names(pods: V1Pod[]): string[] {
  return pods.map((p) => p.metadata!.name!);
}
