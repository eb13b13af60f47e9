// Trajectories made by hand for tests that publish on a job's subjects as an outside process would.
import type { Trajectory } from "../../core/trajectory.ts";

/** A trajectory that is sound for any vocabulary (<bos>, <eos-step> and a few specials), policy version 0. */
export function handmadeTrajectory(trajId: string, workerId = "test"): Trajectory {
  return {
    trajId,
    workerId,
    policyVersion: 0,
    taskId: "t",
    groupId: trajId,
    family: "test",
    steps: [{ contextIds: Int32Array.of(1, 3, 4), actionIds: Int32Array.of(5, 2), logProbs: Float32Array.of(-3, -3), reward: 1, done: true, stateKey: "s" }],
    truncated: false,
    success: true,
  };
}
