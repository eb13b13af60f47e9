// The operator's check of learner progress records before anything of them reaches a job's status.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { LearnerProgress } from "../../runtime/nats/runtime-state.ts";
import { checkProgress, MAX_PATH_LENGTH } from "../../operator/progress-check.ts";

function good(extra: Record<string, unknown> = {}): Record<string, unknown> {
  const p: LearnerProgress = {
    phase: "training",
    update: 7,
    updates: 50,
    envSteps: 700,
    trainSuccess: 0.25,
    testSuccess: 0.5,
    lastCheckpoint: { update: 6, path: "/var/lib/steppo/checkpoints/u6", at: "2026-01-01T00:00:00.123Z" },
    demand: { waitSecondsLastUpdate: 1.5, waitSecondsPerUpdate: 0.5, backlog: 3, staleDrops: 0, workers: 2 },
    trajectories: { published: 10, consumed: 8, stale: 0, deadLettered: 0, duplicates: 0, inFlight: 2 },
    updatedAt: "2026-01-01T00:00:01Z",
  };
  return { ...p, ...extra };
}

function problem(value: unknown): string {
  const c = checkProgress(value);
  assert.equal(c.ok, false, `accepted ${JSON.stringify(value)?.slice(0, 200)}`);
  return c.ok ? "" : c.problem;
}

describe("learner progress check", () => {
  test("a learner's record passes unchanged", () => {
    assert.deepEqual(checkProgress(good()), { ok: true, progress: good() });
  });

  test("partial records the learner writes pass (warm-up, failure)", () => {
    const warm = { phase: "warmup", update: 0, updates: 50, updatedAt: "2026-01-01T00:00:00Z" };
    assert.deepEqual(checkProgress(warm), { ok: true, progress: warm });
    const failed = { phase: "failed", error: "boom", updatedAt: "2026-01-01T00:00:00+02:00" };
    assert.deepEqual(checkProgress(failed), { ok: true, progress: failed });
    assert.equal(checkProgress(good({ testSuccess: null, trainSuccess: null, lastCheckpoint: null })).ok, true);
  });

  test("unknown keys are dropped, not passed on", () => {
    const c = checkProgress(good({ extra: "x".repeat(100_000) }));
    assert.ok(c.ok);
    assert.equal("extra" in c.progress, false);
  });

  test("each bad field is refused, naming the field", () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ update: "x" }, /field "update" must be a non-negative integer, got string "x"/],
      [{ update: -1 }, /"update" must be a non-negative integer/],
      [{ update: 1.5 }, /"update"/],
      [{ update: 2 ** 60 }, /"update"/],
      [{ updates: true }, /"updates"/],
      [{ envSteps: null }, /"envSteps"/],
      [{ testSuccess: {} }, /field "testSuccess" must be null or a number in \[0, 1\], got object \{\}/],
      [{ testSuccess: 1.5 }, /"testSuccess"/],
      [{ trainSuccess: -0.1 }, /"trainSuccess"/],
      [{ phase: "exploding" }, /field "phase" must be one of starting, warmup, training, done, failed/],
      [{ phase: undefined }, /"phase".*got nothing/],
      [{ lastCheckpoint: "u6" }, /"lastCheckpoint" must be null or an object/],
      [{ lastCheckpoint: { update: 6, path: "p", at: "yesterday" } }, /"lastCheckpoint\.at" must be an RFC 3339 time/],
      [
        { lastCheckpoint: { update: 6, path: "p".repeat(MAX_PATH_LENGTH + 1), at: "2026-01-01T00:00:00Z" } },
        /"lastCheckpoint\.path" must be a string of at most 1024/,
      ],
      [{ lastCheckpoint: { update: "6", path: "p", at: "2026-01-01T00:00:00Z" } }, /"lastCheckpoint\.update"/],
      [{ demand: [] }, /"demand" must be an object, got array/],
      [{ demand: { ...(good().demand as object), backlog: "lots" } }, /"demand\.backlog"/],
      [{ demand: { ...(good().demand as object), waitSecondsLastUpdate: -3 } }, /"demand\.waitSecondsLastUpdate"/],
      [{ trajectories: { published: 1 } }, /"trajectories\.consumed"/],
      [{ error: "e".repeat(5000) }, /"error" must be a string of at most 4096/],
      [{ updatedAt: "2026-13-45T99:00:00Z" }, /"updatedAt" must be an RFC 3339 time/],
      [{ updatedAt: 1767225600000 }, /"updatedAt"/],
    ];
    for (const [patch, want] of cases) assert.match(problem(good(patch)), want, JSON.stringify(patch).slice(0, 80));
  });

  test("a record that is not an object is refused", () => {
    for (const v of [null, 3, "progress", [good()]]) assert.match(problem(v), /must be a JSON object/);
  });

  test("the message shows a bounded preview of a huge bad value", () => {
    const msg = problem(good({ update: "9".repeat(1_000_000) }));
    assert.ok(msg.length < 200, `${msg.length} characters`);
    assert.match(msg, /\(1000002 characters\)/);
  });
});
