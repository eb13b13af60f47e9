// Kubernetes Events (core/v1) for a job's transitions, so `kubectl describe spj` tells its story. Events
// are best effort: a failure to record one is logged and never fails the reconcile that caused it.
import { randomBytes } from "node:crypto";
import type { CoreV1Event } from "@kubernetes/client-node";
import type { JobObject } from "./desired.ts";
import type { Clients } from "./kube.ts";
import { JOB_API_VERSION, JOB_KIND, MANAGER } from "../crds/names.ts";
import type { JobEvent } from "./plan.ts";

export function eventObject(job: JobObject, e: JobEvent, now: Date, host: string): CoreV1Event {
  const ns = job.metadata.namespace ?? "default";
  return {
    apiVersion: "v1",
    kind: "Event",
    metadata: { name: `${job.metadata.name}.${now.getTime().toString(16)}${randomBytes(3).toString("hex")}`, namespace: ns },
    involvedObject: { apiVersion: JOB_API_VERSION, kind: JOB_KIND, name: job.metadata.name, namespace: ns, uid: job.metadata.uid },
    type: e.type,
    reason: e.reason,
    message: e.message,
    source: { component: MANAGER, host },
    reportingComponent: MANAGER,
    reportingInstance: host,
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
}

export async function recordEvents(c: Clients, job: JobObject, events: JobEvent[], host: string, log: (m: string) => void): Promise<void> {
  const ns = job.metadata.namespace ?? "default";
  for (const e of events) {
    try {
      await c.core.createNamespacedEvent({ namespace: ns, body: eventObject(job, e, new Date(), host) });
    } catch (err) {
      log(`event ${e.reason} for ${ns}/${job.metadata.name} not recorded: ${(err as Error).message}`);
    }
  }
}
