// A rollout worker: samples tasks, runs grouped episodes with the current policy and publishes the
// trajectories. The embedded runner and the `steppo worker` process both drive this class.
import type { TrajectoryBus } from "../common/bus.ts";
import { Rng } from "../common/rng.ts";
import type { Trajectory } from "../common/trajectory.ts";
import type { StepPOJobSpec } from "../crds/steppojob.ts";
import type { Tokenizer } from "../learner/tokenizer.ts";
import { type EpisodeRequest, runEpisodes, type TokenPolicy } from "./agent-loop.ts";
import type { Environment } from "./environment.ts";

export interface WorkerStats {
  episodes: number;
  envSteps: number;
  successes: number;
}

export class RolloutWorker {
  rng: Rng;
  private episodeCounter = 0;
  readonly stats: WorkerStats = { episodes: 0, envSteps: 0, successes: 0 };

  constructor(
    readonly id: string,
    readonly env: Environment,
    readonly tokenizer: Tokenizer,
    readonly spec: StepPOJobSpec,
    readonly contextLength: number,
    seed: number,
    /** Distinguishes restarts of the same worker id so trajectory ids never repeat. */
    readonly incarnation = "0",
  ) {
    this.rng = new Rng(seed);
  }

  /** Episodes started so far (the source of trajectory ids). */
  get counter(): number {
    return this.episodeCounter;
  }

  /** Continues from a checkpointed state: the same task and token stream as an uninterrupted run. */
  restore(rng: Rng, counter: number): void {
    this.rng = rng;
    this.episodeCounter = counter;
  }

  /** Episode requests for `groups` tasks × groupSize episodes each. */
  private requests(groups: number): EpisodeRequest[] {
    const out: EpisodeRequest[] = [];
    for (let g = 0; g < groups; g++) {
      const task = this.env.sampleTask(this.rng, "train");
      const groupId = `${this.id}.${this.incarnation}.g${this.episodeCounter}`;
      for (let k = 0; k < this.spec.rollout.groupSize; k++) {
        out.push({ task, groupId, trajId: `${this.id}.${this.incarnation}.e${this.episodeCounter++}` });
      }
    }
    return out;
  }

  /** Runs `groups` groups of episodes with `policy` and publishes every finished trajectory. */
  async produce(groups: number, policy: TokenPolicy, policyVersion: number, bus: TrajectoryBus, signal?: AbortSignal): Promise<Trajectory[]> {
    const env = this.spec.environment;
    const trajectories = await runEpisodes(this.env, this.requests(groups), policy, this.tokenizer, this.rng, {
      workerId: this.id,
      policyVersion,
      maxSteps: env.maxSteps,
      maxStepTokens: env.maxStepTokens,
      contextLength: this.contextLength,
      temperature: this.spec.rollout.temperature,
      greedy: false,
      toolLatencyMs: env.toolLatencyMs,
      signal,
    });
    for (const t of trajectories) {
      await bus.publish(t);
      this.stats.episodes++;
      this.stats.envSteps += t.steps.length;
      if (t.success) this.stats.successes++;
    }
    return trajectories;
  }
}
