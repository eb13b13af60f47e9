// Episodes a critic can tell apart from the context's first token: 5 always succeeds, 6 always fails.
// Two steps each; the reward arrives on the last, so step-GAE's γ discounts the first step's value.
import type { Trajectory } from "../../core/trajectory.ts";

export function twoKindEpisodes(n: number): Trajectory[] {
  return Array.from({ length: n }, (_, i) => {
    const good = i % 2 === 0;
    return {
      trajId: `t${i}`,
      workerId: "w",
      policyVersion: 0,
      taskId: `task${i}`,
      groupId: `g${i}`,
      family: "f",
      truncated: false,
      success: good,
      steps: [0, 1].map((s) => ({
        contextIds: Int32Array.of(good ? 5 : 6, 3 + s, (i % 3) + 7),
        actionIds: Int32Array.of(4, 2),
        logProbs: new Float32Array(2),
        reward: s === 1 && good ? 1 : 0,
        done: s === 1,
        stateKey: "",
      })),
    };
  });
}
