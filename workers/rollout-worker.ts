// A rollout worker: samples tasks, runs grouped episodes with the current policy and publishes the
// trajectories. The embedded runner and the `steppo worker` process both drive this class.
import type { TrajectoryPublisher } from "../core/bus.ts";
import { Rng } from "../core/rng.ts";
import type { Trajectory } from "../core/trajectory.ts";
import { TrajectoryTooLargeError } from "../core/trajectory-codec.ts";
import type { StepPOJobSpec } from "../crds/steppojob.ts";
import type { AgentTokenizer } from "../policy/agent-tokenizer.ts";
import { type EpisodeRequest, runEpisodes, type TokenPolicy } from "./agent-loop.ts";
import type { Environment } from "../envs/environment.ts";

export interface WorkerStats {
  /** Episodes published. */
  episodes: number;
  envSteps: number;
  successes: number;
  /** Episodes an environment fault ended (timeout, unreachable, error status): never published. */
  envFaults: number;
  /** Episodes left out because of those faults: the faulty ones and the rest of their groups. */
  excludedForFaults: number;
  /** Episodes too large for the NATS server's max_payload even compressed: dropped. */
  oversized: number;
}

export class RolloutWorker {
  rng: Rng;
  private episodeCounter = 0;
  readonly stats: WorkerStats = { episodes: 0, envSteps: 0, successes: 0, envFaults: 0, excludedForFaults: 0, oversized: 0 };
  /** Where the worker says what it dropped (an environment fault, an oversized episode). */
  log: (line: string) => void = () => {};

  constructor(
    readonly id: string,
    readonly env: Environment,
    readonly tokenizer: AgentTokenizer,
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

  /**
   * Runs `groups` groups of episodes with `policy` and publishes every finished trajectory; returns the
   * published ones, in order. A group with an episode an environment fault ended is left out whole: the
   * fault's reward 0 would be scored as the agent's failure, and a group without it would compare its
   * other members against a baseline the estimator did not mean (GRPO/RLOO/GiGPO). An episode too large
   * for the bus even compressed (TrajectoryTooLargeError) is dropped and counted; the worker carries on.
   */
  async produce(groups: number, policy: TokenPolicy, policyVersion: number, bus: TrajectoryPublisher, signal?: AbortSignal): Promise<Trajectory[]> {
    const env = this.spec.environment;
    const faulted = new Map<string, string>(); // groupId → the first fault's cause
    let faultyEpisodes = 0;
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
      onFault: (req, cause) => {
        faultyEpisodes++;
        if (!faulted.has(req.groupId)) faulted.set(req.groupId, `episode ${req.trajId}: ${cause}`);
      },
    });
    const kept = this.withoutFaultedGroups(trajectories, faulted, faultyEpisodes);
    const published: Trajectory[] = [];
    for (const t of kept) {
      try {
        await bus.publish(t);
      } catch (err) {
        if (!(err instanceof TrajectoryTooLargeError)) throw err;
        this.stats.oversized++;
        this.log(`worker ${this.id}: ${err.message}`);
        continue;
      }
      published.push(t);
      this.stats.episodes++;
      this.stats.envSteps += t.steps.length;
      if (t.success) this.stats.successes++;
    }
    return published;
  }

  private withoutFaultedGroups(trajectories: Trajectory[], faulted: Map<string, string>, faultyEpisodes: number): Trajectory[] {
    if (faulted.size === 0) return trajectories;
    // The faulty episodes themselves were never returned; their group-mates are dropped here.
    const kept = trajectories.filter((t) => !faulted.has(t.groupId));
    this.stats.envFaults += faultyEpisodes;
    this.stats.excludedForFaults += faultyEpisodes + trajectories.length - kept.length;
    for (const [groupId, cause] of faulted) this.log(`worker ${this.id}: environment fault, group ${groupId} excluded from training: ${cause}`);
    return kept;
  }
}
