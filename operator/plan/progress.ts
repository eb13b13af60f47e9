// The learner's progress in the job's status: from its NATS KV record while the operator reads one, else
// from what the learner left in its pod's termination message (the path that works without NATS access).
import type { V1Pod } from "@kubernetes/client-node";
import type { StepPOJobStatus } from "../../crds/steppojob-status.ts";
import type { LearnerProgress } from "../../runtime/nats/runtime-state.ts";
import { trainingStatus } from "../status-fields.ts";
import type { Step } from "./draft.ts";

const isUpdate = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
const isRate = (v: unknown): v is number => typeof v === "number" && v >= 0 && v <= 1;

/**
 * Progress the learner left in its termination message (JSON), the pod-status path to update/success.
 * Only values the status schema accepts are taken: one it refuses would block every later status patch.
 */
export function terminationProgress(p: V1Pod | undefined): { update?: number; successRate?: number } {
  for (const c of p?.status?.containerStatuses ?? []) {
    const msg = c.state?.terminated?.message ?? c.lastState?.terminated?.message;
    if (!msg) continue;
    try {
      const v = JSON.parse(msg) as { update?: unknown; successRate?: unknown };
      return {
        ...(isUpdate(v.update) ? { update: v.update } : {}),
        ...(isRate(v.successRate) ? { successRate: v.successRate } : {}),
      };
    } catch {
      // Not ours (FallbackToLogsOnError puts log tails here): ignore.
    }
  }
  return {};
}

/**
 * Status fields from the current learner pod and the KV record. The record wins where both speak (it is
 * newer than any exit); a field neither speaks of keeps its last value, so a restart does not blank it.
 */
export function learnerProgress(current: V1Pod | undefined, kv: LearnerProgress | undefined, updates: number): Step {
  const status: Partial<StepPOJobStatus> = {};
  const progress = { ...terminationProgress(current) };
  if (kv) {
    status.training = trainingStatus(kv, updates);
    progress.update = kv.update;
    if (kv.testSuccess !== null) progress.successRate = kv.testSuccess;
    if (kv.lastCheckpoint) {
      const c = kv.lastCheckpoint;
      status.lastCheckpoint = { update: c.update, path: c.path, time: c.at };
    }
  }
  if (progress.update !== undefined) status.update = progress.update;
  if (progress.successRate !== undefined) status.successRate = progress.successRate;
  return { status };
}
