// The embedded transport (`steppo run` without --nats): N rollout workers in this process produce each
// update's batch with the current weights and hand it over the in-memory bus (the same publisher and
// consumer interfaces the NATS runtime implements). Synchronous and on-policy: nothing is ever stale.
import { Rng, type RngState } from "../core/rng.ts";
import { partitionTrajectories } from "../learner/trajectory-check.ts";
import { RolloutWorker } from "../workers/rollout-worker.ts";
import { InMemoryBus } from "./in-memory-bus.ts";
import type { Batch, RunContext, Transport } from "./run-loop.ts";

/** What a checkpoint keeps so that a resumed run draws the same tasks and tokens as an uninterrupted one. */
interface EmbeddedState {
  workers: { id: string; rng: RngState; counter: number }[];
}

/** Extra production rounds per update to replace groups lost to environment faults before training on less. */
const MAX_TOP_UP_ROUNDS = 3;

/** Batches in a row with nothing left after intake checks before the run gives up: a bug, not a poison message. */
const MAX_EMPTY_BATCHES = 3;

export class EmbeddedTransport implements Transport {
  readonly name = "embedded" as const;
  private ctx!: RunContext;
  private workers: RolloutWorker[] = [];
  private readonly bus = new InMemoryBus();

  async open(ctx: RunContext, saved: unknown): Promise<void> {
    this.ctx = ctx;
    const spec = ctx.job.spec;
    this.workers = Array.from({ length: Math.max(1, spec.rollout.replicas) }, (_, i) => {
      const w = new RolloutWorker(`worker-${i}`, ctx.env, ctx.tokenizer, spec, ctx.modelConfig.contextLength, spec.seed * 1000 + i);
      w.log = ctx.log;
      return w;
    });
    for (const s of (saved as EmbeddedState | undefined)?.workers ?? []) {
      const w = this.workers.find((x) => x.id === s.id);
      w?.restore(new Rng(s.rng), s.counter);
    }
  }

  async next(): Promise<Batch> {
    const { learner, tokenizer, modelConfig, state, log } = this.ctx;
    const spec = this.ctx.job.spec;
    for (let empty = 1; ; empty++) {
      await this.produce(spec.rollout.episodesPerUpdate / spec.rollout.groupSize);
      const deliveries = await this.bus.fetch(spec.rollout.episodesPerUpdate, 0);
      for (const d of deliveries) await d.ack(); // in memory: nothing to make durable first
      // The same intake checks as the distributed learner: a poison trajectory is set aside, never trained on.
      const limits = { vocabSize: tokenizer.size, contextLength: modelConfig.contextLength, learnerVersion: learner.version };
      const { accepted, rejected } = partitionTrajectories(
        deliveries.map((d) => d.traj),
        limits,
      );
      for (const r of rejected) {
        this.bus.deadLetter(r.traj, r.problem.cause, r.problem.message);
        state.rejected = { ...state.rejected, [r.problem.cause]: (state.rejected?.[r.problem.cause] ?? 0) + 1 };
        log(`intake: dead-lettered ${r.problem.message} (${r.problem.cause})`);
      }
      if (accepted.length > 0) return { trajectories: accepted, staleDrops: null };
      if (empty >= MAX_EMPTY_BATCHES) {
        throw new Error(`every trajectory of ${empty} batches in a row failed the intake checks (last: ${rejected[0]?.problem.message ?? "no trajectories"})`);
      }
    }
  }

  /**
   * Splits the batch's task groups over the workers (in-process they take turns on the CPU). Groups lost to
   * environment faults are produced again, a few rounds at most, so the batch keeps its size.
   */
  private async produce(groupsPerUpdate: number): Promise<void> {
    const { state, policy, learner } = this.ctx;
    const workers = this.workers;
    let missing = groupsPerUpdate;
    for (let round = 0; missing > 0 && round <= MAX_TOP_UP_ROUNDS; round++) {
      const wanted = missing;
      for (let i = 0; i < workers.length; i++) {
        const groups = Math.floor(wanted / workers.length) + (i < wanted % workers.length ? 1 : 0);
        if (groups === 0) continue;
        const w = workers[i];
        const before = { faults: w.stats.excludedForFaults, oversized: w.stats.oversized };
        const published = await w.produce(groups, policy, learner.version, this.bus);
        missing -= new Set(published.map((t) => t.groupId)).size;
        const excluded = state.excluded ?? { envFaults: 0, oversized: 0 };
        excluded.envFaults += w.stats.excludedForFaults - before.faults;
        excluded.oversized += w.stats.oversized - before.oversized;
        if (excluded.envFaults + excluded.oversized > 0) state.excluded = excluded;
      }
    }
  }

  async updated(): Promise<void> {}

  save(): EmbeddedState {
    return { workers: this.workers.map((w) => ({ id: w.id, rng: w.rng.state(), counter: w.counter })) };
  }

  async saved(): Promise<void> {}

  unsaved(): boolean {
    return false; // the workers' RNGs are saved with every checkpoint; between checkpoints nothing is owed
  }

  async close(): Promise<void> {
    await this.bus.close();
  }

  summary(): object {
    return {};
  }
}
